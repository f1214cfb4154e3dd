"""The Fashion-MNIST scenes generator: seeded bytes, tight boxes, masks and instance ids that agree
with the annotations, train/val objects from their own Fashion-MNIST splits, atomic writes, bounds."""

import gzip
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nas.data import DataNotFoundError
from nas.tasks.scenes import FOREGROUND_THRESHOLD, dataset_path, make_scenes, read_manifest, scenes_dir

SMALL = {"train": 12, "val": 4, "size": 64, "seed": 3}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_scenes(tmp_path_factory.mktemp("scenes") / "set", **SMALL)


def _files(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_other_images(scenes, tmp_path):
    again = make_scenes(tmp_path / "again", **SMALL)
    assert _files(again) == _files(scenes)
    other = make_scenes(tmp_path / "other", **{**SMALL, "seed": 4})
    same = [n for n in _files(other) if n.startswith("train/images/") and _files(other)[n] == _files(scenes)[n]]
    assert same == []


def test_a_larger_set_begins_with_the_smaller_ones_scenes(scenes, tmp_path):
    fewer = make_scenes(tmp_path / "fewer", **{**SMALL, "train": 5})
    for name in (f"{i:06d}.png" for i in range(5)):
        assert (fewer / "train/images" / name).read_bytes() == (scenes / "train/images" / name).read_bytes()


def test_the_layout_and_manifest(scenes):
    manifest = read_manifest(scenes)
    assert manifest["splits"]["train"]["images"] == 12 and manifest["splits"]["val"]["images"] == 4
    for split, n in (("train", 12), ("val", 4)):
        folder = scenes / split
        coco = json.loads((folder / "annotations.json").read_text())
        assert [img["file_name"] for img in coco["images"]] == [f"{i:06d}.png" for i in range(n)]
        assert manifest["splits"][split]["objects"] == len(coco["annotations"])
        assert [c["id"] for c in coco["categories"]] == list(range(1, 11))
        assert (folder / "classes.txt").read_text().splitlines()[0] == "background"
        for sub in ("images", "masks", "instances"):
            assert len(list((folder / sub).glob("*.png"))) == n
        with Image.open(folder / "images/000000.png") as im:
            assert (im.mode, im.size) == ("RGB", (64, 64))


def test_boxes_are_inside_and_tight_and_masks_and_instances_agree(scenes):
    for split in ("train", "val"):
        folder = scenes / split
        coco = json.loads((folder / "annotations.json").read_text())
        counts = []
        for img in coco["images"]:
            stem = Path(img["file_name"]).stem
            classes = np.asarray(Image.open(folder / "masks" / f"{stem}.png"))
            instances = np.asarray(Image.open(folder / "instances" / f"{stem}.png"))
            anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
            counts.append(len(anns))
            assert set(np.unique(instances)) == {0, *range(1, len(anns) + 1)}  # ids 1..n, in annotation order
            assert np.array_equal(classes == 0, instances == 0)  # every object pixel has its instance
            for j, a in enumerate(anns, start=1):
                x, y, w, h = a["bbox"]
                assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= 64 and y + h <= 64
                ys, xs = np.nonzero(instances == j)
                assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)  # tight
                assert a["area"] == len(xs)
                assert set(np.unique(classes[instances == j])) == {a["category_id"]}
        assert min(counts) >= 1 and max(counts) <= 5


def test_objects_stand_out_from_the_background(scenes):
    """Object pixels are drawn brighter than the dark background they sit on (a learnable signal)."""
    rgb = np.asarray(Image.open(scenes / "train/images/000000.png")).astype(float)
    mask = np.asarray(Image.open(scenes / "train/masks/000000.png"))
    assert rgb[mask > 0].max(1).mean() > rgb[mask == 0].max(1).mean() + FOREGROUND_THRESHOLD


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _fake_fashion_mnist(folder: Path, *, train_label: int, test_label: int) -> Path:
    """IDX files where every train item has one label and every test item another."""
    folder.mkdir()
    items = np.zeros((20, 28, 28), np.uint8)
    items[:, 4:24, 6:22] = 200
    _write_idx(folder / "train-images-idx3-ubyte.gz", items)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(20, train_label))
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", items)
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(20, test_label))
    return folder


def test_train_objects_come_from_the_train_split_and_val_objects_from_the_test_split(tmp_path):
    data = _fake_fashion_mnist(tmp_path / "fm", train_label=2, test_label=7)
    out = make_scenes(tmp_path / "set", train=3, val=3, size=48, data_dir=data)
    for split, category in (("train", 3), ("val", 8)):
        coco = json.loads((out / split / "annotations.json").read_text())
        assert {a["category_id"] for a in coco["annotations"]} == {category}
        # a solid rectangle item, alone on its canvas: its foreground fills its box
        alone = [
            a for a in coco["annotations"] if [b["image_id"] for b in coco["annotations"]].count(a["image_id"]) == 1
        ]
        assert all(a["area"] == a["bbox"][2] * a["bbox"][3] for a in alone)


def test_a_failure_midway_leaves_nothing_behind(tmp_path):
    data = _fake_fashion_mnist(tmp_path / "fm", train_label=0, test_label=1)
    with gzip.open(data / "t10k-images-idx3-ubyte.gz", "wb") as f:  # the test split truncated: val fails
        f.write(bytes([0, 0, 8, 3]) + (20).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(100))
    with pytest.raises(ValueError, match="truncated"):
        make_scenes(tmp_path / "out" / "set", train=3, val=2, size=32, data_dir=data)
    assert list((tmp_path / "out").iterdir()) == []  # neither the set nor its temporary folder


def test_an_existing_folder_is_kept_unless_overwrite(scenes, tmp_path):
    out = make_scenes(tmp_path / "set", train=2, val=1, size=32)
    before = _files(out)
    with pytest.raises(FileExistsError, match="out_dir"):
        make_scenes(out, train=3, val=1, size=32)
    assert _files(out) == before
    make_scenes(out, train=3, val=1, size=32, overwrite=True)
    assert read_manifest(out)["splits"]["train"]["images"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"train": 0}, "train"),
        ({"val": 100_001}, "val"),
        ({"size": 16}, "size"),
        ({"size": 4096}, "size"),
        ({"objects": (0, 3)}, "objects"),
        ({"objects": (4, 2)}, "objects"),
        ({"objects": (1, 500)}, "objects"),
        ({"scale": (4, 30)}, "scale"),
        ({"scale": (16, 100)}, "scale"),  # larger than the 64 px canvas
        ({"clutter": 3}, "clutter"),
        ({"max_occlusion": 1.0}, "max_occlusion"),
        ({"seed": -1}, "seed"),
        ({"train": 2.5}, "train"),
    ],
)
def test_bounds_name_the_argument(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        make_scenes(tmp_path / "set", **{"train": 2, "val": 1, "size": 64, **kwargs})
    assert not (tmp_path / "set").exists()


def test_scenes_dir_generates_once_under_the_cache_root_and_env(tmp_path, monkeypatch):
    small = {"train": 3, "val": 2, "size": 32}
    killed = tmp_path / ".fashion-mnist-scenes-v1-32px-3-2-seed0.tmp-1-abcdef12"  # a killed run's folder
    (killed / "train").mkdir(parents=True)
    results = []
    workers = [threading.Thread(target=lambda: results.append(scenes_dir(root=tmp_path, **small))) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(set(results)) == 1 and results[0].parent == tmp_path
    made = (results[0] / "scenes.json").stat().st_mtime_ns
    assert scenes_dir(root=tmp_path, **small) == results[0]
    assert (results[0] / "scenes.json").stat().st_mtime_ns == made  # found, not made again
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".") and "tmp" in p.name] == []
    monkeypatch.setenv("NAS_SCENES_DIR", str(tmp_path / "env"))
    assert scenes_dir(**small).parent == tmp_path / "env"


def test_dataset_path_names_the_scenes_or_a_users_folder(tmp_path, monkeypatch, scenes):
    assert dataset_path(scenes) == scenes
    with pytest.raises(DataNotFoundError, match="nas data scenes"):
        dataset_path(tmp_path / "nothing")
