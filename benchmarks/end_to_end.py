"""Does the search's winner, trained, beat what a user gets without NAS?

    python benchmarks/end_to_end.py baselines   # 10 random feasible networks + the largest that fits, 2 seeds
    python benchmarks/end_to_end.py search      # the README job, then its top 3 by accuracy, 2 seeds
    python benchmarks/end_to_end.py report --out docs/end_to_end.md

    # the same for the detector job; its baselines add a hand-designed network (HAND_DESIGNED)
    python benchmarks/end_to_end.py baselines --job docs/examples/edge-detector.yaml --random 6
    python benchmarks/end_to_end.py search --job docs/examples/edge-detector.yaml
    python benchmarks/end_to_end.py report --job docs/examples/edge-detector.yaml --out docs/end_to_end_detector.md

Every network is trained with the job's recipe (the ranking benchmark's truth recipe: 3 epochs over
a fixed 10k-image subset of Fashion-MNIST's training split at 32x32, scored on the 10k test
images) under seeds 0 and 1 (initialisation and batch order), and priced on the job's accelerator
at its deployment shape. The baselines: random networks of the space drawn (seed 1) until 300 meet
the README job's constraints; the first 10 of them, and the largest by parameters of all 300.
Rows are appended to ``results/end_to_end.csv`` (``end_to_end_<job name>.csv`` for another job)
as they finish, so an interrupted stage resumes.

A dense job's figure is its task's metric (mAP, mIoU) under its own recipe; its baselines add a
hand-designed network of the same family (``hand_designed``): a MobileNetV2-style backbone (the
space's MBConv blocks, MobileNetV2's widths and expansion 6, BatchNorm, ReLU) at the widest of its
width multipliers that fits the job, with the neck and head of the search's best, so the comparison
is of what the search chose against a well-known design.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import optuna
import torch
from proxy_ranking import append_row

from nas.plugins import resolve_space
from nas.pricing import resolve_accelerator
from nas.search import price, run, submit
from nas.spec import JobSpec, load_spec
from nas.store import Store
from nas.tasks import get_task
from nas.training import AccuracyMeter, describe_recipe
from search_spaces import ArchConfig

ROOT = Path(__file__).parents[1]
README_JOB = ROOT / "docs" / "examples" / "edge-classifier.yaml"
RESULTS = Path(__file__).parent / "results"
CSV = RESULTS / "end_to_end.csv"
FIELDS = ["role", "arch_hash", "name", "seed", "accuracy", "predicted", "predicted_std", "params", "throughput_fps",
          "latency_ms", "energy_mj", "train_seconds", "arch"]  # fmt: skip
SEEDS = (0, 1)
RANDOM_FEASIBLE, POOL, MAX_DRAWS = 10, 300, 20_000
ROLES = ("search", "random", "largest", "hand")
# MobileNetV2's stages after its stem, as (depth, width): strides 4, 8, 16, 32 (its 24/32/96/320 widths)
HAND_DESIGNED = ((2, 24), (3, 32), (7, 96), (4, 320))


def csv_for(spec: JobSpec) -> Path:
    return CSV if spec.name == "edge-classifier" else RESULTS / f"end_to_end_{spec.name}.csv"


WIDTH_MULTIPLIERS = (1.0, 0.75, 0.5, 0.35)  # MobileNetV2's published ones


def hand_designed(best: ArchConfig, width: float = 1.0) -> ArchConfig:
    """A MobileNetV2-style backbone at ``width`` (its width multiplier, widths rounded to 8 as
    MobileNetV2 does) with ``best``'s neck and head (a dense network's)."""
    stages = [
        {"mixer": "mbconv", "depth": d, "dim": max(8, round(w * width / 8) * 8), "kernel_size": 3, "mlp_ratio": 6}
        for d, w in HAND_DESIGNED
    ]
    return ArchConfig.model_validate(
        {"stages": stages, "norm": "batchnorm", "act": "relu", "downsample_norm": "batchnorm",
         "neck": best.neck, "task_head": best.task_head}
    )  # fmt: skip


def feasible_pool(spec: JobSpec, n: int = POOL, seed: int = 1) -> list[tuple[object, dict]]:
    """The first ``n`` random networks of the job's space that meet its constraints, with metrics."""
    space, accelerator = resolve_space(spec), resolve_accelerator(spec)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    pool, draws = [], 0
    while len(pool) < n and draws < MAX_DRAWS:
        trial, draws = study.ask(), draws + 1
        arch = space.sample(trial)
        study.tell(trial, 0.0)
        priced = price(space, arch, spec, accelerator)
        if priced.feasible:
            pool.append((arch, priced.metrics))
    print(f"{len(pool)} feasible of {draws} random draws ({len(pool) / draws:.1%})", flush=True)
    return pool


def done(path: Path) -> set[tuple[str, str, str]]:
    if not path.is_file():
        return set()
    with path.open() as f:
        return {(r["role"], r["arch_hash"], r["seed"]) for r in csv.DictReader(f)}


def train_rows(spec: JobSpec, networks: list[tuple[str, object, dict, dict]], path: Path) -> None:
    """Train each (role, arch, metrics, prediction) under every seed; append a row per run."""
    finished = done(path)
    meters = {seed: AccuracyMeter(spec.model_copy(update={"seed": seed})) for seed in SEEDS}
    for role, arch, metrics, prediction in networks:
        for seed in SEEDS:
            if (role, arch.arch_hash, str(seed)) in finished:
                continue
            start = time.perf_counter()
            accuracy, _ = meters[seed](arch)
            row = {
                "role": role, "arch_hash": arch.arch_hash, "name": arch.name, "seed": seed,
                "accuracy": round(accuracy, 5), "predicted": prediction.get("accuracy"),
                "predicted_std": prediction.get("accuracy_std"), "params": int(metrics["params"]),
                "throughput_fps": round(metrics["throughput_fps"], 1), "latency_ms": round(metrics["latency_ms"], 4),
                "energy_mj": round(metrics["energy_mj"], 4), "train_seconds": round(time.perf_counter() - start, 1),
                "arch": arch.to_json(),
            }  # fmt: skip
            append_row(path, FIELDS, row)
            print(f"{role:8s} {arch.name[:48]:48s} seed {seed}: {accuracy:.4f}", flush=True)


def baselines_stage(spec: JobSpec, path: Path, n_random: int = RANDOM_FEASIBLE) -> None:
    pool = feasible_pool(spec)
    largest = max(pool, key=lambda p: p[1]["params"])
    networks = [("random", a, m, {}) for a, m in pool[:n_random]] + [("largest", *largest, {})]
    train_rows(spec, networks, path)


def hand_stage(spec: JobSpec, path: Path, workdir: Path) -> None:
    """The hand-designed network with the neck and head of the search's best (run ``search`` first)."""
    store = Store(f"sqlite:///{workdir / 'end_to_end.db'}")
    job = store.list_jobs(status="completed")[0]
    best = ArchConfig.from_json(store.pareto(job.id, sort="accuracy", descending=True, limit=1)[0].arch)
    space, accelerator = resolve_space(spec), resolve_accelerator(spec)
    # the widest of MobileNetV2's width multipliers that meets the job's constraints (else the narrowest)
    for width in WIDTH_MULTIPLIERS:
        arch = hand_designed(best, width)
        priced = price(space, arch, spec, accelerator)
        if priced.feasible:
            break
    print(f"hand-designed {arch.name}: {'meets' if priced.feasible else 'does NOT meet'} the job's constraints "
          f"({priced.metrics['throughput_fps']:.0f} FPS, {priced.metrics['energy_mj']:.2f} mJ, "
          f"{priced.metrics['params'] / 1e6:.2f} M params)", flush=True)  # fmt: skip
    train_rows(spec, [("hand", arch, priced.metrics, {})], path)


def search_stage(spec: JobSpec, path: Path, workdir: Path, top: int = 3) -> None:
    """Run the job as `nas run` does (its own database under ``workdir``), then train its top
    ``top`` by accuracy under every seed."""
    workdir.mkdir(parents=True, exist_ok=True)
    store = Store(f"sqlite:///{workdir / 'end_to_end.db'}")
    jobs = store.list_jobs(status="completed")
    job = jobs[0] if jobs else None
    if job is None:
        start = time.perf_counter()
        job = run(store, submit(store, spec).id)
        print(f"{spec.name} job {job.id}: {job.n_trials} trials in {time.perf_counter() - start:.0f} s", flush=True)
    space = resolve_space(spec)
    best = store.pareto(job.id, sort="accuracy", descending=True, limit=top)
    networks = [
        ("search", space.arch_from_json(c.arch), c.metrics, {"accuracy": c.metrics["accuracy"],
                                                             "accuracy_std": c.metrics["accuracy_std"]})
        for c in best
    ]  # fmt: skip
    predictor = store.get_job(job.id).predictor
    (workdir / "predictor.txt").write_text(repr(predictor))
    train_rows(spec, networks, path)


def report(spec: JobSpec, path: Path) -> str:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    nets: dict[tuple[str, str], dict] = {}
    for r in rows:
        n = nets.setdefault((r["role"], r["arch_hash"]), {**r, "runs": {}})
        n["runs"][r["seed"]] = float(r["accuracy"])
    complete = [n for n in nets.values() if len(n["runs"]) == len(SEEDS)]
    for n in complete:
        n["mean"] = statistics.fmean(n["runs"].values())
    spread = statistics.fmean(abs(n["runs"]["0"] - n["runs"]["1"]) for n in complete)
    by_role = {role: [n for n in complete if n["role"] == role] for role in ROLES}
    if spec.task != "classification":
        return dense_report(spec, path, complete, by_role, spread)
    by_role.pop("hand")
    lines = [
        "# End to end: the search's winner against networks picked without NAS",
        "",
        "Printed by `benchmarks/end_to_end.py report` from `benchmarks/results/end_to_end.csv`.",
        "",
        "The README job (docs/examples/edge-classifier.yaml) as `make demo` runs it; its top 3 by accuracy,",
        f"{RANDOM_FEASIBLE} random networks of the space that meet its constraints, and the largest network",
        f"(by parameters) of {POOL} random feasible ones. Each trained with the job's recipe (3 epochs over a",
        "fixed 10k-image subset of Fashion-MNIST at 32x32, test accuracy on 10k images) under seeds"
        f" {', '.join(map(str, SEEDS))}; hardware",
        "priced on metis-like at 3x224x224. *predicted*: the job's prediction (mean +- std) when it finished.",
        "",
        *table(by_role),
    ]
    if not all(by_role.values()):
        return "\n".join([*lines, "", "Incomplete: run every stage."]) + "\n"
    best, median_random, best_random, largest = headline(by_role)
    margin = best["mean"] - median_random
    beats = margin > spread
    matches = best["mean"] >= largest - spread
    lines += [
        "",
        f"- seed-to-seed spread (mean |seed 0 - seed 1| over all {len(complete)} networks): {spread:.4f}",
        f"- the search's best ({best['name']}): {best['mean']:.4f}; median random feasible network:"
        f" {median_random:.4f}; margin {margin:+.4f}: "
        + ("**beats it by more than the spread**" if beats else "**does NOT beat it by more than the spread**"),
        f"- the best of the {len(by_role['random'])} random feasible networks ({best_random['name']}):"
        f" {best_random['mean']:.4f}; the search's best is {best['mean'] - best_random['mean']:+.4f} from it",
        f"- the largest network that fits: {largest:.4f}; the search's best "
        + (
            "**beats it** by more than the spread"
            if best["mean"] > largest + spread
            else "**matches it** (within the spread)"
            if matches
            else "**falls short of it**"
        )
        + f" ({best['mean'] - largest:+.4f})",
        "- the job chose its top 3 partly by its own seed-0 measurement of them (the same recipe and seed),"
        " so their seed-0 figures carry a winner's bias; seed 1 is the independent check: "
        + ", ".join(f"{n['name']} {n['runs']['1']:.4f}" for n in by_role["search"]),
    ]
    return "\n".join(lines) + "\n"


def headline(by_role: dict[str, list[dict]]) -> tuple[dict, float, dict, float]:
    """(the search's best, the median random network's mean, the best random one, the largest's mean)."""
    best = max(by_role["search"], key=lambda n: n["mean"])
    median_random = statistics.median(n["mean"] for n in by_role["random"])
    best_random = max(by_role["random"], key=lambda n: n["mean"])
    return best, median_random, best_random, by_role["largest"][0]["mean"]


def table(by_role: dict[str, list[dict]]) -> list[str]:
    lines = [
        "| role | network | params (M) | FPS | energy (mJ) | predicted | seed 0 | seed 1 | mean |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for role in by_role:
        for n in sorted(by_role[role], key=lambda n: -n["mean"]):
            pred = ""
            if n["predicted"]:
                std = n["predicted_std"]
                pred = (
                    f"{float(n['predicted']):.4f} +- {float(std):.4f}"
                    if std
                    else f"measured {float(n['predicted']):.4f}"
                )
            lines.append(
                f"| {role} | {n['name']} | {int(n['params']) / 1e6:.2f} | {float(n['throughput_fps']):.0f} |"
                f" {float(n['energy_mj']):.3f} | {pred} | {n['runs']['0']:.4f} | {n['runs']['1']:.4f} | {n['mean']:.4f} |"
            )
    return lines


def dense_report(spec: JobSpec, path: Path, complete: list[dict], by_role: dict[str, list[dict]], spread: float) -> str:
    task = get_task(spec.task)
    r = describe_recipe(spec)
    name = path.name
    lines = [
        f"# End to end: the search's best {spec.task} network against networks picked without NAS",
        "",
        f"Printed by `benchmarks/end_to_end.py report --job {spec.name}.yaml` from `benchmarks/results/{name}`.",
        "",
        f"The {spec.name} job ({task.label} on {r['dataset']}'s val split after {r['epochs']:g} epochs over"
        f" {r['images']} training images at {r['resolution']}x{r['resolution']}), as `nas run` runs it; its top 3",
        f"by {task.metric}, {len(by_role['random'])} random networks of its space that meet its constraints, the"
        f" largest (by parameters) of {POOL} random feasible ones, and a hand-designed network: a MobileNetV2-style",
        "backbone with the neck and head of the search's best. Each trained with the job's recipe under seeds"
        f" {', '.join(map(str, SEEDS))}; hardware priced on {spec.accelerator_name} at"
        f" {'x'.join(map(str, spec.input_shape))} (the network whole: backbone, neck and head).",
        "*predicted*: the job's prediction (mean +- std) when it finished; *mean*: the two seeds' mean "
        f"{task.metric} (0-1).",
        "",
        *table(by_role),
    ]
    if not all(by_role[role] for role in ("search", "random", "largest")):
        return "\n".join([*lines, "", "Incomplete: run every stage."]) + "\n"
    best, median_random, best_random, largest = headline(by_role)
    margin = best["mean"] - median_random
    lines += [
        "",
        f"- seed-to-seed spread (mean |seed 0 - seed 1| over all {len(complete)} networks): {spread:.4f}",
        f"- the search's best ({best['name']}): {best['mean']:.4f}; median random feasible network:"
        f" {median_random:.4f}; margin {margin:+.4f}: "
        + (
            "**beats it by more than the spread**"
            if margin > spread
            else "**does NOT beat it by more than the spread**"
        ),
        f"- the best of the {len(by_role['random'])} random feasible networks ({best_random['name']}):"
        f" {best_random['mean']:.4f}; the search's best is {best['mean'] - best_random['mean']:+.4f} from it",
        f"- the largest network that fits: {largest:.4f} ({best['mean'] - largest:+.4f} from the search's best)",
        "- the job chose its top 3 partly by its own seed-0 measurement of them (the same recipe and seed),"
        " so their seed-0 figures carry a winner's bias; seed 1 is the independent check: "
        + ", ".join(f"{n['name']} {n['runs']['1']:.4f}" for n in by_role["search"]),
    ]
    for hand in by_role["hand"]:
        fits = all(
            v is None or ok
            for v, ok in (
                (spec.constraints.min_fps, float(hand["throughput_fps"]) >= (spec.constraints.min_fps or 0)),
                (spec.constraints.max_energy_mj, float(hand["energy_mj"]) <= (spec.constraints.max_energy_mj or 0)),
                (spec.constraints.max_params, int(hand["params"]) <= (spec.constraints.max_params or 0)),
            )
        )
        lines.append(
            f"- the hand-designed network ({hand['name']}, {'within' if fits else 'OUTSIDE'} the job's constraints):"
            f" {hand['mean']:.4f} ({best['mean'] - hand['mean']:+.4f} from the search's best)"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["baselines", "search", "hand", "report"])
    parser.add_argument("--job", type=Path, default=README_JOB, help="the job spec (default: the README job)")
    parser.add_argument("--csv", type=Path, help="default: results/end_to_end.csv, or end_to_end_<job name>.csv")
    parser.add_argument("--random", type=int, default=RANDOM_FEASIBLE, help="random feasible networks trained")
    parser.add_argument("--workdir", type=Path, help="the search's database (default /tmp/end_to_end[_<name>])")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, help="report: a markdown copy")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = load_spec(args.job)
    path = args.csv or csv_for(spec)
    workdir = args.workdir or Path("/tmp/end_to_end" + ("" if spec.name == "edge-classifier" else f"_{spec.name}"))
    if args.stage == "baselines":
        baselines_stage(spec, path, args.random)
    elif args.stage == "search":
        search_stage(spec, path, workdir)
    elif args.stage == "hand":
        hand_stage(spec, path, workdir)
    else:
        text = report(spec, path)
        print(text)
        if args.out:
            args.out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
