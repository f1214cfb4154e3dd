"""Detection and segmentation scenes made from Fashion-MNIST, offline and seeded.

Each scene is a ``size`` x ``size`` RGB canvas: a tinted gradient background, clutter (fragments of
other Fashion-MNIST images, which are not objects: background in the masks, no box), then 1-5
objects (whole Fashion-MNIST items, tinted, at random scales and positions, each one hidden by later
ones by at most ``max_occlusion`` of its pixels), then pixel noise. An object's foreground is its
resized image's pixels above ``FOREGROUND_THRESHOLD``; its box is tight around the foreground still
visible, its class mask value is class + 1 and its instance id its 1-based order in the scene.

Train scenes take their objects from Fashion-MNIST's train split, val scenes from its test split.
Scene i of a split is drawn from its own seed (``seed``, split, i): a larger set begins with the
smaller one's scenes, and the same arguments write the same bytes.

Written in the on-disk format of docs/dense_data.md (what users bring too), into a temporary folder
renamed into place at the end, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from nas.data import FASHION_MNIST, FASHION_MNIST_CLASSES, DataNotFoundError, load_dataset
from nas.tasks import SCENES_CLASSES, SCENES_DATASET, SCENES_SIZE, SCENES_TRAIN, SCENES_VAL

assert len(FASHION_MNIST_CLASSES) == SCENES_CLASSES, "the scenes' objects are Fashion-MNIST's classes"

SCENES_DIR_ENV = "NAS_SCENES_DIR"
SCENES_CACHE = Path("~/.cache/imc-nas")
GENERATOR_VERSION = 1  # bump when a change alters the scenes: the cache folder's name carries it

DEFAULT_TRAIN, DEFAULT_VAL, DEFAULT_SIZE = SCENES_TRAIN, SCENES_VAL, SCENES_SIZE
DEFAULT_OBJECTS = (1, 5)
DEFAULT_CLUTTER = (2, 6)
MAX_IMAGES = 100_000  # per split
MIN_SIZE, MAX_SIZE = 32, 1024
MAX_OBJECTS = 32
MIN_SCALE = 8  # px: a Fashion-MNIST item (28 px) drawn smaller is no longer an object
FOREGROUND_THRESHOLD = 40  # of 255, on the resized grayscale item: an object's pixels
MIN_VISIBLE = 16  # px of foreground an object keeps, or it is not placed
PLACEMENT_TRIES = 20
SPLITS = {"train": ("train", 0), "val": ("test", 1)}  # our split -> (Fashion-MNIST split, seed stream)
BACKGROUND = "background"
MANIFEST = "scenes.json"


def make_scenes(
    out_dir: str | os.PathLike[str],
    *,
    train: int = DEFAULT_TRAIN,
    val: int = DEFAULT_VAL,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    objects: tuple[int, int] = DEFAULT_OBJECTS,
    scale: tuple[int, int] | None = None,
    clutter: tuple[int, int] = DEFAULT_CLUTTER,
    max_occlusion: float = 0.3,
    noise: float = 6.0,
    overwrite: bool = False,
) -> Path:
    """Write ``train`` and ``val`` scenes of ``size`` px into ``out_dir`` (``train/`` and ``val/``,
    each with images/, masks/, instances/, annotations.json and classes.txt, and a scenes.json
    manifest at the top) and return its path. ``objects``, ``scale`` (px, default size/8 to
    size/2) and ``clutter`` are inclusive (min, max) ranges per scene."""
    counts = {"train": _bounded("train", train, 1, MAX_IMAGES), "val": _bounded("val", val, 1, MAX_IMAGES)}
    size = _bounded("size", size, MIN_SIZE, MAX_SIZE)
    objects = _bounded_range("objects", objects, 1, MAX_OBJECTS)
    scale = _bounded_range(
        "scale", scale if scale is not None else (max(MIN_SCALE, size // 8), size // 2), MIN_SCALE, size
    )
    clutter = _bounded_range("clutter", clutter, 0, MAX_OBJECTS)
    if not 0.0 <= max_occlusion < 1.0:
        raise ValueError(f"max_occlusion: must be in [0, 1), got {max_occlusion}")
    if not 0.0 <= noise <= 64.0:
        raise ValueError(f"noise: the pixel noise's std must be in 0..64 (of 255), got {noise}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be an integer >= 0, got {seed!r}")
    out = Path(out_dir).expanduser()
    if out.exists() and not overwrite:
        raise FileExistsError(
            f"out_dir: {out} exists; remove it, choose another folder or overwrite it (overwrite=True, `--overwrite`)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    params = {
        "objects": list(objects),
        "scale": list(scale),
        "clutter": list(clutter),
        "max_occlusion": max_occlusion,
        "noise": noise,
    }
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        splits = {}
        for split, n in counts.items():
            source_split, stream = SPLITS[split]
            source = load_dataset(FASHION_MNIST, split=source_split, data_dir=data_dir)
            items, labels = source.images[:, 0].numpy(), source.labels.numpy()
            n_objects = _write_split(tmp / split, n, size, (seed, stream), items, labels, objects, scale, clutter,
                                     max_occlusion, noise)  # fmt: skip
            splits[split] = {"images": n, "objects": n_objects, "source": f"{FASHION_MNIST} {source_split} split"}
        manifest = {
            "dataset": SCENES_DATASET,
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "size": size,
            "classes": [BACKGROUND, *FASHION_MNIST_CLASSES],
            "splits": splits,
            **params,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():  # overwrite: the old set is moved aside only once the new one is complete
            trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            out.rename(trash)
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_manifest(path: str | os.PathLike[str]) -> dict | None:
    """A scenes folder's manifest (what make_scenes wrote it with), None where there is none."""
    try:
        return json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def scenes_dir(
    *,
    train: int = DEFAULT_TRAIN,
    val: int = DEFAULT_VAL,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
) -> Path:
    """The cached scenes folder for these arguments, generated on first use (never downloaded).

    The cache lives in ``root``, else ``$NAS_SCENES_DIR``, else ``~/.cache/imc-nas``; one folder
    per (generator version, size, counts, seed). A file lock makes concurrent workers wait for the
    one that generates instead of racing it."""
    base = Path(root or os.environ.get(SCENES_DIR_ENV) or SCENES_CACHE).expanduser()
    name = f"{SCENES_DATASET}-v{GENERATOR_VERSION}-{size}px-{train}-{val}-seed{seed}"
    path = base / name
    if _complete(path):
        return path
    base.mkdir(parents=True, exist_ok=True)
    with open(base / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _complete(path):  # another worker may have made it while we waited
                for debris in base.glob(f".{name}.tmp-*"):  # a killed generation's (we hold the lock)
                    shutil.rmtree(debris, ignore_errors=True)
                make_scenes(path, train=train, val=val, size=size, seed=seed, data_dir=data_dir, overwrite=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return path


def dataset_path(source: str | os.PathLike[str], *, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder a dense job's ``data`` names: ``fashion-mnist-scenes`` is the default scenes'
    cache folder (made on first use), anything else a user's folder, which must exist."""
    if str(source) == SCENES_DATASET:
        return scenes_dir(data_dir=data_dir)
    path = Path(source).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(
            f"data: {str(source)!r} is neither {SCENES_DATASET!r} nor a folder; give a folder with train/ and "
            "val/ in the format of docs/dense_data.md (check it with `nas data check`), or generate one "
            "with `nas data scenes --out DIR`"
        )
    return path


def _complete(path: Path) -> bool:
    manifest = read_manifest(path)
    return manifest is not None and manifest.get("generator_version") == GENERATOR_VERSION


def _bounded(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ValueError(f"{name}: must be an integer in {lo}..{hi}, got {value!r}")
    return int(value)


def _bounded_range(name: str, value, lo: int, hi: int) -> tuple[int, int]:
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a (min, max) pair, got {value!r}") from None
    a, b = _bounded(f"{name}[0]", a, lo, hi), _bounded(f"{name}[1]", b, lo, hi)
    if a > b:
        raise ValueError(f"{name}: min {a} is above max {b}")
    return a, b


def _write_split(folder, n, size, seed, items, labels, objects, scale, clutter, max_occlusion, noise) -> int:
    from PIL import Image

    for sub in ("images", "masks", "instances"):
        (folder / sub).mkdir(parents=True)
    images, annotations = [], []
    for i in range(n):
        rng = np.random.default_rng([*seed, i])
        rgb, class_mask, instances, objs = _scene(rng, size, items, labels, objects, scale, clutter, max_occlusion,
                                                  noise)  # fmt: skip
        stem = f"{i:06d}"
        Image.fromarray(rgb, "RGB").save(folder / "images" / f"{stem}.png")
        Image.fromarray(class_mask, "L").save(folder / "masks" / f"{stem}.png")
        Image.fromarray(instances, "L").save(folder / "instances" / f"{stem}.png")
        images.append({"id": i + 1, "file_name": f"{stem}.png", "width": size, "height": size})
        for label, bbox, area in objs:
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": label + 1,
                "bbox": bbox, "area": area, "iscrowd": 0,
            })  # fmt: skip
    coco = {
        "info": {"description": f"{SCENES_DATASET} (nas.tasks.scenes, generator v{GENERATOR_VERSION})"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c + 1, "name": name} for c, name in enumerate(FASHION_MNIST_CLASSES)],
    }
    (folder / "annotations.json").write_text(json.dumps(coco) + "\n")
    (folder / "classes.txt").write_text("\n".join([BACKGROUND, *FASHION_MNIST_CLASSES]) + "\n")
    return len(annotations)


def _resized(item: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(item).resize((width, height), Image.BILINEAR))


def _scene(rng, size, items, labels, objects, scale, clutter, max_occlusion, noise):
    """One scene: (RGB uint8, class mask, instance ids, [(label, [x, y, w, h], area)])."""
    canvas = _background(rng, size)
    for _ in range(rng.integers(clutter[0], clutter[1] + 1)):
        _draw_fragment(rng, canvas, items)
    class_mask = np.zeros((size, size), np.uint8)
    instances = np.zeros((size, size), np.uint8)
    placed: list[tuple[int, int]] = []  # (label, pixels when drawn)
    for _ in range(rng.integers(objects[0], objects[1] + 1)):
        k = rng.integers(len(items))
        h = int(rng.integers(scale[0], scale[1] + 1))
        w = int(np.clip(round(h * rng.uniform(0.8, 1.25)), scale[0], size))
        fg_item = _resized(items[k], w, h)
        fg = fg_item > FOREGROUND_THRESHOLD
        if fg.sum() < MIN_VISIBLE:
            continue
        spot = _place(rng, instances, fg, placed, max_occlusion)
        if spot is None:
            continue
        y, x = spot
        color = rng.integers(90, 256, 3).astype(np.float32)
        shade = (0.35 + 0.65 * fg_item[..., None] / 255.0) * color
        canvas[y : y + h, x : x + w][fg] = shade[fg]
        class_mask[y : y + h, x : x + w][fg] = labels[k] + 1
        instances[y : y + h, x : x + w][fg] = len(placed) + 1
        placed.append((int(labels[k]), int(fg.sum())))
    if noise > 0:
        canvas += rng.normal(0.0, noise, canvas.shape).astype(np.float32)
    objs = []
    for j, (label, _) in enumerate(placed):
        ys, xs = np.nonzero(instances == j + 1)
        x0, y0 = int(xs.min()), int(ys.min())
        objs.append((label, [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1], len(xs)))
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), class_mask, instances, objs


def _place(rng, instances, fg, placed, max_occlusion):
    """A top-left corner where ``fg`` hides no earlier object by more than ``max_occlusion`` of
    its pixels (or leaves it fewer than MIN_VISIBLE), or None after PLACEMENT_TRIES."""
    size = instances.shape[0]
    h, w = fg.shape
    for _ in range(PLACEMENT_TRIES):
        y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        if not placed:
            return y, x
        covered = np.bincount(instances[y : y + h, x : x + w][fg], minlength=len(placed) + 1)[1:]
        visible = np.bincount(instances.ravel(), minlength=len(placed) + 1)[1:]
        drawn = np.array([pixels for _, pixels in placed])
        left = visible - covered
        if np.all(left >= np.maximum((1.0 - max_occlusion) * drawn, MIN_VISIBLE)):
            return y, x
    return None


def _background(rng, size: int) -> np.ndarray:
    """A dark tinted canvas with a linear gradient in a random direction (float32, 0-255)."""
    base = rng.uniform(0, 80, 3).astype(np.float32)
    tilt = rng.uniform(-40, 40, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-0.5, 0.5, size, dtype=np.float32)
    direction = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    return np.clip(base + direction[..., None] * tilt, 0, 255)


def _draw_fragment(rng, canvas: np.ndarray, items: np.ndarray) -> None:
    """Clutter: a crop of a random item (a quarter to a half of it), half transparent, not an object."""
    size = canvas.shape[0]
    item = items[rng.integers(len(items))]
    c = int(rng.integers(7, 15))
    y0, x0 = int(rng.integers(0, 28 - c + 1)), int(rng.integers(0, 28 - c + 1))
    s = int(rng.integers(max(4, size // 16), max(5, size // 6) + 1))
    patch = _resized(np.ascontiguousarray(item[y0 : y0 + c, x0 : x0 + c]), s, s)
    fg = patch > FOREGROUND_THRESHOLD
    y, x = int(rng.integers(0, size - s + 1)), int(rng.integers(0, size - s + 1))
    color = rng.uniform(40, 200, 3).astype(np.float32)
    region = canvas[y : y + s, x : x + s]
    region[fg] = 0.5 * region[fg] + 0.5 * (patch[fg, None] / 255.0) * color


__all__ = [
    "DEFAULT_SIZE",
    "DEFAULT_TRAIN",
    "DEFAULT_VAL",
    "GENERATOR_VERSION",
    "SCENES_DATASET",
    "SCENES_DIR_ENV",
    "dataset_path",
    "make_scenes",
    "read_manifest",
    "scenes_dir",
]
