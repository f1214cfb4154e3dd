"""Image data for the proxies: Debian's Fashion-MNIST, IDX files in any directory, ImageFolder trees."""

import gzip

import numpy as np
import pytest
import torch
from PIL import Image

import nas.data
from nas.data import DataNotFoundError, load_dataset


def write_idx(path, array: np.ndarray, gz: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    (gzip.open if gz else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_the_debian_package():
    train, test = load_dataset(split="train"), load_dataset(split="test")
    assert train.images.shape == (60_000, 1, 28, 28) and test.images.shape == (10_000, 1, 28, 28)
    assert train.num_classes == 10 and set(test.labels.tolist()) == set(range(10))
    x, y = train.batch(torch.arange(256), resolution=32)
    assert x.shape == (256, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (256,)
    assert torch.equal(x[:, 0], x[:, 2])  # grey replicated to three channels
    assert abs(float(x.mean())) < 0.2 and 0.7 < float(x.std()) < 1.3  # normalised


def test_idx_files_in_a_named_directory(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(20, 28, 28))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(20) % 10, gz=False)
    data = load_dataset(split="train", data_dir=tmp_path)
    assert len(data) == 20 and np.array_equal(data.images[:, 0].numpy(), images)
    assert data.labels.tolist() == [i % 10 for i in range(20)]


def test_truncated_idx_file_is_an_error(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 28, 28)), gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4), gz=False)
    raw = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="truncated IDX"):
        load_dataset(split="test", data_dir=tmp_path)


def test_missing_fashion_mnist_says_where_it_looked_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setattr(nas.data, "FASHION_MNIST_DIRS", (tmp_path / "system", tmp_path / "cache"))
    monkeypatch.delenv("NAS_DATA_DIR", raising=False)
    with pytest.raises(DataNotFoundError) as err:
        load_dataset(split="train", data_dir=tmp_path / "mine")
    message = str(err.value)
    for looked in ("mine", "system", "cache"):
        assert str(tmp_path / looked) in message
    assert "apt-get install -y dataset-fashion-mnist" in message and "ImageFolder" in message


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    data = load_dataset(tmp_path)
    assert data.num_classes == 2 and data.images.shape == (6, 3, 20, 24) and data.labels.tolist() == [0] * 3 + [1] * 3
    x, _ = data.batch([0, 5], resolution=16)
    assert x.shape == (2, 3, 16, 16)


def test_not_a_dataset(tmp_path):
    with pytest.raises(DataNotFoundError, match="neither 'fashion-mnist' nor a directory"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="no images under"):
        load_dataset(tmp_path)
    with pytest.raises(ValueError, match="split: must be 'train' or 'test'"):
        load_dataset(split="val")


def test_subsets_and_splits_normalise_as_their_parent():
    train, test = load_dataset(split="train"), load_dataset(split="test")
    assert test.mean == train.mean and test.std == train.std  # the training set's statistics for both
    rest, held = train.split(100)
    assert held.mean == train.mean and rest.subset([0, 1]).std == train.std
    x, _ = train.subset([7]).batch([0], resolution=28, channels=1)
    assert torch.allclose(x, train.batch([7], resolution=28, channels=1)[0])


def test_split_is_seeded_and_disjoint():
    data = load_dataset(split="test")
    rest, held = data.split(1000, seed=3)
    again, held_again = data.split(1000, seed=3)
    assert len(held) == 1000 and len(rest) == 9000
    assert torch.equal(held.images, held_again.images) and torch.equal(rest.labels, again.labels)


def test_download_fails_clearly_offline(tmp_path, monkeypatch):
    # No network here (only package registries): the downloader's failure must read as missing data.
    monkeypatch.setattr(nas.data, "FASHION_MNIST_DIRS", (tmp_path / "system", tmp_path / "cache"))
    monkeypatch.delenv("NAS_DATA_DIR", raising=False)
    try:
        data = load_dataset(split="test", download=True)
    except DataNotFoundError as err:
        assert f"downloading Fashion-MNIST into {tmp_path / 'cache'} failed" in str(err)
        assert "apt-get install -y dataset-fashion-mnist" in str(err)
    else:  # a machine with a network: the download must have produced the real test split
        assert data.images.shape == (10_000, 1, 28, 28)
