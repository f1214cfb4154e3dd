"""`GET /jobs/{id}/pareto` under load: p50/p95 latency with 20 concurrent clients on a job of 100k
candidates (issue 6), through a real `nas serve` on SQLite.

The job is the one of ``pareto_query_speed.py`` (100k distinct real candidates of the default
space, priced by the hardware model; its SQLite file is reused from ``--workdir`` if there). Each
of ``--clients`` threads keeps one HTTP connection and sends ``--requests`` queries back to back;
a single client's run of the same query, first, gives the unloaded latency. Bounds that make the
store recompute the front are cached per job until its next trial; the last query changes its
bound at every request to measure the recomputation itself. The clients share
the machine with the server (2 cores here), so the figures include their own CPU time.

    python benchmarks/api_pareto_latency.py [--n 100000] [--clients 20] [--requests 25] [--workdir DIR]
        [--baseline GIT_REF] [--out docs/api_pareto_latency.md]

``--baseline`` serves the same job from a checkout of an older commit too (a git worktree under
``--workdir``, the same venv), first, so old and new are measured in one run on the same machine.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

QUERIES = [
    ("the front, best accuracy first, limit 20", {"limit": 20}),
    ("latency_ms<0.5, by energy_mj, limit 20", {"where": "latency_ms<0.5", "sort": "energy_mj", "limit": 20}),
    ("the whole front, 3 fields", {"fields": "id,latency_ms,energy_mj", "limit": 1000}),
    ("latency_ms>1 (front recomputed once, then cached), limit 20", {"where": "latency_ms>1", "limit": 20}),
    # every request a new bound: the store recomputes the front each time (its worst case)
    (
        "latency_ms>1+k (recomputed every request), limit 20",
        lambda k: {"where": f"latency_ms>{1 + k * 1e-9:.9f}", "limit": 20},
    ),
]


def load(base: str, path: str, params, clients: int, requests: int) -> tuple[list[float], float]:
    """Latencies (ms) of every request, and the wall time of the whole run."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = itertools.count(int(time.time()))  # distinct keys across runs, for the varying query
    start = threading.Barrier(clients + 1)

    def client() -> None:
        mine = []
        with httpx.Client(base_url=base, timeout=60) as http:
            http.get("/healthz")  # the connection is open before the clock starts
            start.wait()
            for _ in range(requests):
                t = time.perf_counter()
                response = http.get(path, params=params(next(counter)) if callable(params) else params)
                mine.append((time.perf_counter() - t) * 1e3)
                response.raise_for_status()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    if len(latencies) != clients * requests:
        raise RuntimeError(f"{clients * requests - len(latencies)} requests failed (see above)")
    return latencies, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25, help="per client and query")
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also measure this older commit, first")
    parser.add_argument("--out")
    args = parser.parse_args()

    from pareto_query_speed import build
    from service_process import checkout, percentile, serving

    db = Path(args.workdir) / f"pareto-{args.n}.db"
    store, job_id = build(db, args.n)
    n_front = store.get_job(job_id).n_front
    store.close()
    servers = [("this commit", None)]
    if args.baseline:
        servers.insert(0, (args.baseline, checkout(args.baseline, Path(args.workdir))))
    rows = []
    for version, cwd in servers:
        with serving(f"sqlite:///{db.resolve()}", Path(args.workdir) / "service", cwd=cwd) as base:
            path = f"/jobs/{job_id}/pareto"
            for label, params in QUERIES:
                load(base, path, params, 1, 3)  # warm the caches
                alone, _ = load(base, path, params, 1, args.requests)
                loaded, wall = load(base, path, params, args.clients, args.requests)
                p50, p95, rps = percentile(loaded, 50), percentile(loaded, 95), len(loaded) / wall
                rows.append((version, label, statistics.median(alone), p50, p95, rps))
                print(f"{version}: {label}: 1 client p50 {rows[-1][2]:.1f} ms; {args.clients} clients p50 {p50:.1f} ms, "
                      f"p95 {p95:.1f} ms, {rps:.0f} req/s", flush=True)  # fmt: skip

    text = "\n".join(
        [
            "# The Pareto API under load",
            "",
            f"Printed by `python benchmarks/api_pareto_latency.py --n {args.n} --clients {args.clients} "
            f"--requests {args.requests}{' --baseline ' + args.baseline if args.baseline else ''}` (see its docstring): `nas serve` on SQLite, one job of {args.n:,} "
            f"candidates ({n_front} on the front); {args.clients} client threads with one connection each, "
            f"{args.requests} requests per client and query, on the same {os.cpu_count()}-core machine as the server.",
            "",
            f"| server | query | 1 client p50 ms | {args.clients} clients p50 ms | {args.clients} clients p95 ms"
            " | requests/s |",
            "|---|---|---|---|---|---|",
            *(
                f"| {v} | {label} | {a:.1f} | {p50:.1f} | {p95:.1f} | {rps:.0f} |"
                for v, label, a, p50, p95, rps in rows
            ),
            "",
            "One server process (uvicorn) answers every request, and the client threads run on the same "
            "cores: under load a request mostly waits its turn. Since issue 13 a Pareto page is kept per job "
            "and query until the job records a trial or recalibrates (`nas/service/_cache.py`), so a polled "
            "page costs one small query; the last row, a new bound every request, still recomputes the "
            "front over all candidates each time (its worst case, not a polled page).",
            "",
        ]
    )
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
