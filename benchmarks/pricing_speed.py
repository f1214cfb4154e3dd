"""Time pricing in this tree against an older commit, in one run: scalar ``lower`` + ``estimate``
(what every search trial pays before anything is built) and the batched path (``estimate_many``:
sweeps, co-design grids), on the default accelerator at 3x224x224.

    python benchmarks/pricing_speed.py [--baseline 20823ea] [--rounds 5] [--repeat 20] [--out docs/pricing_speed.md]

The baseline is checked out as a git worktree beside the repository's (``service_process.checkout``,
under --workdir, removed afterwards). Each tree is timed in its own child process pinned to one core,
the trees alternating round by round so that a change in the machine's load falls on both; a figure
is the median over all rounds' calls of the CPU time of the pricing thread (wall time on this shared
machine swings by 2x or more with the other processes). Prints a markdown table (before, after, after/before per
case and the geometric mean per kind); --out writes the same text to a file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPE = (3, 224, 224)
ROOT = Path(__file__).resolve().parent.parent
BASELINE = "20823ea"  # the last commit before the scalar and batched chip models shared their formulas
GRID = {"cores": [1, 2, 3, 4, 6, 8], "array_cols": [128, 256, 384, 512, 768, 1024], "l2_mib": [4, 8, 16, 32, 48, 64]}
SAMPLES = 20  # sampled networks per search space


def median_us(fn, repeat: int) -> list[float]:
    """``repeat`` timed calls (after one to warm up): microseconds of this thread's CPU time, which the
    other processes of a shared machine do not inflate as they do wall time."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.thread_time()
        fn()
        times.append((time.thread_time() - start) * 1e6)
    return times


def worker(repeat: int) -> dict:
    """Every case's call times with the packages on this process's path (one tree's)."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as a search worker has
    import hwmodels
    import search_spaces as ss
    from hwmodels import chip_grid, estimate, estimate_many, load_accelerator

    acc = load_accelerator()
    cases: dict[str, dict] = {}

    def case(kind: str, label: str, layers: int, candidates: int, fn, times: int = repeat) -> None:
        cases[f"{kind}|{label}"] = {"layers": layers, "candidates": candidates, "us": median_us(fn, times)}

    for name in ss.PRESETS.names():
        arch = ss.get_preset(name)
        layers = ss.lower(arch, SHAPE)
        case("lower + estimate", name, len(layers), 1, lambda a=arch: estimate(ss.lower(a, SHAPE), acc))
        case("estimate", name, len(layers), 1, lambda x=layers: estimate(x, acc))
    for space in ss.space_names():
        archs = ss.sample_archs(ss.get_space(space), SAMPLES, seed=0)
        nets = [ss.lower(a, SHAPE) for a in archs]
        mean_layers = round(statistics.mean(len(x) for x in nets))
        label = f"{SAMPLES} `{space}` samples, per candidate"
        case("lower + estimate", label, mean_layers, SAMPLES,
             lambda a=archs: [estimate(ss.lower(x, SHAPE), acc) for x in a], max(3, repeat // 3))  # fmt: skip
        case("estimate", label, mean_layers, SAMPLES, lambda n=nets: [estimate(x, acc) for x in n], max(3, repeat // 3))

    chips = [a for _, a in chip_grid(acc, GRID)]
    nets = [ss.lower(a, SHAPE) for a in ss.sample_archs(ss.get_space("metaformer"), 10, seed=1)]
    mean_layers = round(statistics.mean(len(x) for x in nets))
    for label, networks, accs, times in [
        (f"sweep: 1 network x {len(chips)} chips", nets[:1], chips, repeat),
        (f"co-design grid: 10 networks x {len(chips)} chips", nets, chips, max(3, repeat // 5)),
        ("10 networks x 12 chips", nets, chips[:12], repeat),
        ("10 networks x 2 chips", nets, chips[:2], repeat),
        ("10 networks x 1 chip", nets, [acc], repeat),
    ]:
        layers = len(networks[0]) if len(networks) == 1 else mean_layers
        count = len(networks) * len(accs)
        case("estimate_many", label, layers, count, lambda n=networks, a=accs: estimate_many(n, a), times)
    return {"hwmodels": hwmodels.__file__, "cases": cases}


def run_tree(tree: Path, repeat: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--repeat", str(repeat)]
    done = subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout)
    if not Path(result["hwmodels"]).is_relative_to(tree):
        raise RuntimeError(f"the worker for {tree} imported {result['hwmodels']}")
    return result["cases"]


def table(before: dict, after: dict, baseline: str) -> list[str]:
    lines = [
        f"| kind | case | IR layers | {baseline} (us) | this tree (us) | after/before |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ratios: dict[str, list[float]] = {}
    for key, b in before.items():
        kind, label = key.split("|", 1)
        a = after[key]
        old, new = (statistics.median(x["us"]) / x["candidates"] for x in (b, a))
        ratios.setdefault(kind, []).append(new / old)
        lines.append(f"| {kind} | {label} | {a['layers']} | {old:,.0f} | {new:,.0f} | {new / old:.2f} |")
    lines += ["", "Batched rates of this tree, IR layers x chips priced per CPU second:", ""]
    for key, a in after.items():
        kind, label = key.split("|", 1)
        if kind == "estimate_many":
            per_candidate = statistics.median(a["us"]) / a["candidates"]
            lines.append(f"- {label}: {a['layers'] / per_candidate * 1e6:,.0f}")
    lines += ["", "Geometric mean of after/before per kind (below 1: this tree is faster):", ""]
    for kind, values in ratios.items():
        mean = math.exp(statistics.mean(math.log(v) for v in values))
        lines.append(f"- {kind}: {mean:.2f} over {len(values)} cases (range {min(values):.2f} to {max(values):.2f})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, metavar="GIT_REF", help=f"the commit to compare ({BASELINE})")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two trees")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per case per round")
    parser.add_argument("--workdir", help="where the baseline worktree goes (default: a temporary folder)")
    parser.add_argument("--out", help="also write the printed text to this markdown file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.repeat)))
        return

    sys.path.insert(0, str(Path(__file__).parent))
    from service_process import checkout

    with tempfile.TemporaryDirectory() as tmp:
        stdout = os.dup(1)
        os.dup2(2, 1)  # git's report of the checkout to stderr: stdout is the table alone
        try:
            base_tree = checkout(args.baseline, Path(args.workdir or tmp))
        finally:
            os.dup2(stdout, 1)
            os.close(stdout)
        try:
            runs: dict[str, dict] = {}
            for r in range(args.rounds):
                for name, tree in (("before", base_tree), ("after", ROOT)):
                    cases = run_tree(tree, args.repeat)
                    for key, value in cases.items():
                        runs.setdefault(name, {}).setdefault(key, {**value, "us": []})["us"] += value["us"]
                    print(f"round {r + 1}/{args.rounds}: {name} done", file=sys.stderr, flush=True)
        finally:
            if args.workdir is None:
                subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    command = "python benchmarks/pricing_speed.py" + (f" --out {args.out}" if args.out else "")
    text = [
        f"Pricing speed, one core, default accelerator (metis-like), input 3x224x224: {args.baseline} against this "
        f"tree in one run ({args.rounds} alternating rounds x {args.repeat} calls per case and tree; medians of "
        "the pricing thread's CPU time per candidate, a candidate being one network on one chip). `estimate` and "
        "`estimate_many` price IR lowered beforehand.",
        "",
        *table(runs["before"], runs["after"], args.baseline),
    ]
    print("\n".join(text))
    if args.out:
        Path(args.out).write_text(f"# Pricing speed\n\nWhat `{command}` printed:\n\n" + "\n".join(text) + "\n")


if __name__ == "__main__":
    main()
