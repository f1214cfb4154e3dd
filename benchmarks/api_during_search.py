"""How fast the API answers while the service runs a search (issue 6: "within milliseconds").

Starts `nas serve` on a fresh SQLite file, times a client's `GET /jobs/{id}` and
`GET /jobs/{id}/pareto?limit=20` every ``--every`` seconds, first with the service idle (a job
finished earlier in the same database), then while the README's demo job runs (``--trials``
trials, 2 local Ray workers: both cores busy with the proxy), and prints median, p95 and max;
then times the export of the job's best candidate in the default formats (`nas.export.DEFAULT_FORMATS`).

    python benchmarks/api_during_search.py [--trials 60] [--workdir DIR] [--out docs/api_during_search.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from service_process import percentile, serving  # noqa: E402 - beside this script


def sample(client, job_id: int, until, every: float) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"GET /jobs/{id}": [], "GET /jobs/{id}/pareto?limit=20": []}
    while not until():
        for label, call in (
            ("GET /jobs/{id}", lambda: client.job(job_id)),
            ("GET /jobs/{id}/pareto?limit=20", lambda: client.pareto(job_id, limit=20)),
        ):
            t = time.perf_counter()
            call()
            timings[label].append((time.perf_counter() - t) * 1e3)
        time.sleep(every)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--every", type=float, default=0.05)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--out")
    args = parser.parse_args()
    from nas.client import Client

    work = Path(args.workdir or tempfile.mkdtemp(prefix="api-during-search-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "nas.db"
    db.unlink(missing_ok=True)
    spec = yaml.safe_load((ROOT / "docs/examples/edge-classifier.yaml").read_text())
    with serving(f"sqlite:///{db}", work / "service", cwd=ROOT) as base:
        client = Client(base)
        warm = client.submit(spec, budget={"trials": 10, "wall_time_s": 240}, name="warm-up")
        client.wait(warm["id"], timeout=600)
        deadline = time.monotonic() + 20
        idle = sample(client, warm["id"], lambda: time.monotonic() > deadline, args.every)

        job = client.submit(spec, budget={"trials": args.trials, "wall_time_s": 600})
        while client.job(job["id"])["status"] == "queued":
            time.sleep(0.05)
        busy = sample(client, job["id"], lambda: client.job(job["id"])["status"] != "running", args.every)
        done = client.job(job["id"])
        exports = []  # the front's best, the default formats, three times (the service is idle again)
        for _ in range(3):
            t = time.perf_counter()
            exported = client.export(job["id"])
            exports.append(time.perf_counter() - t)

    rows = []
    for phase, timings in (("idle", idle), (f"during the search ({done['progress']['trials']} trials)", busy)):
        for label, ms in timings.items():
            rows.append((phase, label, len(ms), statistics.median(ms), percentile(ms, 95), max(ms)))
            print(f"{phase}, {label}: median {rows[-1][3]:.1f} ms, p95 {rows[-1][4]:.1f} ms, max {rows[-1][5]:.1f} ms "
                  f"over {len(ms)}", flush=True)  # fmt: skip
    text = "\n".join(
        [
            "# The API during a search",
            "",
            f"Printed by `python benchmarks/api_during_search.py --trials {args.trials}` (see its docstring): "
            f"`nas serve` on SQLite; one client times each request every {args.every * 1e3:.0f} ms, with the "
            f"service idle, then while it runs the README's demo job ({done['status']} after "
            f"{done['run_seconds']:.0f} s, 2 local Ray workers on this {os.cpu_count()}-core machine).",
            "",
            "| phase | request | requests | median ms | p95 ms | max ms |",
            "|---|---|---|---|---|---|",
            *(f"| {p} | `{label}` | {n} | {m:.1f} | {p95:.1f} | {mx:.1f} |" for p, label, n, m, p95, mx in rows),
            "",
            f"An export of the front's best ({exported['card']['name']}, "
            f"{exported['card']['metrics']['params'] / 1e6:.2f} M params; the default formats (ExportedProgram, state_dict, ONNX) built, checked and "
            f"zipped), from `POST /jobs/{{id}}/export` to complete (`Client.export`: queued, run by the "
            f"supervisor in a process of its own, its card polled): median {statistics.median(exports):.1f} s "
            f"over {len(exports)}.",
            "",
        ]
    )
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
