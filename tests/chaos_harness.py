"""The chaos harness (``run_chaos``): the service and its jobs' processes killed at random while
clients poll; nothing may be lost, counted twice or left running. tests/test_chaos.py runs it short,
benchmarks/chaos.py long (>= 20 kills, docs/chaos.md); it lives with the tests so that no test
imports a benchmark script.

A real `nas serve` (``--max-jobs`` = ``--jobs``) on SQLite (default, a fresh file in ``--workdir``) or
PostgreSQL (``--db``: a fresh schema is made in that database) runs ``--jobs`` search jobs scored by
the search tests' toy evaluator (``tests/search_plugins.py``: tens of milliseconds a candidate, in
the job's own process, so kills land mid-trial often). ``--clients`` threads poll the API (job list,
job, Pareto page, candidate pages) throughout. Every 1.5-4 s a killer sends SIGKILL or SIGTERM (at
random) to a running job's process or, one time in three, to the service itself, which is then
started again. After the kills the jobs run to their budgets, and the report counts:

- jobs completed, of those submitted;
- candidates lost: candidates a client saw that the store no longer has, plus trials Optuna
  completed that the store has no record of (must be 0);
- networks recorded twice: an architecture with two candidate rows in one job (must be 0);
  evaluations redone after a kill (a kill loses the evaluation in flight: it is redone, not
  recorded twice) are counted apart;
- trials left running in Optuna, and job processes left alive after the service stops (0);
- client errors other than a refused or dropped connection while the service is down (0).
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TESTS = Path(__file__).resolve().parent  # the toy evaluator plug-in (search_plugins.py)


@dataclass
class Report:
    db: str
    kills: collections.Counter = field(default_factory=collections.Counter)
    jobs: int = 0
    jobs_completed: int = 0
    trials: int = 0
    candidates: int = 0
    candidates_seen: int = 0
    candidates_lost: int = 0
    recorded_twice: int = 0
    evaluations_redone: int = 0
    trials_left_running: int = 0
    processes_left: int = 0
    requests: int = 0
    refused_while_down: int = 0
    client_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # the clients' counts

    @property
    def clean(self) -> bool:
        return (
            self.jobs_completed == self.jobs
            and not self.candidates_lost
            and not self.recorded_twice
            and not self.trials_left_running
            and not self.processes_left
            and not self.client_errors
        )

    def rows(self) -> list[tuple[str, str]]:
        kills = ", ".join(f"{n} {what}" for what, n in sorted(self.kills.items()))
        return [
            ("kills", f"{sum(self.kills.values())} ({kills})"),
            ("jobs completed", f"{self.jobs_completed} of {self.jobs}"),
            ("trials recorded / candidates", f"{self.trials} / {self.candidates}"),
            ("candidates lost", f"{self.candidates_lost} (of {self.candidates_seen} seen by clients)"),
            ("networks recorded twice", str(self.recorded_twice)),
            ("evaluations redone after a kill", str(self.evaluations_redone)),
            ("trials left running", str(self.trials_left_running)),
            ("job processes left after the service stopped", str(self.processes_left)),
            ("client requests", str(self.requests)),
            ("refused or dropped while the service was down", str(self.refused_while_down)),
            ("client errors otherwise", str(len(self.client_errors))),
            ("wall time", f"{self.seconds:.0f} s"),
        ]


class Service:
    """`nas serve` as a child process that can be killed and started again on the same port."""

    def __init__(self, db: str, workdir: Path, max_jobs: int) -> None:
        self.db, self.workdir, self.max_jobs = db, workdir, max_jobs
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.up = threading.Event()

    def start(self) -> None:
        path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
        command = [sys.executable, "-m", "nas", "serve", "--port", str(self.port), "--db", self.db,
                   "--data-dir", str(self.workdir / "service"), "--max-jobs", str(self.max_jobs),
                   "--allow-plugin", "search_plugins:ToyEvaluator"]  # fmt: skip
        with open(self.workdir / "serve.log", "ab") as log:
            self.proc = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": path}, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"{self.url}/healthz", timeout=2).raise_for_status()
                self.up.set()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"nas serve exited with {self.proc.returncode}; see {self.workdir / 'serve.log'}")
            time.sleep(0.1)
        raise TimeoutError("nas serve did not answer within 60 s")

    def kill(self, sig: int) -> None:
        self.up.clear()
        self.proc.send_signal(sig)
        self.proc.wait(timeout=90)  # SIGTERM: its jobs record that they were interrupted first

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill(signal.SIGTERM)


def fresh_database(db: str | None, workdir: Path) -> str:
    """A database of the run's own: a new SQLite file, or a new schema in the PostgreSQL given."""
    if not db:
        path = workdir / "chaos.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    import sqlalchemy

    schema = f"chaos_{os.getpid()}_{int(time.time())}"
    engine = sqlalchemy.create_engine(db)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    return f"{db}{'&' if '?' in db else '?'}options=-csearch_path%3D{schema}"


def poll(service: Service, job_ids: list[int], stop: threading.Event, report: Report, seen: dict, seed: int) -> None:
    """One client: random reads until ``stop``; errors are recorded, not raised."""
    rng = random.Random(seed)
    lock = report.lock
    with httpx.Client(base_url=service.url, timeout=60) as http:
        while not stop.is_set():
            job = rng.choice(job_ids)
            path, params = rng.choice([
                ("/jobs", {}),
                (f"/jobs/{job}", {}),
                (f"/jobs/{job}/pareto", {"limit": 20}),
                (f"/jobs/{job}/candidates", {"limit": 50, "offset": rng.randrange(0, 300)}),
            ])  # fmt: skip
            down_before = not service.up.is_set()
            try:
                response = http.get(path, params=params)
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as err:
                with lock:
                    report.requests += 1
                    if down_before or not service.up.is_set():
                        report.refused_while_down += 1
                    else:
                        report.client_errors.append(f"GET {path}: {type(err).__name__}: {err}")
                time.sleep(0.2)
                continue
            except httpx.HTTPError as err:
                with lock:
                    report.requests += 1
                    report.client_errors.append(f"GET {path}: {type(err).__name__}: {err}")
                continue
            with lock:
                report.requests += 1
                if response.status_code != 200:
                    report.client_errors.append(f"GET {path}: {response.status_code} {response.text[:200]}")
            if response.status_code == 200 and "/candidates" in path:
                for c in response.json()["items"]:
                    seen[(job, c["id"])] = c["arch_hash"]
            time.sleep(rng.uniform(0.0, 0.05))


def run_chaos(
    *,
    db: str | None,
    workdir: Path,
    kills: int = 24,
    jobs: int = 4,
    clients: int = 20,
    trials: int = 300,
    seed: int = 0,
    finish_timeout_s: float = 900,
    log=print,
) -> Report:
    from nas.search import owner_alive
    from nas.store import Store

    workdir.mkdir(parents=True, exist_ok=True)
    url = fresh_database(db, workdir)
    report = Report(db=url.split(":", 1)[0].split("+")[0])
    rng = random.Random(seed)
    service = Service(url, workdir, max_jobs=jobs)
    started = time.monotonic()
    service.start()
    store = Store(url)
    logs = [workdir / f"evaluations-{i}.log" for i in range(jobs)]
    for path in logs:
        path.unlink(missing_ok=True)
    spec = {"space": "metaformer-tiny", "input_shape": [3, 64, 64], "workers": {"count": 0}}
    job_ids = []
    for i, path in enumerate(logs):
        evaluator = {"plugin": "search_plugins:ToyEvaluator", "options": {"delay_s": 0.03, "log": str(path)}}
        body = {**spec, "name": f"chaos-{i}", "evaluator": evaluator, "budget": {"trials": trials}, "seed": i}
        job_ids.append(httpx.post(f"{service.url}/jobs", json=body, timeout=60).raise_for_status().json()["id"])
    stop, seen = threading.Event(), {}
    pollers = [
        threading.Thread(target=poll, args=(service, job_ids, stop, report, seen, seed * 1000 + k), daemon=True)
        for k in range(clients)
    ]
    for t in pollers:
        t.start()
    try:
        for k in range(kills):
            _progressing(store, job_ids)  # kill only once the last kill has been recovered from
            time.sleep(rng.uniform(1.5, 4.0))
            sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
            running = [j for j in (store.get_job(i) for i in job_ids) if j.status == "running" and owner_alive(j)]
            if not running or rng.random() < 1 / 3:
                log(f"kill {k + 1}/{kills}: the service, {sig.name}")
                service.kill(sig)
                report.kills[f"service {sig.name}"] += 1
                service.start()
            else:
                job = rng.choice(running)
                pid = int(job.owner.rpartition(":")[2])
                log(f"kill {k + 1}/{kills}: job {job.id}'s process {pid} at {job.n_trials} trials, {sig.name}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                report.kills[f"job {sig.name}"] += 1
        deadline = time.monotonic() + finish_timeout_s
        while time.monotonic() < deadline:
            states = [store.get_job(i).status for i in job_ids]
            if all(s in ("completed", "cancelled", "failed") for s in states):
                break
            time.sleep(1)
    finally:
        stop.set()
        for t in pollers:
            t.join(timeout=60)
        service.stop()
    report.seconds = time.monotonic() - started
    _audit(report, store, url, job_ids, logs, seen)
    store.close()
    return report


def _progressing(store, job_ids: list[int], timeout_s: float = 120) -> bool:
    """Wait until an unfinished job records a trial (its process has started again after a kill);
    False if none is unfinished or none moves in ``timeout_s``."""
    before = {i: store.get_job(i).n_trials for i in job_ids}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = [store.get_job(i) for i in job_ids]
        if all(j.status in ("completed", "cancelled", "failed") for j in jobs):
            return False
        if any(j.status == "running" and j.n_trials > before[j.id] for j in jobs):
            return True
        time.sleep(0.2)
    return False


def _audit(report: Report, store, url: str, job_ids: list[int], logs: list[Path], seen: dict) -> None:
    import optuna
    from optuna.trial import TrialState

    report.jobs = len(job_ids)
    for job_id, path in zip(job_ids, logs, strict=True):
        job = store.get_job(job_id)
        report.jobs_completed += job.status == "completed"
        stored = store.trials(job_id)
        report.trials += len(stored)
        candidates = store.candidates(job_id, limit=None)
        report.candidates += len(candidates)
        by_hash = collections.Counter(c.arch_hash for c in candidates)
        report.recorded_twice += sum(n - 1 for n in by_hash.values())
        evaluated = path.read_text().split() if path.exists() else []
        report.evaluations_redone += len(evaluated) - sum(c.status in ("complete", "failed") for c in candidates)
        try:
            trials = optuna.load_study(study_name=job.study_name, storage=url).get_trials(deepcopy=False)
        except KeyError:  # the job never ran (it failed first): no study
            trials = []
        for t in trials:
            if t.state == TrialState.RUNNING:
                report.trials_left_running += 1
            elif t.state == TrialState.COMPLETE and t.number not in stored:
                report.candidates_lost += 1  # Optuna was told a result the store does not hold
        kept = {(job_id, c.id): c.arch_hash for c in candidates}
        report.candidates_lost += sum(kept.get(k) != h for k, h in seen.items() if k[0] == job_id)
    report.candidates_seen = len(seen)
    report.processes_left = len(_job_processes(url))


def _job_processes(url: str) -> list[int]:
    """Live `nas resume` processes on this database."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if b"resume" in args and url.encode() in args:
                pids.append(int(cmdline.parent.name))
    return pids
