"""Runs the service's jobs apart from the request handlers: one ``nas resume`` process per job.

A thread polls the store each ``poll_s`` and starts, up to ``max_jobs`` at once (and at most
``limits.max_running_per_tenant`` of one tenant's), the jobs the service manages (``managed``)
that wait for a runner: queued ones, ones a stopped service interrupted, and running ones whose
process died. The store stays the truth: a job's process claims it (compare-and-set on its owner),
so two services on one database cannot run it twice, and a restarted service picks up where the
last one stopped, adopting the job processes a killed service left running on this host.

No job blocks the queue: a process that stops heart-beating (``limits.heartbeat_timeout_s``), runs past
its spec's time (``longest_run_s``) or ignores a cancel for ``CANCEL_ESCALATE_S`` is stopped
(SIGTERM, then SIGKILL), its job recorded with the reason, and its slot freed. A job whose process
keeps dying before it records anything is failed with its log's last lines. Each job's process
leads a session of its own; when it ends, however it ends, every process left in that session (Ray's)
is killed. Stopping the service interrupts its jobs (SIGTERM: they record ``interrupted``), to be
resumed by the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from nas.limits import Limits
from nas.search import owner_alive
from nas.search._liveness import CANCEL_GRACE_S, kill_session, owner_pid, pid_alive
from nas.search._runner import longest_run_s
from nas.spec import JobSpec
from nas.status import FINISHED
from nas.store import JobRecord, Store, StoreError

log = logging.getLogger("nas.service")
STOP_GRACE_S = 20.0  # how long a job has to record its state after SIGTERM
CANCEL_ESCALATE_S = 2 * CANCEL_GRACE_S  # a cancelled job still running after this is stopped
START_GRACE_S = 120.0  # a new job process's time to import and claim its job before it must beat
MAX_STARTS = 3  # a job whose process keeps dying before it records anything is marked failed
SPAWNER_ENV = "NAS_SUPERVISOR_PID"  # in a job's process: the service that started it, to adopt it once that one is gone
LOG_TAIL_LINES = 8


@dataclass
class _Run:
    """A job's process this service watches: one it started, or one adopted from a killed service."""

    job_id: int
    pid: int
    tenant: str | None
    deadline_s: float  # from ``started``
    started: float  # time.monotonic()
    spawned_at: datetime
    process: subprocess.Popen | None  # None: adopted (not our child)
    trials_at_start: int = 0
    cancel_seen: float | None = None
    stopping: str | None = None  # why the supervisor is stopping it
    term_sent: float | None = None

    def ended(self) -> bool:
        return self.process.poll() is not None if self.process is not None else not pid_alive(self.pid)


class JobSupervisor:
    def __init__(
        self,
        store: Store,
        *,
        log_dir: Path,
        max_jobs: int = 2,
        poll_s: float = 1.0,
        limits: Limits | None = None,
    ) -> None:
        if max_jobs < 1:
            raise ValueError(f"max_jobs: must be >= 1, got {max_jobs}")
        self.store, self.log_dir, self.max_jobs, self.poll_s = store, log_dir, max_jobs, poll_s
        self.limits = limits or Limits()
        self._runs: dict[int, _Run] = {}
        self._starts: dict[int, int] = {}  # job -> processes started for it that ended with it unfinished
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name="nas-job-supervisor", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now (after a submit or resume) rather than at the next poll."""
        with contextlib.suppress(StoreError):
            self.poll()

    def running(self) -> list[int]:
        with self._lock:
            return sorted(j for j, r in self._runs.items() if not r.ended())

    def stop(self) -> None:
        """Stop polling and interrupt the jobs this service runs; they resume at the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            runs = list(self._runs.values())
        for r in runs:
            _signal(r.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for r in runs:
            while not r.ended() and time.monotonic() < deadline:
                time.sleep(0.1)
            kill_session(r.pid)
            if r.process is not None:
                r.process.wait()
            with contextlib.suppress(StoreError):  # killed before it could record it (inside a long call)
                job = self.store.get_job(r.job_id)
                if job.status == "running" and not owner_alive(job):
                    self.store.finish(
                        r.job_id, "interrupted", error="stopped with the service (killed after its grace)"
                    )

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except StoreError as err:  # a database hiccup: try again at the next poll
                log.warning("job supervisor: %s", err)
            except Exception:  # a bug must not stop the service's runner for good
                log.exception("job supervisor: poll failed")

    def poll(self) -> None:
        with self._lock:
            jobs = {
                j.id: j
                for s in ("running", "queued", "interrupted")
                for j in self.store.list_jobs(status=s, limit=None)
            }
            self._adopt(jobs)
            for job_id, run in list(self._runs.items()):
                if run.ended():
                    del self._runs[job_id]
                    kill_session(run.pid)  # what the job's process started (Ray) ends with it
                    self._ended(run)
                    jobs.pop(job_id, None)  # its state changed: looked at again at the next poll
                else:
                    self._watch(run, jobs.get(job_id))
            if self._stop.is_set():
                return
            per_tenant = Counter(r.tenant for r in self._runs.values())
            cap = self.limits.max_running_per_tenant or self.max_jobs
            for job in self._waiting(jobs.values()):
                if len(self._runs) >= self.max_jobs:
                    break
                if job.id not in self._runs and per_tenant[job.tenant] < cap:
                    self._runs[job.id] = self._spawn(job)
                    per_tenant[job.tenant] += 1

    def _waiting(self, jobs) -> list[JobRecord]:
        waiting = [j for j in jobs if j.managed and (j.status != "running" or not owner_alive(j))]
        return sorted(waiting, key=lambda j: j.id)  # first come, first served

    def _adopt(self, jobs: dict[int, JobRecord]) -> None:
        """Watch the managed jobs a killed service left running on this host (their processes
        outlive it: each leads its own session)."""
        for job in jobs.values():
            pid = owner_pid(job)
            if not (job.managed and job.status == "running" and job.id not in self._runs and pid and pid_alive(pid)):
                continue
            spawner = _spawner(pid)
            if spawner is not None and spawner != os.getpid() and not pid_alive(spawner):
                log.info("adopting job %d (process %d)", job.id, pid)
                self._runs[job.id] = self._run(job, pid, None)

    def _watch(self, run: _Run, job: JobRecord | None) -> None:
        """Stop the run if it hangs, overruns or ignores a cancel; escalate a stop to SIGKILL."""
        now = time.monotonic()
        if run.stopping is None and job is not None and job.status not in FINISHED:
            if job.cancel_requested:
                run.cancel_seen = run.cancel_seen or now
            claimed = job.heartbeat_at is not None and job.heartbeat_at > run.spawned_at
            beat = job.heartbeat_at if claimed else run.spawned_at
            silent = (datetime.now(UTC) - beat).total_seconds()
            # before its first beat the process is importing and claiming: allowed START_GRACE_S
            allowed = (
                self.limits.heartbeat_timeout_s if claimed else max(self.limits.heartbeat_timeout_s, START_GRACE_S)
            )
            if run.cancel_seen is not None and now - run.cancel_seen > CANCEL_ESCALATE_S:
                self._stop_run(run, "cancelled")
            elif now - run.started > run.deadline_s:
                self._stop_run(run, f"it ran past its time limit of {run.deadline_s:.0f} s (budget and timeouts)")
            elif silent > allowed:
                self._stop_run(run, f"its process sent no heartbeat for {silent:.0f} s (hung or stopped)")
        if run.term_sent is not None and now - run.term_sent > STOP_GRACE_S:
            kill_session(run.pid)

    def _stop_run(self, run: _Run, reason: str) -> None:
        log.warning("stopping job %d: %s", run.job_id, reason)
        run.stopping, run.term_sent = reason, time.monotonic()
        _signal(run.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        _signal(run.pid, signal.SIGTERM)

    def _ended(self, run: _Run) -> None:
        """A job's process ended. Stopped by us: record why. Else, if the job still waits for a
        runner, it died before recording why (an import error, the OOM killer); after MAX_STARTS
        such ends in a row without a trial recorded, the job is failed with its log's last lines."""
        job_id = run.job_id
        job = self.store.get_job(job_id)
        if run.stopping is not None:
            self._starts.pop(job_id, None)
            if job.status in FINISHED:  # it finished on its own meanwhile
                return
            if run.stopping == "cancelled":
                self.store.finish(job_id, "cancelled")
            else:
                self.store.finish(job_id, "failed", error=f"stopped by the service: {run.stopping}{self._tail(job_id)}")
            return
        settled = job.status not in ("queued", "running") or (job.status == "running" and owner_alive(job))
        if settled or self._stop.is_set():  # finished, stopped, or run by another process (service)
            self._starts.pop(job_id, None)
            return
        if job.n_trials > run.trials_at_start:  # it got somewhere before it died: not a crash loop
            self._starts.pop(job_id, None)
        self._starts[job_id] = self._starts.get(job_id, 0) + 1
        if self._starts[job_id] >= MAX_STARTS:
            code = run.process.returncode if run.process is not None else "?"
            error = f"its process exited with {code} {MAX_STARTS} times before recording why{self._tail(job_id)}"
            self.store.finish(job_id, "failed", error=error)
            self._starts.pop(job_id, None)

    def _tail(self, job_id: int) -> str:
        path = self.log_dir / f"job-{job_id}.log"
        with contextlib.suppress(OSError):
            lines = path.read_text(errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
            if lines:
                return f"; the last lines of {path}:\n" + "\n".join(lines)
        return f"; see {path}"

    def _run(self, job: JobRecord, pid: int, process: subprocess.Popen | None) -> _Run:
        limit = longest_run_s(JobSpec.model_validate(job.spec), self.limits.max_wall_time_s)
        return _Run(job.id, pid, job.tenant, limit, time.monotonic(), datetime.now(UTC), process, job.n_trials)

    def _spawn(self, job: JobRecord) -> _Run:
        log.info("starting job %d", job.id)
        with open(self.log_dir / f"job-{job.id}.log", "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "nas", "resume", str(job.id), "--db", self.store.url, "--quiet", "--top", "0"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", SPAWNER_ENV: str(os.getpid())},
                start_new_session=True,  # its own session: Ray's processes stay in it, and outlive no one
            )
        return self._run(job, process.pid, process)


def _spawner(pid: int) -> int | None:
    """The pid of the service that started process ``pid`` (from its environment), if one did."""
    with contextlib.suppress(OSError, ValueError):
        for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            if entry.startswith(SPAWNER_ENV.encode() + b"="):
                return int(entry.split(b"=", 1)[1])
    return None


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
