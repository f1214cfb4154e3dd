"""What one tenant's request costs the API process (issue 20, finding 5): each request that took
seconds to minutes of server CPU or gigabytes of its memory, sent with an ordinary token to a real
`nas serve --auth` on SQLite; per request its answer, wall time, the API process's CPU time and its
resident memory after (all from /proc). Work a request queues (an export) runs in a process of its
own, which is not the API's.

    python benchmarks/tenant_requests.py [--workdir DIR] [--baseline GIT_REF] [--out docs/tenant_requests.md]

``--baseline`` measures an older commit first (a git worktree under ``--workdir``, the same venv),
so before and after come from one run on one machine. Needs Fashion-MNIST (`make data`): the
export that trains reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

SMALL = {"name": "bench", "space": "metaformer-tiny", "input_shape": [1, 32, 32],
         "evaluator": {"proxy": "params", "train": 0}, "budget": {"trials": 4}, "workers": {"count": 0}}  # fmt: skip
LARGE = {**SMALL, "name": "large", "input_shape": [64, 1024, 1024], "num_classes": 100_000}
DEEP_SPACE = {"name": "deep", "hierarchical": {"num_stages": [1], "stages": [{"mixers": ["pooling"], "depth": [3000],
                                                                              "dim": [64]}]}}  # fmt: skip


def requests(small: int, large: int) -> list[tuple[str, str, str, dict]]:
    """(what, method, path, body): the requests of issue 20's finding 5."""
    pooling = {"stages": [{"mixer": "pooling", "depth": 300, "dim": 64}]}
    return [
        ("an inline space with a pooling stage of depth 3000", "POST", "/jobs", {**SMALL, "space": DEEP_SPACE}),
        ("a sweep of an attention stage of dim 100000001", "POST", "/hw/sweep",
         {"arch": {"stages": [{"mixer": "attention", "depth": 1, "dim": 100_000_001}]}, "grid": {}}),
        ("a sweep of a stage of depth 100000", "POST", "/hw/sweep",
         {"arch": {"stages": [{"mixer": "pooling", "depth": 100_000, "dim": 64}]}, "grid": {}}),
        ("a sweep of depth 300 over 2048 chips", "POST", "/hw/sweep",
         {"arch": pooling, "grid": {"cores": [1, 2, 4, 8], "clock_mhz": list(range(100, 612))}}),
        ("a job at resolution 1024 x batch 1024", "POST", "/jobs",
         {**SMALL, "evaluator": {"proxy": "params", "train": 0, "resolution": 1024, "batch": 1024}}),
        ("an export that trains 40 steps at batch 1024", "POST", f"/jobs/{small}/export",
         {"formats": "onnx", "train_steps": 40, "train_batch": 1024}),
        ("an export of a 64x1024x1024-input, 100000-class network", "POST", f"/jobs/{large}/export", {}),
    ]  # fmt: skip


def _num(x: float, digits: int) -> str:
    return "(process gone)" if x != x else f"{x:.{digits}f}"  # NaN: the server died


def cpu_s(pid: int) -> float:
    """The process's user + system CPU time so far (its children's not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


_BUILD = """
import json, sys
from nas.search import run, submit
from nas.spec import load_spec
from nas.store import Store
small, large = json.loads(sys.argv[2]), json.loads(sys.argv[3])
store = Store(f"sqlite:///{sys.argv[1]}")
token, _ = store.create_token("bench")
ids = [run(store, submit(store, load_spec(s), tenant="bench").id).id for s in (small, large)]
print(json.dumps([*ids, token]))
"""


def build(db: Path, cwd: Path | None) -> tuple[int, int, str]:
    """A store with two finished jobs of tenant ``bench`` (a small one, a large one) and its token,
    made by the code that will serve it (``cwd``: a baseline's worktree, whose schema may be older)."""
    command = [sys.executable, "-c", _BUILD, str(db), json.dumps(SMALL), json.dumps(LARGE)]
    out = subprocess.run(command, cwd=cwd or HERE.parent, capture_output=True, text=True, check=True)
    small, large, token = json.loads(out.stdout.strip().splitlines()[-1])
    return small, large, token


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/tenant-requests")
    parser.add_argument("--baseline", metavar="GIT_REF", help="also measure this older commit, first")
    parser.add_argument("--out")
    args = parser.parse_args()

    from service_process import checkout, serving_process

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    servers = [("this commit", None)]
    if args.baseline:
        servers.insert(0, (args.baseline, checkout(args.baseline, work)))
    rows = []
    for version, cwd in servers:
        db = work / f"{version.replace(' ', '-')}.db"
        db.unlink(missing_ok=True)
        small, large, token = build(db, cwd)
        # an export's own run stops at --max-export-s (this commit); the baseline has no such option
        extra = ["--auth"] + (["--max-export-s", "60"] if cwd is None else [])
        with serving_process(f"sqlite:///{db}", work / f"service-{version}", cwd=cwd, extra=extra) as (base, server):
            http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=600)
            http.get("/limits")  # the first request's imports are not a request's cost
            for what, method, path, body in requests(small, large):
                cpu, started = cpu_s(server.pid), time.monotonic()
                try:
                    try:
                        answer = http.request(method, path, json=body)
                    except (httpx.RemoteProtocolError, httpx.ReadError):  # a kept-alive connection an error closed
                        http.close()
                        http = httpx.Client(base_url=base, headers=http.headers, timeout=600)
                        cpu, started = cpu_s(server.pid), time.monotonic()
                        answer = http.request(method, path, json=body)
                    status = str(answer.status_code)
                    wall = time.monotonic() - started
                except httpx.TransportError as err:  # the server died under it
                    wall = time.monotonic() - started
                    time.sleep(2)  # a dying server's exit shows by then
                    status = f"no answer ({type(err).__name__})"
                alive = server.poll() is None
                spent, rss = (cpu_s(server.pid) - cpu, rss_mib(server.pid)) if alive else (float("nan"),) * 2
                rows.append((what, version, status, wall, spent, rss))
                print(f"{version}: {what}: {status} in {wall:.2f} s, API CPU {spent:.2f} s, API RSS {rss:.0f} MiB",
                      flush=True)  # fmt: skip
                if not alive:
                    break
            http.close()
    text = "\n".join(
        [
            "# What one tenant's request costs the API process",
            "",
            f"Printed by `python benchmarks/tenant_requests.py{' --baseline ' + args.baseline if args.baseline else ''}`"
            " (see its docstring): `nas serve --auth` on SQLite, one tenant's token, issue 20's requests in order, on "
            f"this {os.cpu_count()}-core machine. CPU is the API process's own (user + system, from /proc); RSS its "
            "resident memory after the request. A queued export runs in a process of its own, not counted here.",
            "",
            "| request | server | answer | wall s | API CPU s | API RSS after, MiB |",
            "|---|---|---|---|---|---|",
            *(f"| {w} | {v} | {s} | {t:.2f} | {_num(c, 2)} | {_num(r, 0)} |" for w, v, s, t, c, r in rows),
            "",
        ]
    )
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
