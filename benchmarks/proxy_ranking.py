"""How well each accuracy proxy ranks architectures of the default space, against real training.

    python benchmarks/proxy_ranking.py train   [--n 64] [--shard 0/2]   # ground truth + short training (hours)
    python benchmarks/proxy_ranking.py repeat  [--n 16]                 # the truth again under seed 1 (its noise)
    python benchmarks/proxy_ranking.py proxies [--n 64]                 # zero-cost proxies + their cost (minutes)
    python benchmarks/proxy_ranking.py reference [--n 150 --n-macro 100] # our proxies on NAS-Bench-201 / -Macro nets
    python benchmarks/proxy_ranking.py report  --out docs/proxy_ranking.md
    python benchmarks/proxy_ranking.py smoke                            # every stage on 3 archs, a few steps (CI)

Ground truth: each of ``--n`` architectures sampled from the default space (seed 0) is built at
32x32 for 10 classes and trained on a fixed 10k-image subset of Fashion-MNIST's training split for
3 epochs (AdamW, warm-up + cosine); its accuracy on the 10k-image test split is the truth. The
short-training proxy is a separate run with its own recipe (constant LR after warm-up) on the
training split, scored on 2000 held-out training images after 25, 50 and 100 steps. Rows are
appended to CSVs under ``benchmarks/results`` as they finish, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
import time
from pathlib import Path

import torch

import search_spaces as ss
from nas.data import load_dataset
from nas.proxies import PROXIES, ProxyError, score
from nas.proxies._training import Trainer, TrainRecipe, evaluate

RESULTS = Path(__file__).parent / "results"
TRAIN_CSV = RESULTS / "proxy_ranking_train.csv"
PROXY_CSV = RESULTS / "proxy_ranking_proxies.csv"
PROXY_BATCH = 64
REFERENCE_CSV = RESULTS / "proxy_reference.csv"
REPEAT_CSV = RESULTS / "proxy_ranking_truth_seed1.csv"
TABLES = Path(__file__).parent / "data"  # the public benchmark tables, see data/README.md
NB201_CSV = TABLES / "naslib_zc_nasbench201.csv"
MACRO_JSON = TABLES / "nas-bench-macro_cifar10.json"
# NASLib's column names for the proxies we share with it.
NASLIB_NAMES = {
    "synflow": "synflow",
    "snip": "snip",
    "grad_norm": "grad_norm",
    "fisher": "fisher",
    "jacob_cov": "jacov",
    "nwot": "nwot",
    "params": "params",
    "flops": "flops",
}
RESOLUTION = 32
TRUTH_IMAGES = 10_000
TRUTH_EPOCHS = 3
TRUTH = TrainRecipe(
    steps=-(-TRUTH_EPOCHS * TRUTH_IMAGES // 128),
    batch_size=128,
    resolution=RESOLUTION,
    lr=2e-3,
    warmup_steps=20,
    decay_steps=-(-TRUTH_EPOCHS * TRUTH_IMAGES // 128),
    label_smoothing=0.1,
)
SHORT = TrainRecipe(steps=100, batch_size=64, resolution=RESOLUTION)
SHORT_BUDGETS = (25, 50, 100)


def train_fields(budgets) -> list[str]:
    short = [f"short{b}_{what}" for what in ("acc", "seconds") for b in budgets]
    return ["index", "arch_hash", "name", "params", "truth_acc", "truth_seconds", *short, "arch"]


def sampled(n: int) -> list[ss.ArchConfig]:
    return ss.sample_archs(ss.get_space(), n, seed=0)


def build(arch: ss.ArchConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return ss.build_model(arch, num_classes=10, img_size=RESOLUTION)


def done_hashes(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with path.open() as f:
        return {row["arch_hash"] for row in csv.DictReader(f)}


def append_row(path: Path, fields: list[str], row: dict) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def train_stage(
    n: int,
    shard: tuple[int, int],
    out: Path,
    truth: TrainRecipe = TRUTH,
    short: TrainRecipe = SHORT,
    budgets=SHORT_BUDGETS,
    truth_images: int = TRUTH_IMAGES,
    test_images: int | None = None,
) -> None:
    train = load_dataset(split="train")
    test = load_dataset(split="test")
    if test_images is not None:
        test = test.subset(range(test_images))
    truth_set = train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:truth_images])
    short_train, short_held_out = train.split(short.held_out, seed=short.seed)
    done = done_hashes(out)
    for index, arch in enumerate(sampled(n)):
        if index % shard[1] != shard[0] or arch.arch_hash in done:
            continue
        row = {"index": index, "arch_hash": arch.arch_hash, "name": arch.name, "arch": arch.to_json()}
        model = build(arch)
        row["params"] = sum(p.numel() for p in model.parameters())
        start = time.perf_counter()
        trainer = Trainer(model, truth_set, truth)
        trainer.advance(truth.steps)
        row["truth_acc"] = round(evaluate(model, test, resolution=truth.resolution), 5)
        row["truth_seconds"] = round(time.perf_counter() - start, 2)
        trainer = Trainer(build(arch), short_train, short)
        elapsed = 0.0
        for budget in budgets:
            start = time.perf_counter()
            trainer.advance(budget - trainer.step)
            row[f"short{budget}_acc"] = round(trainer.accuracy(short_held_out), 5)
            elapsed += time.perf_counter() - start
            row[f"short{budget}_seconds"] = round(elapsed, 2)
        append_row(out, train_fields(budgets), row)
        print(
            f"[{index:3d}] {arch.name[:60]:60s} truth {row['truth_acc']:.4f} ({row['truth_seconds']:.0f}s)", flush=True
        )


def repeat_stage(n: int, shard: tuple[int, int], out: Path, seed: int = 1) -> None:
    """The ground truth again for the first ``n`` architectures under another seed (initialisation
    and batch order): how well the truth ranks itself bounds what any proxy can reach."""
    train, test = load_dataset(split="train"), load_dataset(split="test")
    truth_set = train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:TRUTH_IMAGES])
    recipe = TrainRecipe(**{**TRUTH.__dict__, "seed": seed})
    done = done_hashes(out)
    for index, arch in enumerate(sampled(n)):
        if index % shard[1] != shard[0] or arch.arch_hash in done:
            continue
        model = build(arch, seed)
        start = time.perf_counter()
        Trainer(model, truth_set, recipe).advance(recipe.steps)
        acc = round(evaluate(model, test, resolution=recipe.resolution), 5)
        row = {"index": index, "arch_hash": arch.arch_hash, "name": arch.name, "truth_acc": acc,
               "truth_seconds": round(time.perf_counter() - start, 2), "seed": seed}  # fmt: skip
        append_row(out, list(row), row)
        print(f"[{index:3d}] {arch.name[:60]:60s} truth (seed {seed}) {acc:.4f}", flush=True)


def proxy_fields() -> list[str]:
    timed = [f"{n}_seconds" for n in PROXIES]
    return ["index", "arch_hash", "name", *PROXIES, *timed, "train_step_seconds", "eval_seconds", "errors"]


def proxy_batch(data, size: int = PROXY_BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of training images: the first ``size`` of a seed-0 permutation."""
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:size]
    return data.batch(idx, resolution=RESOLUTION)


def median_seconds(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def proxy_stage(n: int, shard: tuple[int, int], out: Path, short: TrainRecipe) -> None:
    """Every zero-cost proxy on each architecture at initialisation, with its cost, and the cost of
    one training step of the short-training recipe (same model, same batch size) and of one
    held-out evaluation, timed under the same conditions as the proxies."""
    train = load_dataset(split="train")
    x, y = proxy_batch(train, short.batch_size)
    short_train, held_out = train.split(short.held_out, seed=short.seed)
    done = done_hashes(out)
    for index, arch in enumerate(sampled(n)):
        if index % shard[1] != shard[0] or arch.arch_hash in done:
            continue
        model = build(arch)
        row: dict = {"index": index, "arch_hash": arch.arch_hash, "name": arch.name}
        errors = []
        for name in PROXIES:
            start = time.perf_counter()
            try:
                row[name] = score(model, x, y, names=[name])[name]
            except ProxyError as e:
                errors.append(str(e))
            row[f"{name}_seconds"] = round(time.perf_counter() - start, 4)
        trainer = Trainer(build(arch), short_train, short)
        trainer.advance(1)  # warm-up: allocator, optimizer state
        row["train_step_seconds"] = round(median_seconds(lambda t=trainer: t.advance(1)), 4)
        row["eval_seconds"] = round(median_seconds(lambda t=trainer: t.accuracy(held_out), repeat=1), 4)
        row["errors"] = " | ".join(errors)
        append_row(out, proxy_fields(), row)
        print(
            f"[{index:3d}] {arch.name[:60]:60s} step {row['train_step_seconds']:.3f}s {row['errors'][:60]}", flush=True
        )


def reference_networks(n_nb201: int, n_macro: int, tables: Path = TABLES) -> list[dict]:
    """NAS-Bench-201 cells (CIFAR-10 rows of NASLib's table) and NAS-Bench-Macro networks, each
    drawn with its own seed-0 generator (so a smaller draw is a prefix of a larger one) and
    interleaved, so a run stopped early covers both: dicts with benchmark, key, truth and NASLib's
    scores."""
    import json
    import random

    with (tables / NB201_CSV.name).open() as f:
        nb201 = [r for r in csv.DictReader(f) if r["dataset"] == "cifar10"]
    macro = json.loads((tables / MACRO_JSON.name).read_text())
    cells = [
        {"benchmark": "nb201", "key": r["nb201_arch_str"], "truth": float(r["val_accuracy"]),
         **{f"naslib_{ours}": float(r[theirs]) for ours, theirs in NASLIB_NAMES.items()}}
        for r in random.Random(0).sample(nb201, min(n_nb201, len(nb201)))
    ]  # fmt: skip
    nets = [
        {"benchmark": "macro", "key": k, "truth": macro[k]["mean_acc"]}
        for k in random.Random(0).sample(sorted(macro), min(n_macro, len(macro)))
    ]
    mixed = [row for pair in itertools.zip_longest(cells, nets) for row in pair if row is not None]
    return mixed


def reference_fields() -> list[str]:
    return ["benchmark", "key", "truth", *(f"naslib_{n}" for n in NASLIB_NAMES), *PROXIES, "errors"]


def reference_stage(n: int, n_macro: int, shard: tuple[int, int], out: Path) -> None:
    """Our proxies on the public benchmarks' networks. NASLib scored NAS-Bench-201 on CIFAR-10
    batches; with no CIFAR-10 offline, data-based proxies here see Fashion-MNIST at 32x32 in three
    channels (data-free ones see what NASLib's saw)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the builders live with their tests
    from reference_networks import macro_network, nb201_network

    x, y = proxy_batch(load_dataset(split="train"))
    done = set()
    if out.is_file():
        with out.open() as f:
            done = {(r["benchmark"], r["key"]) for r in csv.DictReader(f)}
    for i, row in enumerate(reference_networks(n, n_macro)):
        if i % shard[1] != shard[0] or (row["benchmark"], row["key"]) in done:
            continue
        torch.manual_seed(0)
        model = nb201_network(row["key"]) if row["benchmark"] == "nb201" else macro_network(row["key"])
        errors = []
        for name in PROXIES:
            try:
                row[name] = score(model, x, y, names=[name])[name]
            except ProxyError as e:
                errors.append(str(e))
        row["errors"] = " | ".join(errors)
        append_row(out, reference_fields(), row)
        print(f"[{i:3d}] {row['benchmark']} {row['key']} {row['errors'][:80]}", flush=True)


def smoke(workdir: Path) -> str:
    """Every stage on 3 architectures with a few steps each, into ``workdir``: what CI runs."""
    workdir.mkdir(parents=True, exist_ok=True)
    truth = TrainRecipe(steps=4, batch_size=16, resolution=RESOLUTION, warmup_steps=1, decay_steps=4)
    short = TrainRecipe(steps=4, batch_size=16, resolution=RESOLUTION, warmup_steps=1, held_out=100)
    budgets = (2, 4)
    train_stage(3, (0, 1), workdir / TRAIN_CSV.name, truth, short, budgets, truth_images=256, test_images=200)
    proxy_stage(3, (0, 1), workdir / PROXY_CSV.name, short)
    reference_stage(3, 3, (0, 1), workdir / REFERENCE_CSV.name)
    from proxy_ranking_report import report  # it imports this module's names

    return report(workdir / TRAIN_CSV.name, workdir / PROXY_CSV.name, workdir / REFERENCE_CSV.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["train", "repeat", "proxies", "reference", "report", "smoke"])
    parser.add_argument("--n", type=int, default=64, help="architectures (reference: networks per benchmark)")
    parser.add_argument("--n-macro", type=int, help="reference: NAS-Bench-Macro networks (default --n)")
    parser.add_argument("--shard", default="0/1", help="i/k: this process takes every k-th architecture from i")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", type=Path, default=RESULTS, help="where the stages' CSVs are")
    parser.add_argument("--out", type=Path, help="train/proxies/reference: the CSV; report/smoke: a markdown copy")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    i, k = (int(v) for v in args.shard.split("/"))
    csvs = {
        name: args.workdir / path.name
        for name, path in (
            ("train", TRAIN_CSV),
            ("proxies", PROXY_CSV),
            ("reference", REFERENCE_CSV),
            ("repeat", REPEAT_CSV),
        )
    }
    if args.stage == "train":
        train_stage(args.n, (i, k), args.out or csvs["train"])
    elif args.stage == "repeat":
        repeat_stage(args.n, (i, k), args.out or csvs["repeat"])
    elif args.stage == "proxies":
        proxy_stage(args.n, (i, k), args.out or csvs["proxies"], SHORT)
    elif args.stage == "reference":
        reference_stage(args.n, args.n_macro or args.n, (i, k), args.out or csvs["reference"])
    else:
        from proxy_ranking_report import report

        text = smoke(args.workdir) if args.stage == "smoke" else report(*csvs.values())
        print(text)
        if args.out:
            args.out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
