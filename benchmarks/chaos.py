"""Chaos: the service and its jobs' processes killed at random while clients poll; nothing may be
lost, counted twice or left running.

    python benchmarks/chaos.py [--db URL] [--kills 24] [--jobs 4] [--clients 20] [--trials 300] [--seed 0]
        [--workdir DIR] [--out docs/chaos.md]

The run, its kills and what the report counts are described in ``tests/chaos_harness.py``
(``run_chaos``), which the suite runs short (tests/test_chaos.py); this script runs it long, once
per database, and prints the table of docs/chaos.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from chaos_harness import Report, run_chaos  # the harness lives with the tests


def markdown(reports: list[Report], args: argparse.Namespace) -> str:
    header = "| | " + " | ".join(r.db for r in reports) + " |"
    lines = [
        "# Chaos: kills while clients poll",
        "",
        f"Printed by `python benchmarks/chaos.py{' --sqlite' if args.sqlite else ''}"
        f"{''.join(' --db ' + _safe(db) for db in args.db or [])} --kills {args.kills} --jobs {args.jobs} "
        f"--clients {args.clients} --trials {args.trials} --seed {args.seed}` (see its docstring), once per "
        f"database, on a {os.cpu_count()}-core machine.",
        "",
        header,
        "|---|" + "---|" * len(reports),
    ]
    for i, (name, _) in enumerate(reports[0].rows()):
        lines.append(f"| {name} | " + " | ".join(r.rows()[i][1] for r in reports) + " |")
    for r in reports:
        if r.client_errors:
            lines += ["", f"Client errors on {r.db} (first 5):", "", *(f"- {e}" for e in r.client_errors[:5])]
    return "\n".join(lines) + "\n"


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append", help="a PostgreSQL URL (repeatable); default: SQLite only")
    parser.add_argument("--sqlite", action="store_true", help="with --db: run on SQLite too, first")
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/nas-chaos"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    targets = ([None] if args.sqlite or not args.db else []) + (args.db or [])
    reports = []
    for db in targets:
        report = run_chaos(db=db, workdir=args.workdir / (db.split(":")[0] if db else "sqlite"), kills=args.kills,
                           jobs=args.jobs, clients=args.clients, trials=args.trials, seed=args.seed)  # fmt: skip
        reports.append(report)
        for name, value in report.rows():
            print(f"{report.db}: {name}: {value}", flush=True)
    text = markdown(reports, args)
    if args.out:
        args.out.write_text(text)
    print(text)
    sys.exit(0 if all(r.clean for r in reports) else 1)


if __name__ == "__main__":
    main()
