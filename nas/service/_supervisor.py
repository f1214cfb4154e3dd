"""Runs the service's jobs and exports apart from the request handlers: one process each, ``nas
resume N`` for a job, ``nas export-run N`` for an export.

A thread polls the store each ``poll_s`` and starts, up to ``max_jobs`` at once (and at most
``limits.max_running_per_tenant`` of one tenant's), in the order they were asked for: the jobs the
service manages (``managed``) that wait for a runner (queued ones, ones a stopped service
interrupted, and running ones whose process died) and the queued exports. The store stays the
truth: a process claims its job or export (compare-and-set), so two services on one database
cannot run it twice, and a restarted service picks up where the last one stopped, adopting the
processes a killed service left running on this host.

Nothing blocks the queue: a process that stops heart-beating (``limits.heartbeat_timeout_s``), runs past
its time (a job: its spec's, ``longest_run_s``; an export: ``limits.max_export_s`` and
``EXPORT_STARTUP_S``) or ignores a cancel for ``CANCEL_ESCALATE_S`` is stopped (SIGTERM, then
SIGKILL), its job or export recorded with the reason, and its slot freed. A job whose process
keeps dying before it records anything is failed with its log's last lines; an export whose process
dies is failed at once (its request is the same each time). Each process leads a session of its
own; when it ends, however it ends, every process left in that session (Ray's) is killed. Stopping
the service interrupts its jobs (SIGTERM: they record ``interrupted``) and queues its running
exports again, to be resumed or rerun by the next start.
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

from pydantic import ValidationError

from nas.limits import Limits
from nas.liveness import CANCEL_GRACE_S, kill_session, owner_alive, owner_pid, pid_alive
from nas.search._runner import longest_run_s  # the service process loads the loop anyway
from nas.spec import JobSpec
from nas.status import FINISHED, UNFINISHED_EXPORTS, ExportStatus, JobStatus
from nas.store import ExportRecord, JobRecord, Store, StoreError

log = logging.getLogger("nas.service")
STOP_GRACE_S = 20.0  # how long a job has to record its state after SIGTERM
CANCEL_ESCALATE_S = 2 * CANCEL_GRACE_S  # a cancelled job still running after this is stopped
START_GRACE_S = 120.0  # a new job process's time to import and claim its job before it must beat
MAX_STARTS = 3  # a job whose process keeps dying before it records anything is marked failed
SPAWNER_ENV = "NAS_SUPERVISOR_PID"  # in a job's process: the service that started it, to adopt it once that one is gone
LOG_TAIL_LINES = 8
EXPORT_STARTUP_S = 60.0  # an export process's time to import torch and onnx, beyond limits.max_export_s


@dataclass
class _Run:
    """A process this service watches (a job's or an export's): one it started, or one adopted
    from a killed service."""

    kind: str  # "job" | "export"
    id: int
    pid: int
    tenant: str | None
    deadline_s: float  # from ``started``
    limit_why: str  # what the deadline is made of, for the error
    started: float  # time.monotonic()
    spawned_at: datetime
    process: subprocess.Popen | None  # None: adopted (not our child)
    trials_at_start: int = 0
    cancel_seen: float | None = None
    stopping: str | None = None  # why the supervisor is stopping it
    term_sent: float | None = None

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"

    def ended(self) -> bool:
        return self.process.poll() is not None if self.process is not None else not pid_alive(self.pid)


_Key = tuple[str, int]  # (kind, id): what a run is for
_Row = JobRecord | ExportRecord


class JobSupervisor:
    def __init__(
        self,
        store: Store,
        *,
        log_dir: Path,
        max_jobs: int = 2,
        poll_s: float = 1.0,
        limits: Limits | None = None,
        export_dir: Path | None = None,
    ) -> None:
        """``max_jobs``: processes (jobs and exports) run at once; ``export_dir``: where exports'
        zips go (default: ``exports`` beside ``log_dir``, as the service lays out its data folder)."""
        if max_jobs < 1:
            raise ValueError(f"max_jobs: must be >= 1, got {max_jobs}")
        self.store, self.log_dir, self.max_jobs, self.poll_s = store, log_dir, max_jobs, poll_s
        self.export_dir = export_dir or log_dir.parent / "exports"
        self.limits = limits or Limits()
        self._runs: dict[_Key, _Run] = {}
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

    def running(self, kind: str = "job") -> list[int]:
        """The ids of the jobs (or exports) whose processes run now."""
        with self._lock:
            return sorted(i for (k, i), r in self._runs.items() if k == kind and not r.ended())

    def stop(self) -> None:
        """Stop polling and interrupt the jobs and exports this service runs; the next start
        resumes the jobs and runs the exports again."""
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
                if r.kind == "job":
                    job = self.store.get_job(r.id)
                    if job.status == JobStatus.RUNNING and not owner_alive(job):
                        self.store.finish(
                            r.id, JobStatus.INTERRUPTED, error="stopped with the service (killed after its grace)"
                        )
                elif (export := self.store.get_export(r.id)).status == ExportStatus.RUNNING and not owner_alive(export):
                    self.store.finish_export(r.id, ExportStatus.QUEUED)  # not its fault: run again by the next start

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
            rows = self._unfinished()
            self._adopt(rows)
            for key, run in list(self._runs.items()):
                if run.ended():
                    del self._runs[key]
                    kill_session(run.pid)  # what the process started (Ray) ends with it
                    self._ended(run)
                    rows.pop(key, None)  # its state changed: looked at again at the next poll
                else:
                    self._watch(run, rows.get(key))
            if self._stop.is_set():
                return
            per_tenant = Counter(r.tenant for r in self._runs.values())
            cap = self.limits.max_running_per_tenant or self.max_jobs
            for key, row in self._waiting(rows):
                if len(self._runs) >= self.max_jobs:
                    break
                if per_tenant[row.tenant] < cap:
                    self._runs[key] = self._spawn(key[0], row)
                    per_tenant[row.tenant] += 1

    def _unfinished(self) -> dict[_Key, _Row]:
        jobs = {
            ("job", j.id): j
            for s in (JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.INTERRUPTED)
            for j in self.store.list_jobs(status=s, limit=None)
        }
        exports = self.store.list_exports(status=UNFINISHED_EXPORTS, limit=None)
        return {**jobs, **{("export", e.id): e for e in exports}}

    def _waiting(self, rows: dict[_Key, _Row]) -> list[tuple[_Key, _Row]]:
        """What waits for a process, first come first served. A running export whose process is
        gone unseen (its service was killed, then it died) is failed here, not rerun."""
        waiting = []
        for key, row in rows.items():
            if key in self._runs:
                continue
            if key[0] == "job":
                if row.managed and (row.status != JobStatus.RUNNING or not owner_alive(row)):
                    waiting.append((key, row))
            elif row.status == ExportStatus.QUEUED:
                waiting.append((key, row))
            elif not owner_alive(row):
                error = "its process ended before it finished, while the service was down; ask for it again"
                self.store.finish_export(row.id, ExportStatus.FAILED, error=error)
        return sorted(waiting, key=lambda kr: kr[1].created_at)

    def _adopt(self, rows: dict[_Key, _Row]) -> None:
        """Watch the managed jobs and the exports a killed service left running on this host
        (their processes outlive it: each leads its own session)."""
        for key, row in rows.items():
            pid = owner_pid(row)
            managed = key[0] == "export" or row.managed
            if not (managed and row.status == "running" and key not in self._runs and pid and pid_alive(pid)):
                continue
            spawner = _spawner(pid)
            if spawner is not None and spawner != os.getpid() and not pid_alive(spawner):
                log.info("adopting %s %d (process %d)", key[0], row.id, pid)
                self._runs[key] = self._run(key[0], row, pid, None)

    def _watch(self, run: _Run, row: _Row | None) -> None:
        """Stop the run if it hangs, overruns or ignores a cancel; escalate a stop to SIGKILL.
        ``row``: its job or export while unfinished, else None."""
        now = time.monotonic()
        if run.stopping is None and row is not None:
            if run.kind == "job" and row.cancel_requested:
                run.cancel_seen = run.cancel_seen or now
            claimed = row.heartbeat_at is not None and row.heartbeat_at > run.spawned_at
            beat = row.heartbeat_at if claimed else run.spawned_at
            silent = (datetime.now(UTC) - beat).total_seconds()
            # before its first beat the process is importing and claiming: allowed START_GRACE_S
            allowed = (
                self.limits.heartbeat_timeout_s if claimed else max(self.limits.heartbeat_timeout_s, START_GRACE_S)
            )
            if run.cancel_seen is not None and now - run.cancel_seen > CANCEL_ESCALATE_S:
                self._stop_run(run, "cancelled")
            elif now - run.started > run.deadline_s:
                self._stop_run(run, f"it ran past its time limit of {run.deadline_s:.0f} s ({run.limit_why})")
            elif silent > allowed:
                self._stop_run(run, f"its process sent no heartbeat for {silent:.0f} s (hung or stopped)")
        if run.term_sent is not None and now - run.term_sent > STOP_GRACE_S:
            kill_session(run.pid)

    def _stop_run(self, run: _Run, reason: str) -> None:
        log.warning("stopping %s: %s", run, reason)
        run.stopping, run.term_sent = reason, time.monotonic()
        _signal(run.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        _signal(run.pid, signal.SIGTERM)

    def _ended(self, run: _Run) -> None:
        if run.kind == "job":
            self._job_ended(run)
        else:
            self._export_ended(run)

    def _job_ended(self, run: _Run) -> None:
        """A job's process ended. Stopped by us: record why. Else, if the job still waits for a
        runner, it died before recording why (an import error, the OOM killer); after MAX_STARTS
        such ends in a row without a trial recorded, the job is failed with its log's last lines."""
        job_id = run.id
        job = self.store.get_job(job_id)
        if run.stopping is not None:
            self._starts.pop(job_id, None)
            if job.status in FINISHED:  # it finished on its own meanwhile
                return
            if run.stopping == "cancelled":
                self.store.finish(job_id, JobStatus.CANCELLED)
            else:
                self.store.finish(
                    job_id, JobStatus.FAILED, error=f"stopped by the service: {run.stopping}{self._tail(run)}"
                )
            return
        settled = job.status not in (JobStatus.QUEUED, JobStatus.RUNNING) or (
            job.status == JobStatus.RUNNING and owner_alive(job)
        )
        if settled or self._stop.is_set():  # finished, stopped, or run by another process (service)
            self._starts.pop(job_id, None)
            return
        if job.n_trials > run.trials_at_start:  # it got somewhere before it died: not a crash loop
            self._starts.pop(job_id, None)
        self._starts[job_id] = self._starts.get(job_id, 0) + 1
        if self._starts[job_id] >= MAX_STARTS:
            code = run.process.returncode if run.process is not None else "?"
            error = f"its process exited with {code} {MAX_STARTS} times before recording why{self._tail(run)}"
            self.store.finish(job_id, JobStatus.FAILED, error=error)
            self._starts.pop(job_id, None)

    def _export_ended(self, run: _Run) -> None:
        """An export's process ended without recording its result (stopped by us, killed, out of
        memory): failed with the reason, never rerun. Tenants read the error: it names no path
        (the log, ``export-N.log`` in the log folder, has the rest)."""
        export = self.store.get_export(run.id)
        if export.status not in UNFINISHED_EXPORTS or self._stop.is_set():
            return  # it recorded its end, or stop() queues it again
        if export.status == ExportStatus.RUNNING and owner_alive(export):
            return  # another process (service) claimed it first and runs it
        if run.stopping is not None:
            error = f"stopped by the service: {run.stopping}"
        else:
            code = run.process.returncode if run.process is not None else None
            error = f"its process ended ({_exit_text(code)}) before recording a result"
        self.store.finish_export(run.id, ExportStatus.FAILED, error=error)

    def _tail(self, run: _Run) -> str:
        path = self.log_dir / f"{run.kind}-{run.id}.log"
        with contextlib.suppress(OSError):
            lines = path.read_text(errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
            if lines:
                return f"; the last lines of {path}:\n" + "\n".join(lines)
        return f"; see {path}"

    def _run(self, kind: str, row: _Row, pid: int, process: subprocess.Popen | None) -> _Run:
        if kind == "job":
            try:
                limit = longest_run_s(JobSpec.model_validate(row.spec), self.limits.max_wall_time_s)
            except ValidationError:  # stored under an older, looser schema: its process fails it, saying why
                limit = self.limits.max_wall_time_s
            why, trials = "budget and timeouts", row.n_trials
        else:
            limit, why, trials = self.limits.max_export_s + EXPORT_STARTUP_S, "max_export_s and start-up", 0
        return _Run(kind, row.id, pid, row.tenant, limit, why, time.monotonic(), datetime.now(UTC), process, trials)

    def _spawn(self, kind: str, row: _Row) -> _Run:
        log.info("starting %s %d", kind, row.id)
        url = self.store.url
        argv = (
            ["resume", str(row.id), "--db", url, "--quiet", "--top", "0"]
            if kind == "job"
            else ["export-run", str(row.id), "--db", url, "--out", str(self.export_dir)]
        )
        with open(self.log_dir / f"{kind}-{row.id}.log", "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "nas", *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", SPAWNER_ENV: str(os.getpid())},
                start_new_session=True,  # its own session: Ray's processes stay in it, and outlive no one
            )
        return self._run(kind, row, process.pid, process)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit status unknown: adopted"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"killed by {name}" + ("; out of memory?" if code == -signal.SIGKILL else "")
    return f"exit status {code}"


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
