"""FP32 against INT8 accuracy on the ranking benchmark's 64 networks (docs/int8.md).

    python benchmarks/int8_study.py train [--workdir DIR] [--shard 0/2]   # the 64 trained, weights kept (hours)
    python benchmarks/int8_study.py quantize [--workdir DIR]              # FP32 and INT8 of each trained one
    python benchmarks/int8_study.py report [--out docs/int8.md]           # the tables (from the results CSV)

Each network of ``benchmarks/results/proxy_ranking_train.csv`` (the ranking benchmark's 64, sampled
from the default space under seed 0) is trained again under the benchmark's truth recipe (3 epochs
over the fixed 10k-image subset of Fashion-MNIST, 32x32) and its weights are kept under
``--workdir``; its FP32 test accuracy is checked against the benchmark's recorded one. Networks
train cheapest first (by the benchmark's recorded seconds), so an interrupted run has covered the
most networks; a rerun skips those done.

``quantize`` scores every network trained so far (``trained.csv``) on the full Fashion-MNIST test
split (10k images, 32x32) in onnxruntime: the FP32 ONNX graph, the INT8 QDQ graph in each of
``nas.int8.SCOPES``, and, for attribution, the "all" scope with one operation family
(``nas.int8.FAMILIES``) left in FP32 at a time. One row per (network, configuration) is appended
to ``quantized.csv`` in the workdir (resumable: a rerun picks up networks trained since); the
finished CSV is copied to ``benchmarks/results/int8_study.csv``, from which ``report`` rebuilds
docs/int8.md without the workdir.
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
RESULT_CSV = Path(__file__).parent / "results" / "int8_study.csv"
QUANTIZED_FIELDS = ["arch_hash", "name", "params", "config", "scope", "seed", "keep_fp32", "accuracy", "drop", "flips",
                    "logit_snr_db", "quantize_seconds", "score_seconds", "int8_ops", "torch_fp32_acc", "arch"]  # fmt: skip
# other calibration draws of the "all" scope: how much an INT8 accuracy moves with the images alone
CALIBRATION_SEEDS = (1, 2)
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


def quantize_stage(workdir: Path) -> None:
    """FP32 and INT8 test accuracy of every trained network not yet in ``quantized.csv``."""
    import numpy as np

    from nas import int8

    out = workdir / "quantized.csv"
    done = done_hashes(out)
    with (workdir / "trained.csv").open() as f:
        trained = [r for r in csv.DictReader(f) if r["arch_hash"] not in done]
    if not trained:
        print("nothing new to quantize", flush=True)
        return
    train = load_dataset(split="train")
    test = load_dataset(split="test")
    resolution = TRUTH.resolution
    for row in trained:
        model = build(ss.ArchConfig.from_json(row["arch"]))
        model.load_state_dict(torch.load(workdir / "weights" / f"{row['arch_hash']}.pt"))
        fp32 = int8.fp32_onnx(model, resolution=resolution)
        start = time.perf_counter()
        reference = _logits(fp32, test, resolution)
        fp32_seconds = time.perf_counter() - start
        fp32_acc = _accuracy(reference, test)
        families = sorted({int8.family(n) for n in _nodes(fp32)} - {"other"}, key=int8.FAMILIES.index)
        configs = [("fp32", None, (), 0)] + [(scope, scope, (), 0) for scope in int8.SCOPES]
        configs += [(f"all@seed{seed}", "all", (), seed) for seed in CALIBRATION_SEEDS]
        configs += [(f"all-fp32:{name}", "all", (name,), 0) for name in families]
        rows = []
        for config, scope, keep, seed in configs:
            if scope is None:
                logits, q_seconds, s_seconds, ops = reference, 0.0, fp32_seconds, {}
            else:
                recipe = int8.Int8Recipe(scope=scope, seed=seed)
                start = time.perf_counter()
                onnx = int8.quantize_onnx(
                    fp32, int8.calibration_set(train, recipe), resolution=resolution, recipe=recipe, keep_fp32=keep
                )
                q_seconds = time.perf_counter() - start
                ops = {op: [c["nodes"], c["int8_in"], c["int8_out"]] for op, c in int8.coverage(onnx).items()}
                start = time.perf_counter()
                logits = _logits(onnx, test, resolution)
                s_seconds = time.perf_counter() - start
            accuracy = _accuracy(logits, test)
            noise = float(((logits - reference) ** 2).sum())
            snr = 10 * np.log10(float((reference**2).sum()) / noise) if noise > 0 else float("inf")
            rows.append({
                "arch_hash": row["arch_hash"], "name": row["name"], "params": row["params"], "config": config,
                "scope": scope or "", "seed": seed, "keep_fp32": ",".join(keep), "accuracy": round(accuracy, 5),
                "drop": round(fp32_acc - accuracy, 5),
                "flips": round(float((logits.argmax(-1) != reference.argmax(-1)).mean()), 5),
                "logit_snr_db": round(snr, 2), "quantize_seconds": round(q_seconds, 2),
                "score_seconds": round(s_seconds, 2),
                "int8_ops": json.dumps(ops, separators=(",", ":")), "torch_fp32_acc": row["fp32_acc"], "arch": row["arch"],
            })  # fmt: skip
        for r in rows:  # a network's rows together: an interrupted network is redone whole
            append_row(out, QUANTIZED_FIELDS, r)
        summary = " ".join(f"{r['config']} {r['drop']:+.4f}" for r in rows[1:])
        print(f"{row['name'][:40]:40s} fp32 {fp32_acc:.4f} (torch {row['fp32_acc']}) {summary}", flush=True)
    RESULT_CSV.write_bytes(out.read_bytes())


def _nodes(onnx: bytes) -> list:
    import onnx as onnx_lib

    return list(onnx_lib.load_from_string(onnx).graph.node)


def _logits(onnx: bytes, data, resolution: int):
    from nas import int8

    return int8.onnx_logits(onnx, data, resolution=resolution)


def _accuracy(logits, data) -> float:
    return float((logits.argmax(-1) == data.labels.numpy()).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["train", "quantize", "report"])
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    parser.add_argument("--shard", default="0/1", help="i/k: this process takes every k-th network from i")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    i, k = (int(p) for p in args.shard.split("/"))
    if args.stage == "train":
        train_stage(args.workdir, (i, k))
    elif args.stage == "quantize":
        quantize_stage(args.workdir)


if __name__ == "__main__":
    main()
