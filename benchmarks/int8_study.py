"""FP32 against INT8 accuracy on the ranking benchmark's 64 networks (docs/int8.md).

    python benchmarks/int8_study.py train [--workdir DIR] [--shard 0/2]   # the 64 trained, weights kept (hours)

Each network of ``benchmarks/results/proxy_ranking_train.csv`` (the ranking benchmark's 64, sampled
from the default space under seed 0) is trained again under the benchmark's truth recipe (3 epochs
over the fixed 10k-image subset of Fashion-MNIST, 32x32) and its weights are kept under
``--workdir``; its FP32 test accuracy is checked against the benchmark's recorded one. Networks
train cheapest first (by the benchmark's recorded seconds), so an interrupted run has covered the
most networks; a rerun skips those done.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy_ranking import TRAIN_CSV, TRUTH, TRUTH_IMAGES, append_row, build, done_hashes

import search_spaces as ss
from nas.data import load_dataset
from nas.proxies._training import Trainer, evaluate

WORKDIR = Path("/tmp/int8_study")
TRAINED_FIELDS = ["index", "arch_hash", "name", "params", "fp32_acc", "benchmark_acc", "train_seconds", "arch"]


def benchmark_rows() -> list[dict]:
    """The ranking benchmark's networks, cheapest to train first."""
    with TRAIN_CSV.open() as f:
        rows = list(csv.DictReader(f))
    return sorted(rows, key=lambda r: float(r["truth_seconds"]))


def train_stage(workdir: Path, shard: tuple[int, int]) -> None:
    weights = workdir / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    out = workdir / "trained.csv"
    train = load_dataset(split="train")
    test = load_dataset(split="test")
    subset = train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:TRUTH_IMAGES])
    done = done_hashes(out)
    for position, row in enumerate(benchmark_rows()):
        if position % shard[1] != shard[0] or row["arch_hash"] in done:
            continue
        arch = ss.ArchConfig.from_json(row["arch"])
        model = build(arch)
        start = time.perf_counter()
        Trainer(model, subset, TRUTH).advance(TRUTH.steps)
        seconds = time.perf_counter() - start
        accuracy = evaluate(model, test, resolution=TRUTH.resolution)
        torch.save(model.state_dict(), weights / f"{row['arch_hash']}.pt")
        append_row(
            out,
            TRAINED_FIELDS,
            {
                "index": row["index"],
                "arch_hash": row["arch_hash"],
                "name": row["name"],
                "params": row["params"],
                "fp32_acc": round(accuracy, 5),
                "benchmark_acc": row["truth_acc"],
                "train_seconds": round(seconds, 2),
                "arch": json.dumps(json.loads(row["arch"]), sort_keys=True),
            },
        )
        print(f"{row['name'][:50]:50s} fp32 {accuracy:.4f} (benchmark {row['truth_acc']}) {seconds:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["train"])
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    parser.add_argument("--shard", default="0/1", help="i/k: this process takes every k-th network from i")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    i, k = (int(p) for p in args.shard.split("/"))
    if args.stage == "train":
        train_stage(args.workdir, (i, k))


if __name__ == "__main__":
    main()
