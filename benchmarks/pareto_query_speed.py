"""Pareto queries at 100k candidates on SQLite (issue 5: <= 50 ms per query).

One job of N distinct real candidates: architectures drawn uniformly from the default space and
priced by the hardware model (latency, energy, params, ...) at 224x224 on the default accelerator,
accuracy the cheap `params` proxy (``cheap_evaluators.IRParams``). The table is filled in bulk and
its front marked with ``nas.pareto.non_dominated`` (tests/test_store.py checks that the store's
incremental maintenance gives the same front); then ``record`` appends more candidates one by
one, to time a write at this size. Each query is timed ``--repeat`` times: medians.

    python benchmarks/pareto_query_speed.py [--n 100000] [--workdir DIR] [--out docs/pareto_query_speed.md]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

OBJECTIVES = ["accuracy", "latency_ms", "energy_mj"]


class _RandomTrial:
    """Enough of an Optuna trial for ``SearchSpace.sample``: uniform choices from a seeded RNG."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suggest_categorical(self, name, choices):
        return self.rng.choice(list(choices))


def candidates(n: int, seed: int = 0):
    from cheap_evaluators import IRParams

    from hwmodels import load_accelerator
    from nas.plugins import MetaFormerSpace
    from nas.pricing import price
    from nas.spec import load_spec
    from nas.store import CandidateIn
    from search_spaces import get_space

    spec = load_spec({})
    space, acc, proxy = MetaFormerSpace(get_space()), load_accelerator(), IRParams()
    rng, seen = random.Random(seed), set()
    while len(seen) < n:
        arch = space.sample(_RandomTrial(rng))
        if arch.arch_hash in seen:
            continue
        seen.add(arch.arch_hash)
        p = price(space, arch, spec, acc)
        metrics = {**p.metrics, "accuracy": proxy(arch)["accuracy"]}
        yield CandidateIn(arch.arch_hash, arch.name, arch.to_json(), "complete", metrics, p.deployable,
                          hardware=p.hardware)  # fmt: skip


def build(db: Path, n: int):
    """The job, filled in bulk (cached: an existing file is reused)."""
    from sqlalchemy import insert, update

    from nas.pareto import non_dominated
    from nas.store import METRIC_COLUMNS, Store
    from nas.store._models import CandidateModel, JobModel, TrialModel

    if db.exists():
        store = Store(f"sqlite:///{db}")
        jobs = store.list_jobs(limit=1)
        if jobs and jobs[0].n_complete == n and store.candidates(jobs[0].id, limit=1):
            return store, jobs[0].id
        store.close()  # not the job this script builds (or a run cut short): build it again
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = Store(f"sqlite:///{db}")
    spec = {"objectives": OBJECTIVES, "budget": {"trials": None, "wall_time_s": 1e9}}
    job = store.create_job(name="pareto-speed", tags=[], spec=spec, accelerator={}, reference_point={})
    now = datetime.now(UTC)
    rows, losses = [], []
    started = time.perf_counter()
    for i, c in enumerate(candidates(n)):
        rows.append({"job_id": job.id, "trial_number": i, "arch_hash": c.arch_hash, "name": c.name, "arch": c.arch,
                     "status": c.status, "violations": {}, "on_front": False, "deployable": c.deployable,
                     "scores": {}, "hardware": c.hardware, "created_at": now,
                     **{m: c.metrics.get(m) for m in METRIC_COLUMNS}})  # fmt: skip
        losses.append([-c.metrics["accuracy"], c.metrics["latency_ms"], c.metrics["energy_mj"]])
    print(f"priced {n} candidates in {time.perf_counter() - started:.0f} s", flush=True)
    front = np.flatnonzero(non_dominated(np.array(losses)))
    with store.engine.begin() as conn:
        conn.execute(insert(CandidateModel), rows)
        ids = dict(conn.execute(CandidateModel.__table__.select().with_only_columns(
            CandidateModel.trial_number, CandidateModel.id).where(CandidateModel.job_id == job.id)).all())  # fmt: skip
        conn.execute(insert(TrialModel), [{"job_id": job.id, "number": i, "candidate_id": ids[i], "outcome": "complete",
                                           "values": None, "constraints": None, "created_at": now} for i in range(n)])  # fmt: skip
        conn.execute(
            update(CandidateModel).where(CandidateModel.id.in_([ids[int(i)] for i in front])).values(on_front=True)
        )
        conn.execute(update(JobModel).where(JobModel.id == job.id).values(
            n_trials=n, n_complete=n, n_front=len(front), reference_point=dict.fromkeys(OBJECTIVES)))  # fmt: skip
    return store, job.id


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--workdir", default=".", help="where the SQLite file is kept (reused if there)")
    parser.add_argument("--out")
    args = parser.parse_args()
    from nas.store import StoreError, parse_bounds

    store, job_id = build(Path(args.workdir) / f"pareto-{args.n}.db", args.n)
    job = store.get_job(job_id)
    q = store.pareto
    queries = [
        ("the front, best accuracy first, limit 20", lambda: q(job_id, limit=20)),
        ("the whole front", lambda: q(job_id)),
        ("latency_ms<0.5, by energy_mj, limit 20", lambda: q(job_id, where=parse_bounds("latency_ms<0.5"), sort="energy_mj", limit=20)),
        ("latency_ms<0.5, energy_mj<=1, accuracy>6", lambda: q(job_id, where=parse_bounds("latency_ms<0.5,energy_mj<=1,accuracy>6"))),
        ("latency_ms>1 (front recomputed), limit 20", lambda: q(job_id, where=parse_bounds("latency_ms>1"), limit=20)),
        ("params<2000000 (front recomputed)", lambda: q(job_id, where=parse_bounds("params<2000000"))),
        ("utilisation>0.3 (front recomputed)", lambda: q(job_id, where=parse_bounds("utilisation>0.3"))),
        ("hypervolume history", lambda: store.hypervolume_history(job_id)),
    ]  # fmt: skip
    rows = []
    for label, fn in queries:
        ms, result = timed(fn, args.repeat)
        rows.append((label, ms, len(result)))
        print(f"{label}: {ms:.1f} ms ({len(result)} rows)", flush=True)
    # appending through the store at this size: front maintenance is O(front), not O(candidates)
    extra = list(candidates(200, seed=1))  # another stream: a hash already in the job is skipped
    record_ms = []
    number = job.n_trials + 10_000
    for c in extra:
        start = time.perf_counter()
        try:
            store.record(job_id, number, candidate=c, values=None, constraints=None)
        except StoreError:
            continue
        record_ms.append((time.perf_counter() - start) * 1e3)
        number += 1
    lines = [
        "# Pareto queries at scale",
        "",
        f"Printed by `python benchmarks/pareto_query_speed.py --n {args.n}` (see its docstring): one job of",
        f"{args.n:,} distinct candidates of the default space on SQLite, {job.n_front} on the front; medians of "
        f"{args.repeat} runs.",
        "",
        "| query | ms | rows |",
        "|---|---|---|",
        *(f"| {label} | {ms:.1f} | {n} |" for label, ms, n in rows),
        "",
        f"Recording one more candidate through `Store.record` (trial row, candidate, counters, front "
        f"membership and hypervolume): median {statistics.median(record_ms):.1f} ms over {len(record_ms)} "
        f"appended at this size.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
