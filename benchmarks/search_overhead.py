"""The search loop's own cost and its scaling over workers (issue 5 (b) and (c)).

(b) overhead: an evaluator that returns at once (``cheap_evaluators.Instant``), so every second
    is the loop's: ask, sample, price, SQL writes (the store's and Optuna's RDBStorage on SQLite),
    Ray dispatch and tell. Reported as trials/s over the whole run and over its last fifth (the
    samplers' cost grows with the trials they have seen).
(c) scaling: the default proxy on Fashion-MNIST (a proxy-bound job), 1 vs 2 local Ray workers,
    the random sampler with one seed so that both runs evaluate the same architectures.

    python benchmarks/search_overhead.py [--trials 1000] [--scaling-trials 40] [--out docs/search_overhead.md]

Each figure comes from one run on a fresh SQLite file; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # cheap_evaluators imports as a top-level module, here and on workers


def one_run(workdir: Path, name: str, spec: dict) -> dict:
    from nas.search import run, submit
    from nas.spec import load_spec
    from nas.store import Store

    store = Store(f"sqlite:///{workdir / name}.db")
    job = submit(store, load_spec({"name": name, **spec}))
    started = time.perf_counter()
    job = run(store, job.id)
    wall = time.perf_counter() - started
    times = sorted(_trial_times(store, job.id))
    tail = times[len(times) * 4 // 5 :]
    return {
        "name": name,
        "trials": job.n_trials,
        "duplicates": job.n_duplicates,
        "loop_s": job.run_seconds,  # from the first ask to the last tell (Ray start-up excluded)
        "wall_s": wall,  # including Ray start-up and the evaluator's construction
        "rate": job.n_trials / job.run_seconds,
        "tail_rate": (len(tail) - 1) / max(tail[-1] - tail[0], 1e-9),
        "eval_s": job.eval_seconds,
    }


def _trial_times(store, job_id: int) -> list[float]:
    from sqlalchemy import select

    from nas.store._models import TrialModel

    with store.engine.connect() as conn:
        rows = conn.execute(select(TrialModel.created_at).where(TrialModel.job_id == job_id)).scalars()
        return [t.timestamp() for t in rows]


def overhead(workdir: Path, trials: int) -> list[dict]:
    base = {
        "space": "metaformer",
        "evaluator": {"plugin": "cheap_evaluators:Instant"},
        "constraints": {"min_fps": 800, "max_energy_mj": 3, "max_params": 8_000_000},
        "budget": {"trials": trials},
        "seed": 0,
    }
    runs = []
    for sampler in ("random", "tpe"):
        for workers in (2, 0):
            label = f"{sampler}, {'2 Ray workers' if workers else 'in-process'}"
            result = one_run(workdir, f"overhead-{sampler}-{workers}", {**base, "sampler": sampler,
                                                                         "workers": {"count": workers}})  # fmt: skip
            runs.append({**result, "label": label})
            print(f"{label}: {result['rate']:.1f} trials/s ({result['tail_rate']:.1f} over the last fifth)", flush=True)
    return runs


def scaling(workdir: Path, trials: int) -> list[dict]:
    runs = []
    for workers in (1, 2):
        spec = {
            "space": "metaformer",
            "evaluator": {"proxy": "default", "train": 0},  # the proxy alone: this measures scoring throughput
            "budget": {"trials": trials},
            "sampler": "random",
            "seed": 0,
            "workers": {"count": workers},
        }
        result = one_run(workdir, f"scaling-{workers}", spec)
        runs.append({**result, "label": f"{workers} worker{'s' if workers > 1 else ''}"})
        print(f"{workers} workers: {result['rate']:.2f} trials/s, loop {result['loop_s']:.1f} s", flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000, help="trials of each overhead run")
    parser.add_argument("--scaling-trials", type=int, default=40, help="trials of each scaling run")
    parser.add_argument("--out", help="write the report here (markdown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        over = overhead(Path(tmp), args.trials)
        scale = scaling(Path(tmp), args.scaling_trials)
    lines = [
        "# Search loop overhead and scaling",
        "",
        "Printed by `python benchmarks/search_overhead.py` (see its docstring). One run per row, fresh",
        "SQLite file, default accelerator, the README job's constraints; this machine: 2 cores, shared.",
        "",
        f"## Overhead: an evaluator that returns at once, {args.trials} trials",
        "",
        "| sampler, executor | trials/s (whole run) | trials/s (last fifth) | duplicates | loop s | wall s |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['label']} | {r['rate']:.1f} | {r['tail_rate']:.1f} | {r['duplicates']} | {r['loop_s']:.1f} | "
            f"{r['wall_s']:.1f} |"
            for r in over
        ),
        "",
        "Loop s: first ask to last tell. Wall s adds Ray's start-up and building the evaluator.",
        "",
        f"## Scaling: the default proxy, random sampler, {args.scaling_trials} trials",
        "",
        "| workers | trials/s | loop s | worker s (sum of evaluations) | speed-up |",
        "|---|---|---|---|---|",
        *(
            f"| {r['label']} | {r['rate']:.2f} | {r['loop_s']:.1f} | {r['eval_s']:.1f} | "
            f"{r['rate'] / scale[0]['rate']:.2f}x |"
            for r in scale
        ),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
