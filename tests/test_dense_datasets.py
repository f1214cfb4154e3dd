"""The dense loaders: generated scenes round-trip through them, every bad annotation is refused
with an AnnotationError naming its field, and the size bounds hold."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nas.data import DataNotFoundError
from nas.tasks.datasets import (
    MAX_ANNOTATION_BYTES,
    AnnotationError,
    DetectionSet,
    SegmentationSet,
    load_detection,
    load_segmentation,
)
from nas.tasks.scenes import make_scenes

SIZE = 48


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_scenes(tmp_path_factory.mktemp("dense") / "set", train=8, val=3, size=SIZE, seed=1)


def test_detection_round_trip(scenes):
    coco = json.loads((scenes / "train/annotations.json").read_text())
    data = load_detection(scenes, "train", resolution=SIZE)
    assert isinstance(data, DetectionSet) and len(data) == 8 and data.num_classes == 10
    assert data.name == "fashion-mnist-scenes"
    assert data.classes == tuple(c["name"] for c in coco["categories"])
    assert data.images.dtype == torch.uint8 and data.images.shape == (8, 3, SIZE, SIZE)
    for i, img in enumerate(coco["images"]):
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        expected = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], dtype=torch.float32)
        assert torch.equal(data.boxes[i], expected)
        assert data.labels[i].tolist() == [a["category_id"] - 1 for a in anns]
        pixels = np.asarray(Image.open(scenes / "train/images" / img["file_name"]))
        assert np.array_equal(data.images[i].permute(1, 2, 0).numpy(), pixels)  # same size: stored as is
    x, targets = data.batch([2, 0])
    assert x.shape == (2, 3, SIZE, SIZE) and x.dtype == torch.float32
    assert torch.equal(targets[0]["boxes"], data.boxes[2]) and torch.equal(targets[1]["labels"], data.labels[0])
    everything, _ = data.batch(range(len(data)))
    assert everything.mean((0, 2, 3)).abs().max() < 1e-4  # normalised by the set's own statistics
    assert (everything.std((0, 2, 3)) - 1).abs().max() < 1e-3


def test_detection_resized_boxes_scale_with_the_images(scenes):
    native = load_detection(scenes, "val", resolution=SIZE)
    double = load_detection(scenes, "val", resolution=2 * SIZE, limit=2)
    assert len(double) == 2 and double.images.shape[-1] == 2 * SIZE
    for i in range(2):
        assert torch.allclose(double.boxes[i], native.boxes[i] * 2)
    sub = native.subset([2, 0])
    assert len(sub) == 2 and torch.equal(sub.boxes[0], native.boxes[2]) and sub.file_names[1] == native.file_names[0]
    assert sub.mean == native.mean  # a subset normalises as its parent


def test_segmentation_round_trip(scenes):
    data = load_segmentation(scenes, "val", resolution=SIZE)
    assert isinstance(data, SegmentationSet) and len(data) == 3 and data.num_classes == 11
    assert (
        data.classes[0] == "background" and data.classes[1:] == load_detection(scenes, "val", resolution=SIZE).classes
    )
    for i, name in enumerate(data.file_names):
        assert np.array_equal(data.masks[i].numpy(), np.asarray(Image.open(scenes / "val/masks" / name)))
    x, masks = data.batch([1])
    assert x.shape == (1, 3, SIZE, SIZE) and masks.dtype == torch.int64 and masks.shape == (1, SIZE, SIZE)
    half = load_segmentation(scenes, "val", resolution=SIZE // 2, stats=(data.mean, data.std))
    assert half.mean == data.mean and half.masks.shape == (3, SIZE // 2, SIZE // 2)
    assert torch.equal(half.masks, data.masks[:, 1::2, 1::2])  # nearest at the new pixels' centres
    assert set(half.masks.unique().tolist()) <= set(range(11))


def test_segmentation_classes_from_the_categories_without_classes_txt(scenes, tmp_path):
    shutil.copytree(scenes / "val", tmp_path / "val")
    (tmp_path / "val/classes.txt").unlink()
    data = load_segmentation(tmp_path, "val", resolution=SIZE)
    assert data.classes == load_segmentation(scenes, "val", resolution=SIZE).classes


# ---- a user's hand-made set, broken one field at a time ---------------------------------------------


def _user_set(root: Path) -> Path:
    """Two 40 x 30 images, two classes (ids 7 and 3), three boxes, masks with an ignored pixel."""
    folder = root / "train"
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True)
    for stem in ("a", "b"):
        Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(folder / "images" / f"{stem}.png")
        mask = np.zeros((30, 40), np.uint8)
        mask[5:10, 5:20], mask[:3, :3] = 2, 255
        Image.fromarray(mask).save(folder / "masks" / f"{stem}.png")
    (folder / "classes.txt").write_text("background\nhat\nboot\n")
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}, {"id": 2, "file_name": "b.png"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 7, "bbox": [5, 5, 15, 5], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 40, 30]},
            {"id": 3, "image_id": 2, "category_id": 3, "bbox": [10.5, 2.25, 4, 4]},
            {"id": 4, "image_id": 2, "category_id": 7, "bbox": [0, 0, 3, 3], "iscrowd": 1},
        ],
        "categories": [{"id": 7, "name": "hat"}, {"id": 3, "name": "boot"}],
    }
    (folder / "annotations.json").write_text(json.dumps(coco))
    return root


def test_a_users_set_loads_with_contiguous_labels_in_the_categories_order(tmp_path):
    data = load_detection(_user_set(tmp_path), "train", resolution=20)
    assert data.name == tmp_path.name
    assert data.classes == ("hat", "boot") and data.labels[0].tolist() == [0, 1] and data.labels[1].tolist() == [1]
    # 40 x 30 stretched to 20 x 20: x halves, y scales by 2/3; the crowd box is left out
    assert torch.allclose(data.boxes[1], torch.tensor([[5.25, 1.5, 7.25, 4.1666665]]))
    seg = load_segmentation(tmp_path, "train", resolution=20)
    assert seg.classes == ("background", "hat", "boot") and seg.masks[0, 0, 0] == 255


def _edit_json(root: Path, change) -> None:
    file = root / "train/annotations.json"
    coco = json.loads(file.read_text())
    change(coco)
    file.write_text(json.dumps(coco))


def _set(path: list, value):
    def change(coco):
        target = coco
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


DETECTION_ERRORS = [
    ("box outside the image", _set(["annotations", 0, "bbox"], [30, 5, 15, 5]), "annotations[0].bbox"),
    ("box of zero width", _set(["annotations", 2, "bbox"], [1, 1, 0, 4]), "annotations[2].bbox"),
    ("box of negative height", _set(["annotations", 2, "bbox"], [1, 1, 2, -4]), "annotations[2].bbox"),
    ("box of three numbers", _set(["annotations", 1, "bbox"], [1, 1, 2]), "annotations[1].bbox"),
    ("box not numbers", _set(["annotations", 1, "bbox"], ["1", 1, 2, 2]), "annotations[1].bbox"),
    ("unknown category id", _set(["annotations", 1, "category_id"], 4), "annotations[1].category_id"),
    ("category id not an integer", _set(["annotations", 1, "category_id"], [3]), "annotations[1].category_id"),
    ("unknown image id", _set(["annotations", 2, "image_id"], 9), "annotations[2].image_id"),
    ("annotation without bbox", lambda c: c["annotations"][0].pop("bbox"), "annotations[0].bbox"),
    ("image file missing", _set(["images", 1, "file_name"], "c.png"), "images[1].file_name"),
    ("image path outside", _set(["images", 1, "file_name"], "../b.png"), "images[1].file_name"),
    ("image size wrong", _set(["images", 0, "width"], 41), "images[0].width"),
    ("duplicate image id", _set(["images", 1, "id"], 1), "images[1].id"),
    ("duplicate category id", _set(["categories", 1, "id"], 7), "categories[1].id"),
    ("no images", _set(["images"], []), "images"),
    ("no annotations", _set(["annotations"], []), "annotations"),
    ("no categories", _set(["categories"], []), "categories"),
    ("categories missing", lambda c: c.pop("categories"), "categories"),
    ("images not a list", _set(["images"], {"id": 1}), "images"),
]


@pytest.mark.parametrize(("what", "change", "field"), DETECTION_ERRORS, ids=[e[0] for e in DETECTION_ERRORS])
def test_every_bad_detection_annotation_names_its_field(tmp_path, what, change, field):
    _user_set(tmp_path)
    _edit_json(tmp_path, change)
    with pytest.raises(AnnotationError) as err:
        load_detection(tmp_path, "train", resolution=20)
    assert err.value.field == field, str(err.value)
    assert str(err.value).startswith(f"{field}: ") and isinstance(err.value, ValueError)


@pytest.mark.parametrize("content", [b"{ not json", b"[1, 2]", b"\xff\xfe\x00"], ids=["syntax", "a list", "not utf-8"])
def test_a_file_that_is_not_coco_json_is_named(tmp_path, content):
    _user_set(tmp_path)
    (tmp_path / "train/annotations.json").write_bytes(content)
    with pytest.raises(AnnotationError) as err:
        load_detection(tmp_path, "train", resolution=20)
    assert err.value.field == "annotations.json"


def test_an_absurdly_large_annotations_file_is_refused_unread(tmp_path):
    _user_set(tmp_path)
    with open(tmp_path / "train/annotations.json", "r+b") as f:
        f.truncate(MAX_ANNOTATION_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(AnnotationError, match="MiB") as err:
        load_detection(tmp_path, "train", resolution=20)
    assert err.value.field == "annotations.json"


def _write_mask(root: Path, stem: str, array: np.ndarray, mode: str | None = None) -> None:
    Image.fromarray(array, mode).save(root / "train/masks" / f"{stem}.png")


SEGMENTATION_ERRORS = [
    ("value above the classes", lambda r: _write_mask(r, "b", np.full((30, 40), 3, np.uint8)), "masks/b.png"),
    ("mask missing", lambda r: (r / "train/masks/a.png").unlink(), "masks/a.png"),
    ("mask of another size", lambda r: _write_mask(r, "a", np.zeros((30, 41), np.uint8)), "masks/a.png"),
    ("mask in colour", lambda r: _write_mask(r, "a", np.zeros((30, 40, 3), np.uint8)), "masks/a.png"),
    ("no images", lambda r: [f.unlink() for f in (r / "train/images").iterdir()], "images"),
    ("one class only", lambda r: (r / "train/classes.txt").write_text("background\n"), "classes.txt"),
    (
        "no class names",
        lambda r: [(r / "train" / n).unlink() for n in ("classes.txt", "annotations.json")],
        "classes.txt",
    ),
    ("image unreadable", lambda r: (r / "train/images/b.png").write_bytes(b"not a png"), "images/b.png"),
]


@pytest.mark.parametrize(("what", "change", "field"), SEGMENTATION_ERRORS, ids=[e[0] for e in SEGMENTATION_ERRORS])
def test_every_bad_mask_names_its_field(tmp_path, what, change, field):
    _user_set(tmp_path)
    change(tmp_path)
    with pytest.raises(AnnotationError) as err:
        load_segmentation(tmp_path, "train", resolution=20)
    assert err.value.field == field, str(err.value)


def test_a_mask_value_error_says_where_and_how_to_fix(tmp_path):
    _user_set(tmp_path)
    mask = np.zeros((30, 40), np.uint8)
    mask[7, 12] = 9
    _write_mask(tmp_path, "a", mask)
    with pytest.raises(AnnotationError, match=r"value 9 at \(x=12, y=7\).*0\.\.2.*255") as err:
        load_segmentation(tmp_path, "train", resolution=20)
    assert err.value.field == "masks/a.png"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"resolution": 8}, "resolution"), ({"resolution": 4096}, "resolution"), ({"limit": 0}, "limit"),
     ({"split": "../x"}, "split")],
)  # fmt: skip
def test_argument_bounds_name_the_argument(tmp_path, kwargs, name):
    _user_set(tmp_path)
    args = {"split": "train", "resolution": 20, **kwargs}
    for load in (load_detection, load_segmentation):
        with pytest.raises(ValueError, match=rf"^{name}:"):
            load(tmp_path, **args)


def test_limit_loads_the_first_images_and_memory_is_bounded(tmp_path):
    _user_set(tmp_path)
    assert load_detection(tmp_path, "train", resolution=20, limit=1).file_names == ("a.png",)
    many = tmp_path / "many/train"
    (many / "images").mkdir(parents=True)
    (many / "classes.txt").write_text("background\nthing\n")
    for i in range(700):  # 700 x 2048 x 2048 x 4 bytes is above the bound: refused before any image is read
        (many / "images" / f"{i}.png").touch()
    with pytest.raises(ValueError, match=r"^limit:.*GiB"):
        load_segmentation(tmp_path / "many", "train", resolution=2048)


def test_a_missing_split_folder_is_data_not_found(tmp_path):
    _user_set(tmp_path)
    with pytest.raises(DataNotFoundError, match="val"):
        load_detection(tmp_path, "val", resolution=20)


# ---- the CLI --------------------------------------------------------------------------------------


def test_nas_data_scenes_then_check(tmp_path, capsys):
    from nas.cli import main

    out = tmp_path / "set"
    assert main(["data", "scenes", "--out", str(out), "--train", "3", "--val", "2", "--size", "32"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "fashion-mnist test split" in printed and "10 classes" in printed
    assert main(["data", "check", str(out), "--task", "segmentation", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["split"] for r in report] == ["train", "val"] and report[1]["images"] == 2
    assert main(["data", "check", str(out), "--task", "detection", "--split", "val"]) == 0
    assert "OK as a detection data set" in capsys.readouterr().out


def test_nas_data_check_reports_the_field_and_exits_2(tmp_path, capsys):
    from nas.cli import main

    _user_set(tmp_path)
    _edit_json(tmp_path, _set(["annotations", 0, "bbox"], [30, 5, 15, 5]))
    assert main(["data", "check", str(tmp_path), "--task", "detection"]) == 2
    assert "annotations[0].bbox" in capsys.readouterr().err
    assert main(["data", "scenes", "--out", str(tmp_path), "--train", "0"]) == 2
    assert "train:" in capsys.readouterr().err
