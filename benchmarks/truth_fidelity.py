"""Does the ranking benchmark's 3-epoch truth rank networks as longer training does?

    python benchmarks/truth_fidelity.py train [--shard 0/2] [--epochs 15]   # about 50 minutes on 2 processes
    python benchmarks/truth_fidelity.py train --others 64 --threads 1 [--reverse] [--cheapest-first]   # all 64
    python benchmarks/truth_fidelity.py report --out docs/truth_fidelity.md

The networks: every one of the ranking benchmark's 64 (``proxy_ranking.py``) that meets the README
job's constraints (docs/examples/edge-classifier.yaml, priced at its deployment shape), plus
``--others`` of the rest at evenly spaced parameter counts. Each is trained again from the same
initialisation on the same 10k images with the benchmark's recipe stretched to ``--epochs``
(warm-up, then cosine over all steps), and scored on the same 10k test images. Rows are appended to
``results/truth_long.csv`` as they finish, so an interrupted run resumes. Runs on a GPU when one
is there (``--device cuda``), on the CPU otherwise.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from proxy_ranking import (
    PROXY_CSV,
    REPEAT_CSV,
    RESULTS,
    TRAIN_CSV,
    TRUTH,
    TRUTH_EPOCHS,
    TRUTH_IMAGES,
    append_row,
    build,
    done_hashes,
)
from scipy.stats import kendalltau, spearmanr

import search_spaces as ss
from nas.data import load_dataset
from nas.plugins import resolve_space
from nas.pricing import price, resolve_accelerator
from nas.proxies._training import Trainer, evaluate
from nas.spec import load_spec

README_JOB = Path(__file__).parents[1] / "docs" / "examples" / "edge-classifier.yaml"
LONG_CSV = RESULTS / "truth_long.csv"
PLANNED_OTHERS = 6  # the check as planned: the README job's feasible networks + 6 at parameter quantiles
PLANNED = 20  # ... 14 feasible under the first calibration + 6: the CSV's first rows
FIELDS = ["index", "arch_hash", "name", "params", "feasible", "truth_acc", "long_acc", "epochs", "long_seconds"]


def long_recipe(epochs: int):
    steps = -(-epochs * TRUTH_IMAGES // TRUTH.batch_size)
    return replace(TRUTH, steps=steps, decay_steps=steps)


def feasible_now() -> dict[str, bool]:
    """arch_hash -> whether the benchmark's network meets the README job's constraints, priced by
    the hardware model as it is now (the CSV's ``feasible`` column records it as it was then)."""
    spec = load_spec(README_JOB)
    space, accelerator = resolve_space(spec), resolve_accelerator(spec)
    with TRAIN_CSV.open() as f:
        return {
            r["arch_hash"]: price(space, ss.ArchConfig.from_json(r["arch"]), spec, accelerator).feasible
            for r in csv.DictReader(f)
        }


def chosen(others: int) -> list[dict]:
    """The benchmark's rows to train again: the README job's feasible ones, plus ``others``."""
    feasible = feasible_now()
    with TRAIN_CSV.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["feasible"] = feasible[row["arch_hash"]]
    rest = sorted((r for r in rows if not r["feasible"]), key=lambda r: int(r["params"]))
    if others >= len(rest):  # all of them (evenly spaced picks would repeat some and skip others)
        picks = range(len(rest))
    else:
        picks = np.linspace(0, len(rest) - 1, others + 2)[1:-1].round().astype(int) if others else []
    return sorted([r for r in rows if r["feasible"]] + [rest[i] for i in picks], key=lambda r: int(r["index"]))


def _claim_path(out: Path, arch_hash: str) -> Path:
    return Path(tempfile.gettempdir()) / f"{out.stem}.{arch_hash}.claim"


def claim(out: Path, arch_hash: str) -> bool:
    """Claim a network for this process, unless a live process on this machine holds it: helpers
    started with any order or shard then never train the same network at once."""
    path = _claim_path(out, arch_hash)
    try:
        holder = int(path.read_text())
        os.kill(holder, 0)
        if holder != os.getpid():
            return False
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass  # unclaimed, or its holder is gone
    path.write_text(str(os.getpid()))
    return True


def train_stage(
    rows: list[dict],
    shard: tuple[int, int],
    epochs: int,
    device: str,
    out: Path,
    reverse: bool = False,
    cheapest_first: bool = False,
) -> None:
    """Train this shard's rows; ``reverse`` walks them from the end, so a second process can help a
    slow shard (each row is skipped if another process has finished it meanwhile)."""
    train, test = load_dataset(split="train"), load_dataset(split="test")
    truth_set = train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:TRUTH_IMAGES])
    recipe = long_recipe(epochs)
    mine = [row for k, row in enumerate(rows) if k % shard[1] == shard[0]]
    if cheapest_first:  # by the 3-epoch truth's training time: most networks in the time there is
        mine.sort(key=lambda row: float(row["truth_seconds"]))
    for row in reversed(mine) if reverse else mine:
        if row["arch_hash"] in done_hashes(out) or not claim(out, row["arch_hash"]):
            continue
        model = build(ss.ArchConfig.from_json(row["arch"])).to(device)
        start = time.perf_counter()
        Trainer(model, truth_set, recipe).advance(recipe.steps)
        acc = evaluate(model, test, resolution=recipe.resolution)
        result = {f: row[f] for f in ("index", "arch_hash", "name", "params", "feasible", "truth_acc")}
        result.update(long_acc=round(acc, 5), epochs=epochs, long_seconds=round(time.perf_counter() - start, 1))
        if row["arch_hash"] not in done_hashes(out):  # a helper may have finished it meanwhile
            append_row(out, FIELDS, result)
        _claim_path(out, row["arch_hash"]).unlink(missing_ok=True)
        print(
            f"[{row['index']:>3}] {row['name'][:50]:50s} 3 ep {row['truth_acc']} -> {epochs} ep {acc:.4f}", flush=True
        )


def report(path: Path) -> str:
    with path.open() as f:  # one row per network (a retraining repeats it exactly: same seed and recipe)
        rows = list({r["arch_hash"]: r for r in csv.DictReader(f)}.values())
    short = np.array([float(r["truth_acc"]) for r in rows])
    long = np.array([float(r["long_acc"]) for r in rows])
    params = np.array([float(r["params"]) for r in rows])
    now = feasible_now()
    feasible = np.array([now[r["arch_hash"]] for r in rows])
    epochs = sorted({r["epochs"] for r in rows})
    tau, rho = kendalltau(short, long)[0], spearmanr(short, long)[0]
    first = np.arange(len(rows)) < PLANNED  # the CSV's order is the order they were trained in
    with REPEAT_CSV.open() as f:
        again = {r["arch_hash"]: float(r["truth_acc"]) for r in csv.DictReader(f)}
    with TRAIN_CSV.open() as f:
        seed0 = {r["arch_hash"]: float(r["truth_acc"]) for r in csv.DictReader(f)}
    repeat_tau = kendalltau([seed0[h] for h in again], list(again.values()))[0]
    lines = [
        "# Truth fidelity: the 3-epoch benchmark truth against longer training",
        "",
        "Printed by `benchmarks/truth_fidelity.py report` from `benchmarks/results/truth_long.csv`.",
        "",
        f"- **Networks**: {len(rows)} of the ranking benchmark's 64 (docs/proxy_ranking.md), {params.min() / 1e6:.2f} M"
        f" to {params.max() / 1e6:.2f} M parameters. The first {PLANNED} trained were the plan: every one that met"
        f" the README job's constraints (docs/examples/edge-classifier.yaml) under the hardware model's first"
        f" calibration and {PLANNED_OTHERS} others at evenly spaced parameter counts; then the rest as time allowed"
        f" (`--others 64`). Under today's calibration {feasible.sum()} of them meet the job's constraints.",
        f"- **Truth**: Fashion-MNIST test accuracy after {TRUTH_EPOCHS} epochs over the fixed 10k-image subset"
        " (the benchmark's recipe).",
        f"- **Long**: the same recipe, initialisation and images for {', '.join(epochs)} epochs (cosine over all steps).",
        "",
        "| | value |",
        "|---|---:|",
        f"| Kendall tau (3-epoch truth vs long), all {len(rows)} | {tau:.3f} |",
        f"| Spearman rho, all {len(rows)} | {rho:.3f} |",
        f"| Kendall tau, the {first.sum()} planned (trained first) | {kendalltau(short[first], long[first])[0]:.3f} |",
        f"| for scale: Kendall tau of the 3-epoch truth against itself under another seed ({len(again)} networks) |"
        f" {repeat_tau:.3f} |",
        f"| Kendall tau among the README job's feasible networks, today's calibration ({feasible.sum()}) |"
        f" {kendalltau(short[feasible], long[feasible])[0]:.3f} |",
        f"| mean accuracy gain from longer training | {np.mean(long - short):+.4f} |",
        f"| Spearman rho of that gain with log parameters | {spearmanr(long - short, np.log(params))[0]:.3f} |",
        f"| Spearman rho with log parameters: 3-epoch truth / long | {spearmanr(short, np.log(params))[0]:.3f} /"
        f" {spearmanr(long, np.log(params))[0]:.3f} |",
        "",
        *proxy_lines(rows, short, long),
        "| index | network | params (M) | feasible | 3 epochs | long | gain |",
        "|---:|---|---:|---|---:|---:|---:|",
    ]
    for r, s, lg in sorted(zip(rows, short, long, strict=True), key=lambda t: -t[2]):
        lines.append(
            f"| {r['index']} | {r['name']} | {float(r['params']) / 1e6:.2f} | {r['feasible']} | {s:.4f} | {lg:.4f} |"
            f" {lg - s:+.4f} |"
        )
    return "\n".join(lines) + "\n"


def proxy_lines(rows: list[dict], short: np.ndarray, long: np.ndarray) -> list[str]:
    """How the proxies rank the same networks against either truth."""
    from nas.proxies import PROXIES
    from nas.proxies._default import load_default

    with PROXY_CSV.open() as f:
        scores = {r["arch_hash"]: r for r in csv.DictReader(f)}
    default = load_default()
    lines = [
        "",
        "How the proxies rank these networks against either truth (Spearman rho):",
        "",
        "| proxy | vs 3-epoch truth | vs long truth |",
        "|---|---:|---:|",
    ]
    for name in [*PROXIES, "default"]:
        try:
            values = [
                default.combine({k: float(scores[r["arch_hash"]][k]) for k in default.components})
                if name == "default"
                else float(scores[r["arch_hash"]][name])
                for r in rows
            ]
        except (KeyError, ValueError):
            continue
        lines.append(f"| {name} | {spearmanr(values, short)[0]:.3f} | {spearmanr(values, long)[0]:.3f} |")
    return [*lines, ""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["train", "report"])
    parser.add_argument("--epochs", type=int, default=5 * TRUTH_EPOCHS)
    parser.add_argument(
        "--others", type=int, default=PLANNED_OTHERS, help="networks beyond the README job's feasible ones"
    )
    parser.add_argument("--shard", default="0/1", help="i/k: this process takes every k-th network from i")
    parser.add_argument("--reverse", action="store_true", help="take the shard's networks from the last")
    parser.add_argument("--cheapest-first", action="store_true", help="order by the 3-epoch truth's time")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--csv", type=Path, default=LONG_CSV)
    parser.add_argument("--out", type=Path, help="report: a markdown copy")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.stage == "train":
        i, k = (int(v) for v in args.shard.split("/"))
        train_stage(chosen(args.others), (i, k), args.epochs, args.device, args.csv, args.reverse, args.cheapest_first)
    else:
        text = report(args.csv)
        print(text)
        if args.out:
            args.out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
