"""Time the export of a searched network at its job's priced shape, one format at a time.

    python benchmarks/export_speed.py [--repeat 3] [--size 224] [--baseline GIT_REF]

Runs a small score-only search once (``metaformer-tiny`` priced at 3 x size x size, 4 trials, no
Ray), then exports its front's best ``--repeat`` times per format (build, trace, save, load back,
compare with the module at each check input, write the card) and prints the median seconds of
each, on this machine. ``--baseline`` also measures an older commit on the same candidate in the
same run (its code unpacked with ``git archive`` into a temporary folder, run in a subprocess), so
the two columns compare like with like.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORMATS = ("state_dict", "exported_program", "onnx", "torchscript")


def search(db: str, size: int) -> int:
    from nas.search import run, submit
    from nas.spec import load_spec
    from nas.store import Store

    spec = {
        "name": "export-speed",
        "space": "metaformer-tiny",
        "input_shape": [3, size, size],
        "evaluator": {"proxy": "synflow", "resolution": 16, "batch": 4, "train": 0},
        "budget": {"trials": 4},
        "workers": {"count": 0},
    }
    store = Store(db)
    return run(store, submit(store, load_spec(spec)).id).id


def measure(size: int, repeat: int) -> dict[str, float | str]:
    """Median seconds per format of this interpreter's ``nas.export`` (the tree on its path), on the
    best of a search it runs on a database of its own (each tree migrates its own schema); the
    search is seeded, so both trees export the same candidate (its arch_hash says so)."""
    from nas.export import export_candidate
    from nas.store import Store

    work = tempfile.mkdtemp()
    db = f"sqlite:///{Path(work) / 'nas.db'}"
    job_id = search(db, size)
    store = Store(db)
    job = store.get_job(job_id)
    best = store.pareto(job_id, limit=1)[0]
    # an untrained export is refused since issue 21 unless asked for; older code has no such option
    options = {"allow_untrained": True} if "allow_untrained" in inspect.signature(export_candidate).parameters else {}
    medians: dict[str, float | str] = {"arch_hash": best.arch_hash}
    with tempfile.TemporaryDirectory() as out:
        for fmt in FORMATS:
            times = []
            for i in range(repeat):
                start = time.perf_counter()
                export_candidate(job, best, Path(out) / f"{fmt}-{i}", formats=fmt, **options)
                times.append(time.perf_counter() - start)
            medians[fmt] = statistics.median(times)
    return medians


def unpack(ref: str, into: Path) -> Path:
    archive = into / "tree.tar"
    subprocess.run(["git", "archive", "--output", str(archive), ref], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def run_in(tree: Path, size: int, repeat: int) -> dict[str, float | str]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", "--size", str(size), "--repeat", str(repeat)],
        cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=224, help="the priced input's height and width, px")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also measure this older commit")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # a subprocess's part
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.size, args.repeat)))
        return
    with tempfile.TemporaryDirectory() as work:
        columns = {}
        if args.baseline:
            columns[args.baseline] = run_in(unpack(args.baseline, Path(work)), args.size, args.repeat)
        columns["this tree"] = run_in(ROOT, args.size, args.repeat)
    hashes = {c.pop("arch_hash") for c in columns.values()}
    if len(hashes) != 1:
        raise SystemExit(f"the trees exported different candidates ({', '.join(sorted(hashes))}): not comparable")
    print(
        f"Export of a metaformer-tiny network ({hashes.pop()}) priced at 3x{args.size}x{args.size}, "
        f"median of {args.repeat} (s):"
    )
    print("| format | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for fmt in FORMATS:
        print(f"| {fmt} | " + " | ".join(f"{c[fmt]:.2f}" for c in columns.values()) + " |")


if __name__ == "__main__":
    main()
