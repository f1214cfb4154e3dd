"""Real image data for the proxies, offline: Fashion-MNIST's IDX files or any ``ImageFolder`` tree.

Images stay in memory as uint8 at their stored size; ``ImageData.batch`` resizes, replicates
channels and normalises per batch, so one copy serves every proxy resolution. There is no
random-data fallback: a proxy that needs data and finds none raises ``DataNotFoundError`` saying
where it looked and how to fix it.
"""

from __future__ import annotations

import functools
import gzip
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FASHION_MNIST = "fashion-mnist"
DATA_DIR_ENV = "NAS_DATA_DIR"
# Debian's dataset-fashion-mnist package, then a per-user cache (torchvision's downloader writes there).
FASHION_MNIST_DIRS = (Path("/usr/share/datasets/fashion-mnist"), Path("~/.cache/nas/fashion-mnist"))
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Fashion-MNIST's training-set pixel statistics, used for both splits.
FASHION_MNIST_MEAN, FASHION_MNIST_STD = (0.2860,), (0.3530,)
# Label i names class FASHION_MNIST_CLASSES[i] (the dataset's own order, from Zalando's README).
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_FIX = (
    "install it (`apt-get install -y dataset-fashion-mnist`), point to a directory holding the IDX files "
    f"(`data_dir=...` or ${DATA_DIR_ENV}), pass download=True where a network exists, "
    "or give an ImageFolder directory (one sub-directory of images per class)"
)


class DataNotFoundError(FileNotFoundError):
    """No dataset where one was needed; the message lists where we looked and how to fix it."""


@dataclass(frozen=True, eq=False)
class ImageData:
    """A labelled image set held in memory: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,),
    and the per-channel ``mean`` / ``std`` (of pixels in [0, 1]) that ``batch`` normalises with.
    Subsets and splits keep their parent's statistics, so training and held-out images agree.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images: expected uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels: expected shape ({len(self.images)},), got {tuple(self.labels.shape)}")
        if not len(self.mean) == len(self.std) == self.images.shape[1]:
            raise ValueError(f"mean, std: expected {self.images.shape[1]} values each (one per channel)")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int] | torch.Tensor) -> ImageData:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageData(self.name, self.images[idx], self.labels[idx], self.num_classes, self.mean, self.std)

    def split(self, n_held_out: int, *, seed: int = 0) -> tuple[ImageData, ImageData]:
        """A seeded random split into (rest, held-out of ``n_held_out`` images)."""
        if not 0 < n_held_out < len(self):
            raise ValueError(f"n_held_out: must be in 1..{len(self) - 1}, got {n_held_out}")
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return self.subset(perm[n_held_out:]), self.subset(perm[:n_held_out])

    def batch(
        self, indices: Sequence[int] | torch.Tensor, *, resolution: int, channels: int = 3
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs float32 (B, channels, r, r) normalised per image set, labels) for ``indices``."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        x = self.images[idx].float().div_(255.0)
        if x.shape[-2:] != (resolution, resolution):
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        x = (x - torch.tensor(self.mean).view(1, -1, 1, 1)) / torch.tensor(self.std).view(1, -1, 1, 1)
        if x.shape[1] != channels:
            if x.shape[1] != 1:
                raise ValueError(f"channels: cannot make {channels} channels from {x.shape[1]}-channel images")
            x = x.expand(-1, channels, -1, -1)
        return x.contiguous(), self.labels[idx]


def channel_stats(images: torch.Tensor, limit: int = 10_000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of (at most the first ``limit`` of) uint8 images, as pixels in [0, 1]."""
    sample = images[:limit].float().div_(255.0)
    std = sample.std((0, 2, 3)).clamp_min(1e-3)
    return tuple(sample.mean((0, 2, 3)).tolist()), tuple(std.tolist())


def load_dataset(
    source: str | os.PathLike[str] = FASHION_MNIST,
    *,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> ImageData:
    """Fashion-MNIST (by name) or an ``ImageFolder`` directory (by path).

    Fashion-MNIST is looked for in ``data_dir``, then ``$NAS_DATA_DIR``, then Debian's
    ``/usr/share/datasets/fashion-mnist``, then ``~/.cache/nas/fashion-mnist``; ``download=True``
    fetches it with torchvision into the cache when none is found (needs a network). An
    ``ImageFolder`` path has one sub-directory of images per class; ``split`` then names an
    optional ``train``/``test`` sub-directory, used when present. Fashion-MNIST is normalised by its
    training-set statistics in both splits; an ImageFolder set by its own images' statistics.
    """
    if split not in _IDX_FILES:
        raise ValueError(f"split: must be 'train' or 'test', got {split!r}")
    if str(source) == FASHION_MNIST:
        return _load_fashion_mnist(split, data_dir, download)
    path = Path(source).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"data: {str(source)!r} is neither {FASHION_MNIST!r} nor a directory; {_FIX}")
    return _load_image_folder(path / split if (path / split).is_dir() else path)


def fashion_mnist_dirs(data_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where Fashion-MNIST is looked for, in order."""
    dirs = [Path(data_dir)] if data_dir is not None else []
    if os.environ.get(DATA_DIR_ENV):
        dirs.append(Path(os.environ[DATA_DIR_ENV]))
    dirs.extend(FASHION_MNIST_DIRS)
    # torchvision's downloader nests the files under FashionMNIST/raw.
    return [d.expanduser() for base in dirs for d in (base, base / "FashionMNIST" / "raw")]


def _load_fashion_mnist(split: str, data_dir, download: bool) -> ImageData:
    images_name, labels_name = _IDX_FILES[split]
    dirs = fashion_mnist_dirs(data_dir)
    for d in dirs:
        images, labels = _find_idx(d, images_name), _find_idx(d, labels_name)
        if images and labels:
            x = torch.from_numpy(_read_idx(images)).unsqueeze(1)
            y = torch.from_numpy(_read_idx(labels).astype(np.int64))
            return ImageData(FASHION_MNIST, x, y, 10, FASHION_MNIST_MEAN, FASHION_MNIST_STD)
    if download:
        _download_fashion_mnist(FASHION_MNIST_DIRS[-1].expanduser())
        return _load_fashion_mnist(split, data_dir, download=False)
    looked = ", ".join(str(d) for d in dirs)
    raise DataNotFoundError(f"data: Fashion-MNIST {split} files ({images_name}[.gz]) not found in {looked}; {_FIX}")


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format), plain or gzipped."""
    raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:  # 0x08: unsigned byte data
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: truncated IDX file ({data.size} values for shape {shape})")
    return data.reshape(shape).copy()


def _download_fashion_mnist(root: Path) -> None:
    from torchvision.datasets import FashionMNIST

    try:
        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
    except Exception as e:  # any network or mirror failure reads the same to the user
        raise DataNotFoundError(f"data: downloading Fashion-MNIST into {root} failed ({e}); {_FIX}") from e


def describe_preprocessing(
    source: str | os.PathLike[str] = FASHION_MNIST,
    *,
    resolution: int,
    channels: int = 3,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict:
    """What ``ImageData.batch`` does to this dataset's images, stated for a model card: a network
    trained on them wants its inputs made the same way. Label i names ``classes[i]``. An
    ImageFolder is loaded to read its statistics (its own images', as ``load_dataset`` takes them)."""
    if str(source) == FASHION_MNIST:
        classes, stored, mean, std = FASHION_MNIST_CLASSES, 1, FASHION_MNIST_MEAN, FASHION_MNIST_STD
    else:
        data = load_dataset(source, split="train", data_dir=data_dir)
        path = Path(source).expanduser()
        classes = _classes(path / "train" if (path / "train").is_dir() else path)
        stored, mean, std = data.images.shape[1], data.mean, data.std
    return {
        "dataset": str(source),
        "classes": list(classes),
        "value_range": "pixels / 255, in [0, 1], before normalising",
        "resize": [resolution, resolution],
        "resize_method": "bilinear with antialiasing (torch.nn.functional.interpolate, align_corners=False)",
        "mean": list(mean),
        "std": list(std),
        "normalise": "(pixel - mean) / std, per channel",
        "channels": channels,
        "channels_from": "the grayscale channel, repeated after normalising"
        if stored == 1 and channels != 1
        else f"the image's {stored} channels",
    }


def _classes(path: Path) -> tuple[str, ...]:
    """An ImageFolder's classes, in label order: its sub-directories, sorted."""
    return tuple(sorted(d.name for d in path.iterdir() if d.is_dir()))


def _load_image_folder(path: Path) -> ImageData:
    from PIL import Image

    classes = _classes(path)
    files = [
        (f, label)
        for label, cls in enumerate(classes)
        for f in sorted((path / cls).rglob("*"))
        if f.suffix.lower() in _IMAGE_SUFFIXES
    ]
    if not files:
        raise DataNotFoundError(
            f"data: no images under {path} (expected an ImageFolder layout: {path}/<class>/<image>.png); {_FIX}"
        )
    first = Image.open(files[0][0])
    mode = "L" if first.mode in ("L", "1", "I;16", "I") else "RGB"
    size = first.size
    arrays = []
    for f, _ in files:
        with Image.open(f) as im:
            im = im.convert(mode)
            arrays.append(np.asarray(im if im.size == size else im.resize(size, Image.BILINEAR)))
    x = torch.from_numpy(np.stack(arrays))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([label for _, label in files], dtype=torch.long)
    return ImageData(path.name, x, y, len(classes), *channel_stats(x))


# A job's process loads each data set once (the evaluator's batch, the training recipe's train and
# test splits, the in-process meter): loads are kept per process, a few at most.
LOADS_KEPT = 4  # a job's train and test splits, with room for a second data set


def load_once(
    source: str | os.PathLike[str] = FASHION_MNIST,
    *,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
) -> ImageData:
    """``load_dataset``, loaded once per process and (source, split, data_dir, ``$NAS_DATA_DIR``).
    Callers must not modify what it returns (``ImageData.subset`` and ``batch`` make new tensors)."""
    return _load_kept(str(source), split, None if data_dir is None else str(data_dir), os.environ.get(DATA_DIR_ENV))


@functools.lru_cache(maxsize=LOADS_KEPT)
def _load_kept(source: str, split: str, data_dir: str | None, _env: str | None) -> ImageData:
    return load_dataset(source, split=split, data_dir=data_dir)
