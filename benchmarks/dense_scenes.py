"""The default Fashion-MNIST scenes: how long they take to write and to load, what is in them.

    python benchmarks/dense_scenes.py [--runs 3] [--train 2000 --val 500 --size 128]

Writes the set ``--runs`` times into a temporary folder (``nas.tasks.scenes.make_scenes``, the
defaults unless told) and loads the last one with the real loaders at its own size; prints the
median wall time of each (this machine is shared: the median, not the best), the runs' spread, the
folder's size on disk, and per split the objects per scene, per class and their box sizes, as the
markdown of docs/dense_data.md's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from nas.tasks import scenes
from nas.tasks.datasets import load_detection, load_segmentation


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--train", type=int, default=scenes.DEFAULT_TRAIN)
    parser.add_argument("--val", type=int, default=scenes.DEFAULT_VAL)
    parser.add_argument("--size", type=int, default=scenes.DEFAULT_SIZE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = {"train": args.train, "val": args.val, "size": args.size, "seed": args.seed}
    load = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        writes = []
        for run in range(args.runs):
            out, seconds = _timed(scenes.make_scenes, Path(tmp) / f"run{run}", **counts)
            writes.append(seconds)
        loads = {}
        for split in ("train", "val"):
            loads[split, "detection"] = _timed(load_detection, out, split, resolution=args.size)[1]
            loads[split, "segmentation"] = _timed(load_segmentation, out, split, resolution=args.size)[1]
        disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        manifest = scenes.read_manifest(out)
        split_rows, class_rows = [], []
        for split in ("train", "val"):
            coco = json.loads((out / split / "annotations.json").read_text())
            per_image = Counter(a["image_id"] for a in coco["annotations"])
            hist = Counter(per_image[img["id"]] for img in coco["images"])
            sides = sorted((a["bbox"][2] * a["bbox"][3]) ** 0.5 for a in coco["annotations"])
            split_rows.append(
                f"| {split} | {len(coco['images'])} | {len(coco['annotations'])} | "
                + " / ".join(str(hist.get(k, 0)) for k in range(1, max(hist) + 1))
                + f" | {sides[0]:.0f} / {statistics.median(sides):.0f} / {sides[-1]:.0f} |"
            )
            per_class = Counter(a["category_id"] for a in coco["annotations"])
            class_rows.append([per_class[c["id"]] for c in coco["categories"]])

    print(f"`python benchmarks/dense_scenes.py --runs {args.runs} --train {args.train} --val {args.val} "
          f"--size {args.size} --seed {args.seed}` on {os.cpu_count()} CPU cores, load average {load:.1f} as it "
          "started (a shared machine: an idle one is faster):\n")  # fmt: skip
    print("| what | median s | runs (s) |")
    print("|---|---|---|")
    print(f"| write {args.train} + {args.val} scenes, {args.size} px | {statistics.median(writes):.1f} | "
          + ", ".join(f"{s:.1f}" for s in writes) + " |")  # fmt: skip
    for (split, task), seconds in loads.items():
        print(f"| load_{task}({split}, resolution={args.size}) | {seconds:.1f} | 1 run |")
    print(f"\nOn disk: {disk / 2**20:.0f} MiB ({disk / (args.train + args.val) / 1024:.0f} KiB a scene: "
          "RGB, class mask and instance PNGs).\n")  # fmt: skip
    print(
        "| split | scenes | objects | scenes with 1 / 2 / ... objects | box side px (sqrt area): min / median / max |"
    )
    print("|---|---|---|---|---|")
    print("\n".join(split_rows))
    classes = manifest["classes"][1:]
    print("\n| objects per class | " + " | ".join(classes) + " |")
    print("|---|" + "---|" * len(classes))
    for split, row in zip(("train", "val"), class_rows, strict=True):
        print(f"| {split} | " + " | ".join(str(v) for v in row) + " |")


if __name__ == "__main__":
    main()
