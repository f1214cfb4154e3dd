"""Detection and segmentation data from disk: COCO detection (annotations.json + images/) and
semantic masks (images/ + masks/), the format of docs/dense_data.md, the generated scenes' too.

Images are resized (stretched) to ``resolution`` x ``resolution``, 3 channels, and kept as uint8 in
memory; boxes are scaled alike (float xyxy pixels of the resized image), masks resized nearest.
``batch`` normalises by the set's per-channel mean and std (nas.data.channel_stats of its images,
or the ``stats`` given, e.g. the train split's for the val split).

Everything is checked before anything is returned: a bad annotation raises ``AnnotationError``
naming the field (``annotations[12].bbox``, ``masks/000003.png``) and the fix.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nas.data import DataNotFoundError, channel_stats
from nas.tasks import IGNORE_INDEX

MAX_ANNOTATION_BYTES = 256 * 2**20  # an annotations.json above this is refused before it is read
MAX_MEMORY_BYTES = 8 * 2**30  # the resized uint8 images (and masks) of one split
MIN_RESOLUTION, MAX_RESOLUTION = 16, 2048
BOX_TOLERANCE = 0.01  # px a box may pass the image's edge by (float rounding in exported COCO files); clipped
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class AnnotationError(ValueError):
    """A user's dataset is wrong: ``field`` names where (e.g. ``annotations[12].bbox``), the
    message says what and how to fix it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, eq=False)
class _DenseSet:
    name: str
    images: torch.Tensor  # uint8 (N, 3, S, S)
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    file_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def __len__(self) -> int:
        return len(self.images)

    def _inputs(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.images[idx].float().div_(255.0)
        return (x - torch.tensor(self.mean).view(1, -1, 1, 1)) / torch.tensor(self.std).view(1, -1, 1, 1)

    def preprocessing(self) -> dict:
        """What ``batch`` does to an image, for a model card: a deployed network wants the same."""
        return {
            "dataset": self.name,
            "classes": list(self.classes),
            "value_range": "pixels / 255, in [0, 1], before normalising",
            "resize": [self.resolution, self.resolution],
            "resize_method": "stretched, bilinear (PIL Image.resize); masks nearest",
            "mean": list(self.mean),
            "std": list(self.std),
            "normalise": "(pixel - mean) / std, per channel",
            "channels": 3,
            "channels_from": "the image converted to RGB",
        }


@dataclass(frozen=True, eq=False)
class DetectionSet(_DenseSet):
    """COCO detection in memory: per image ``boxes`` float32 (n, 4) xyxy px of the resized image
    and ``labels`` int64 (n,) in 0..num_classes-1 (``classes`` names them; no background class)."""

    boxes: tuple[torch.Tensor, ...] = field(default=())
    labels: tuple[torch.Tensor, ...] = field(default=())

    def subset(self, indices: Sequence[int] | torch.Tensor) -> DetectionSet:
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1).tolist()
        return DetectionSet(
            self.name, self.images[idx], self.classes, self.mean, self.std,
            tuple(self.file_names[i] for i in idx), tuple(self.boxes[i] for i in idx), tuple(self.labels[i] for i in idx),
        )  # fmt: skip

    def batch(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """(float32 B x 3 x S x S normalised, [{"boxes": (n, 4) xyxy, "labels": (n,)}] per image)."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        targets = [{"boxes": self.boxes[i].clone(), "labels": self.labels[i].clone()} for i in idx.tolist()]
        return self._inputs(idx), targets


@dataclass(frozen=True, eq=False)
class SegmentationSet(_DenseSet):
    """Semantic masks in memory: ``masks`` uint8 (N, S, S), class indices 0..num_classes-1 (0 the
    background, which ``classes`` names first) or 255 (ignored)."""

    masks: torch.Tensor = field(default_factory=lambda: torch.empty(0, 0, 0, dtype=torch.uint8))

    def subset(self, indices: Sequence[int] | torch.Tensor) -> SegmentationSet:
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        names = tuple(self.file_names[i] for i in idx.tolist())
        return SegmentationSet(self.name, self.images[idx], self.classes, self.mean, self.std, names, self.masks[idx])

    def batch(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(float32 B x 3 x S x S normalised, int64 B x S x S masks)."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        return self._inputs(idx), self.masks[idx].long()


def load_detection(
    path: str | os.PathLike[str],
    split: str,
    *,
    resolution: int,
    limit: int | None = None,
    stats: tuple[Sequence[float], Sequence[float]] | None = None,
) -> DetectionSet:
    """``path/split/annotations.json`` (COCO: images, annotations, categories) with its images in
    ``path/split/images/``. Category ids map to 0..K-1 in the categories' order; crowd
    annotations (iscrowd 1) are left out, as COCO's evaluation ignores them. ``limit``: the first
    that many images only. ``stats``: (mean, std) to normalise with instead of this split's own."""
    folder, resolution, limit = _checked_args(path, split, resolution, limit)
    coco = _read_annotations(folder / "annotations.json", required=True)
    categories = _categories(coco)
    images = _image_records(coco, folder)
    if not coco["annotations"]:
        raise AnnotationError("annotations", "the list is empty; a detection set needs at least one box")
    by_image: dict[int, list[tuple[int, list[float]]]] = {}
    ids = {record[0]: record for record in images}
    for k, ann in enumerate(coco["annotations"]):
        where = f"annotations[{k}]"
        if not isinstance(ann, dict):
            raise AnnotationError(where, "must be an object with image_id, category_id and bbox")
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise AnnotationError(
                    f"{where}.{key}", "missing; every annotation needs image_id, category_id and bbox"
                )
        for key in ("image_id", "category_id"):
            if isinstance(ann[key], bool) or not isinstance(ann[key], int):
                raise AnnotationError(f"{where}.{key}", f"must be an integer, got {ann[key]!r}")
        if ann["image_id"] not in ids:
            raise AnnotationError(f"{where}.image_id", f"{ann['image_id']!r} is not the id of any entry in images")
        if ann["category_id"] not in categories:
            raise AnnotationError(
                f"{where}.category_id",
                f"{ann['category_id']!r} is not among the categories' ids {sorted(categories)}; "
                "add the category or correct the id",
            )
        if ann.get("iscrowd", 0):
            continue
        _, _, width, height = ids[ann["image_id"]]
        box = _checked_box(ann["bbox"], f"{where}.bbox", width, height)
        by_image.setdefault(ann["image_id"], []).append((categories[ann["category_id"]], box))
    if not by_image:
        raise AnnotationError("annotations", "every annotation is a crowd region (iscrowd 1); none can be trained on")
    images = images[:limit] if limit else images
    _check_memory(len(images), resolution, masks=False)
    pixels, boxes, labels = [], [], []
    for image_id, file_name, width, height in images:
        pixels.append(_read_image(folder / "images" / file_name, f"images/{file_name}", resolution))
        objs = by_image.get(image_id, [])
        xywh = torch.tensor([b for _, b in objs], dtype=torch.float64).reshape(-1, 4)
        scale = torch.tensor([resolution / width, resolution / height] * 2, dtype=torch.float64)
        xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1) * scale
        boxes.append(xyxy.float())
        labels.append(torch.tensor([c for c, _ in objs], dtype=torch.long))
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
    mean, std = _stats(x, stats)
    names = tuple(name for name, _ in _ordered_names(coco))
    return DetectionSet(_name(path), x, names, mean, std, tuple(r[1] for r in images), tuple(boxes), tuple(labels))


def load_segmentation(
    path: str | os.PathLike[str],
    split: str,
    *,
    resolution: int,
    limit: int | None = None,
    stats: tuple[Sequence[float], Sequence[float]] | None = None,
) -> SegmentationSet:
    """``path/split/images/*`` with a mask ``path/split/masks/<stem>.png`` for each (single-channel
    class indices, 0 background, 255 ignore). Class names, background first, come from
    ``classes.txt`` (one a line, in the split's folder or ``path``), else from annotations.json's
    categories after a "background" class (mask value = category's position + 1)."""
    folder, resolution, limit = _checked_args(path, split, resolution, limit)
    classes = _segmentation_classes(folder, Path(path).expanduser())
    image_dir = folder / "images"
    files = sorted(f for f in image_dir.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES) if image_dir.is_dir() else []
    if not files:
        raise AnnotationError("images", f"no .png or .jpg images in {image_dir}; put the split's images there")
    files = files[:limit] if limit else files
    _check_memory(len(files), resolution, masks=True)
    pixels, masks = [], []
    for f in files:
        where = f"masks/{f.stem}.png"
        mask_file = folder / "masks" / f"{f.stem}.png"
        if not mask_file.is_file():
            raise AnnotationError(
                where, f"missing: every image needs its mask ({mask_file}), one class index per pixel"
            )
        image, size = _read_image(f, f"images/{f.name}", resolution, with_size=True)
        pixels.append(image)
        masks.append(_read_mask(mask_file, where, size, len(classes), resolution))
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()
    mean, std = _stats(x, stats)
    m = torch.from_numpy(np.stack(masks))
    return SegmentationSet(_name(path), x, classes, mean, std, tuple(f.name for f in files), m)


def _checked_args(path, split, resolution, limit) -> tuple[Path, int, int | None]:
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, int)
        or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
    ):
        raise ValueError(f"resolution: must be an integer in {MIN_RESOLUTION}..{MAX_RESOLUTION}, got {resolution!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit: must be an integer >= 1 (or None for every image), got {limit!r}")
    if not isinstance(split, str) or not split or "/" in split or split in (".", ".."):
        raise ValueError(f"split: must name a sub-folder such as 'train' or 'val', got {split!r}")
    root = Path(path).expanduser()
    folder = root / split
    if not folder.is_dir():
        raise DataNotFoundError(
            f"data: no folder {folder}; a dense data set has one folder per split (train/, val/) "
            "holding images/ and annotations.json (detection) or masks/ (segmentation); see docs/dense_data.md"
        )
    return folder, resolution, limit


def _read_annotations(file: Path, *, required: bool) -> dict | None:
    name = file.name
    if not file.is_file():
        if not required:
            return None
        raise AnnotationError(
            name, f"missing: {file} must hold the split's COCO annotations (images, annotations, categories)"
        )
    size = file.stat().st_size
    if size > MAX_ANNOTATION_BYTES:
        raise AnnotationError(
            name,
            f"{size / 2**20:.0f} MiB is above the {MAX_ANNOTATION_BYTES // 2**20} MiB this loader reads; "
            "split the set, or drop what training does not use (segmentation polygons, captions)",
        )
    try:
        coco = json.loads(file.read_bytes())
    except UnicodeDecodeError as e:
        raise AnnotationError(name, f"not UTF-8 text ({e}); save it as UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(
            name, f"not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); fix the syntax"
        ) from None
    if not isinstance(coco, dict):
        raise AnnotationError(
            name, f"must be a JSON object with images, annotations and categories, not a {type(coco).__name__}"
        )
    for key in ("images", "annotations", "categories") if required else ("categories",):
        if key not in coco:
            raise AnnotationError(key, f"missing in {name}; COCO needs images, annotations and categories")
        if not isinstance(coco[key], list):
            raise AnnotationError(key, f"must be a list, not a {type(coco[key]).__name__}")
    return coco


def _ordered_names(coco: dict) -> list[tuple[str, int]]:
    return [(str(c["name"]), i) for i, c in enumerate(coco["categories"])]


def _categories(coco: dict) -> dict[int, int]:
    """Category id -> contiguous class index, in the categories' order."""
    if not coco["categories"]:
        raise AnnotationError("categories", "the list is empty; name at least one class ({'id': 1, 'name': ...})")
    index: dict[int, int] = {}
    for j, cat in enumerate(coco["categories"]):
        where = f"categories[{j}]"
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise AnnotationError(where, "must be an object with an integer id and a name")
        if isinstance(cat["id"], bool) or not isinstance(cat["id"], int):
            raise AnnotationError(f"{where}.id", f"must be an integer, got {cat['id']!r}")
        if cat["id"] in index:
            raise AnnotationError(f"{where}.id", f"{cat['id']} is used by an earlier category; ids must be unique")
        index[cat["id"]] = j
    return index


def _image_records(coco: dict, folder: Path) -> list[tuple[int, str, int, int]]:
    """(id, file name, width, height) per entry of images, the file there and its size read."""
    from PIL import Image, UnidentifiedImageError

    if not coco["images"]:
        raise AnnotationError("images", "the list is empty; a data set needs at least one image")
    records, seen = [], set()
    for i, img in enumerate(coco["images"]):
        where = f"images[{i}]"
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise AnnotationError(where, "must be an object with an integer id and a file_name")
        if isinstance(img["id"], bool) or not isinstance(img["id"], int):
            raise AnnotationError(f"{where}.id", f"must be an integer, got {img['id']!r}")
        if img["id"] in seen:
            raise AnnotationError(f"{where}.id", f"{img['id']} is used by an earlier image; ids must be unique")
        seen.add(img["id"])
        name = img["file_name"]
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise AnnotationError(f"{where}.file_name", f"must be a path inside images/, got {name!r}")
        file = folder / "images" / name
        if not file.is_file():
            raise AnnotationError(f"{where}.file_name", f"{file} is missing; add the image or remove its entry")
        try:
            with Image.open(file) as im:
                width, height = im.size
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise AnnotationError(f"{where}.file_name", f"{file} is not a readable image ({e})") from None
        for key, actual in (("width", width), ("height", height)):
            if key in img and img[key] != actual:
                raise AnnotationError(f"{where}.{key}", f"says {img[key]!r} but {file} is {actual} px; correct it")
        records.append((img["id"], name, width, height))
    return records


def _checked_box(bbox, where: str, width: int, height: int) -> list[float]:
    ok = isinstance(bbox, list) and len(bbox) == 4
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
    if not ok:
        raise AnnotationError(where, f"must be [x, y, width, height], four finite numbers, got {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise AnnotationError(where, f"width and height must be > 0, got {bbox!r}; drop empty boxes")
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
        raise AnnotationError(
            where,
            f"{bbox!r} reaches outside the {width} x {height} image; boxes are [x, y, width, height] "
            "in pixels from the top-left corner, inside the image",
        )
    x0, y0 = max(x, 0.0), max(y, 0.0)
    return [x0, y0, min(x + w, width) - x0, min(y + h, height) - y0]


def _segmentation_classes(folder: Path, root: Path) -> tuple[str, ...]:
    for file in (folder / "classes.txt", root / "classes.txt"):
        if file.is_file():
            names = tuple(line.strip() for line in file.read_text().splitlines() if line.strip())
            if len(names) < 2:
                raise AnnotationError(
                    "classes.txt", f"{file} names {len(names)} class(es); it needs the background and at least one more"
                )
            if len(names) > IGNORE_INDEX:
                raise AnnotationError("classes.txt", f"{len(names)} classes; masks hold at most {IGNORE_INDEX}")
            return names
    coco = _read_annotations(folder / "annotations.json", required=False)
    if coco is None:
        raise AnnotationError(
            "classes.txt",
            f"missing: write {folder / 'classes.txt'}, one class name a line, line 0 the background "
            "(or give annotations.json with categories)",
        )
    _categories(coco)
    return ("background", *(name for name, _ in _ordered_names(coco)))


def _read_image(file: Path, where: str, resolution: int, *, with_size: bool = False):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:
            size = im.size
            rgb = np.asarray(im.convert("RGB").resize((resolution, resolution), Image.BILINEAR))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise AnnotationError(where, f"{file} is not a readable image ({e})") from None
    return (rgb, size) if with_size else rgb


def _read_mask(file: Path, where: str, size: tuple[int, int], num_classes: int, resolution: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:
            if im.mode not in ("L", "P"):
                raise AnnotationError(
                    where, f"mode {im.mode}: a mask is a single-channel PNG (mode L or P) of class indices"
                )
            if im.size != size:
                raise AnnotationError(
                    where,
                    f"is {im.size[0]} x {im.size[1]} px, its image {size[0]} x {size[1]}; masks match their images",
                )
            mask = np.asarray(im)
            small = np.asarray(im.resize((resolution, resolution), Image.NEAREST))
    except (OSError, UnidentifiedImageError) as e:
        raise AnnotationError(where, f"{file} is not a readable PNG ({e})") from None
    bad = (mask >= num_classes) & (mask != IGNORE_INDEX)
    if bad.any():
        y, x = (int(v[0]) for v in np.nonzero(bad))
        raise AnnotationError(
            where,
            f"value {int(mask[y, x])} at (x={x}, y={y}) is not a class: values are 0..{num_classes - 1} "
            f"({num_classes} classes, background 0) or {IGNORE_INDEX} (ignore); add the class to classes.txt or fix the mask",
        )
    return small.astype(np.uint8)


def _check_memory(n: int, resolution: int, *, masks: bool) -> None:
    need = n * resolution * resolution * (4 if masks else 3)
    if need > MAX_MEMORY_BYTES:
        raise ValueError(
            f"limit: {n} images at {resolution} px need {need / 2**30:.1f} GiB in memory, above the "
            f"{MAX_MEMORY_BYTES // 2**30} GiB bound; pass limit= (fewer images) or a smaller resolution"
        )


def _stats(x: torch.Tensor, stats) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if stats is None:
        return channel_stats(x)
    mean, std = (tuple(float(v) for v in s) for s in stats)
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"stats: expected (mean, std) of 3 values each, std > 0, got {stats!r}")
    return mean, std


def _name(path) -> str:
    """The data set's name: the generator's for generated scenes, else the folder's."""
    from nas.tasks.scenes import read_manifest

    manifest = read_manifest(Path(path).expanduser()) or {}
    return str(manifest.get("dataset") or Path(path).expanduser().resolve().name)


__all__ = ["AnnotationError", "DetectionSet", "SegmentationSet", "load_detection", "load_segmentation"]
