"""`nas data scenes | check`: make the Fashion-MNIST detection/segmentation scenes, check a dense data set."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nas.cli.format import table
from nas.tasks import DENSE_TASKS

# numpy, torch and PIL load inside the commands: the rest of `nas` starts without them.
SPLITS = ("train", "val")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="dense data: generate the Fashion-MNIST scenes, check a data set")
    cmds = data.add_subparsers(dest="data_cmd", required=True, metavar="{scenes,check}")

    p = cmds.add_parser("scenes", help="write seeded detection + segmentation scenes of Fashion-MNIST objects")
    p.add_argument("--out", required=True, help="the folder to create (train/ and val/ go in it)")
    p.add_argument("--train", type=int, default=None, help="train scenes (default 2000)")
    p.add_argument("--val", type=int, default=None, help="val scenes (default 500)")
    p.add_argument("--size", type=int, default=None, help="canvas size in px (default 128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="where Fashion-MNIST's IDX files are (default: the usual places)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (once the new set is complete)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_scenes)

    p = cmds.add_parser("check", help="load a detection or segmentation data set and report it, or what is wrong")
    p.add_argument("path", help="the data set's folder (train/ and val/ in it; see docs/dense_data.md)")
    p.add_argument("--task", required=True, choices=DENSE_TASKS)
    p.add_argument("--split", choices=SPLITS, help="only this split (default: each one present)")
    p.add_argument("--resolution", type=int, default=128, help="px the images are resized to (default 128)")
    p.add_argument("--limit", type=int, help="only the first N images of each split")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)


def cmd_scenes(args: argparse.Namespace) -> int:
    from nas.tasks import scenes

    start = time.perf_counter()
    out = scenes.make_scenes(
        args.out,
        train=scenes.DEFAULT_TRAIN if args.train is None else args.train,
        val=scenes.DEFAULT_VAL if args.val is None else args.val,
        size=scenes.DEFAULT_SIZE if args.size is None else args.size,
        seed=args.seed,
        data_dir=args.data_dir,
        overwrite=args.overwrite,
    )
    seconds = time.perf_counter() - start
    manifest = scenes.read_manifest(out)
    if args.json:
        print(json.dumps({"path": str(out), "seconds": round(seconds, 2), **manifest}, indent=2))
        return 0
    rows = [
        (split, s["images"], s["objects"], f"{s['objects'] / s['images']:.2f}", s["source"])
        for split, s in manifest["splits"].items()
    ]
    print(table(["split", "images", "objects", "objects/image", "objects from"], rows))
    print(
        f"{out}: {manifest['size']} x {manifest['size']} px RGB scenes, {len(manifest['classes']) - 1} classes "
        f"(masks: {len(manifest['classes'])} values incl. background 0), seed {manifest['seed']}, "
        f"written in {seconds:.1f} s"
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from nas.tasks.datasets import load_detection, load_segmentation

    root = Path(args.path).expanduser()
    splits = [args.split] if args.split else [s for s in SPLITS if (root / s).is_dir()]
    if not splits:
        raise FileNotFoundError(f"{root}: no train/ or val/ folder; a dense data set has one folder per split")
    load = load_detection if args.task == "detection" else load_segmentation
    report = []
    for split in splits:
        data = load(root, split, resolution=args.resolution, limit=args.limit)
        entry = {"split": split, "images": len(data), "classes": list(data.classes)}
        if args.task == "detection":
            counts = [len(b) for b in data.boxes]
            labels = [int(c) for lab in data.labels for c in lab]
            entry |= {"objects": sum(counts), "images_without_objects": counts.count(0),
                      "objects_per_class": {data.classes[c]: labels.count(c) for c in range(data.num_classes)}}  # fmt: skip
        else:
            pixels = data.masks.long().flatten()
            hist = [int((pixels == c).sum()) for c in range(data.num_classes)]
            entry |= {"ignored_pixels": int((pixels == 255).sum()),
                      "pixels_per_class": dict(zip(data.classes, hist, strict=True))}  # fmt: skip
        report.append(entry)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for entry in report:
        what = (
            f"{entry['objects']} objects ({entry['images_without_objects']} images without any)"
            if args.task == "detection"
            else f"{entry['ignored_pixels']} ignored pixels"
        )
        print(f"{entry['split']}: {entry['images']} images, {len(entry['classes'])} classes, {what}")
        per = entry.get("objects_per_class") or entry["pixels_per_class"]
        print(table(["class", "objects" if args.task == "detection" else "pixels"], list(per.items())))
    print(f"{root}: OK as a {args.task} data set at {args.resolution} px")
    return 0
