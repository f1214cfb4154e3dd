"""Runs the service's jobs apart from the request handlers: one ``nas resume`` process per job.

A thread polls the store each ``poll_s`` and starts, up to ``max_jobs`` at once, the jobs the
service manages (``managed``) that wait for a runner: queued ones, ones a stopped service
interrupted, and running ones whose process died. The store stays the truth: a job's process
claims it (compare-and-set on its owner), so two services on one database cannot run it twice, and
a restarted service picks up where the last one stopped. Stopping the service stops its jobs
(SIGTERM: they record ``interrupted``), to be resumed by the next start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from nas.search._runner import _owner_alive
from nas.store import Store, StoreError

log = logging.getLogger("nas.service")
STOP_GRACE_S = 20.0  # how long a job has to record its state after SIGTERM
MAX_STARTS = 3  # a job whose process keeps dying before it records anything is marked failed


class JobSupervisor:
    def __init__(self, store: Store, *, log_dir: Path, max_jobs: int = 2, poll_s: float = 1.0) -> None:
        if max_jobs < 1:
            raise ValueError(f"max_jobs: must be >= 1, got {max_jobs}")
        self.store, self.log_dir, self.max_jobs, self.poll_s = store, log_dir, max_jobs, poll_s
        self._children: dict[int, subprocess.Popen] = {}
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
            return [j for j, p in self._children.items() if p.poll() is None]

    def stop(self) -> None:
        """Stop polling and interrupt the jobs this service started; they resume at the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            children = list(self._children.values())
        for p in children:
            if p.poll() is None:
                p.terminate()
        for p in children:
            try:
                p.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                p.kill()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except StoreError as err:  # a database hiccup: try again at the next poll
                log.warning("job supervisor: %s", err)

    def poll(self) -> None:
        with self._lock:
            for job_id, p in list(self._children.items()):
                if p.poll() is not None:
                    del self._children[job_id]
                    self._ended(job_id, p.returncode)
            free = self.max_jobs - len(self._children)
            if free <= 0 or self._stop.is_set():
                return
            for job in self._waiting():
                if free <= 0:
                    break
                if job.id not in self._children:
                    self._children[job.id] = self._spawn(job.id)
                    free -= 1

    def _waiting(self):
        jobs = [
            *self.store.list_jobs(status="queued", limit=None),
            *self.store.list_jobs(status="interrupted", limit=None),
            *self.store.list_jobs(status="running", limit=None),
        ]
        waiting = [j for j in jobs if j.managed and (j.status != "running" or not _owner_alive(j))]
        return sorted(waiting, key=lambda j: j.id)  # first come, first served

    def _ended(self, job_id: int, returncode: int) -> None:
        """A job's process ended: if the job still waits for a runner, it died before recording
        why (an import error, the OOM killer); after MAX_STARTS such ends the job is failed."""
        job = self.store.get_job(job_id)
        settled = job.status not in ("queued", "running") or (job.status == "running" and _owner_alive(job))
        if settled or self._stop.is_set():  # finished, stopped, or run by another process (service)
            self._starts.pop(job_id, None)
            return
        self._starts[job_id] = self._starts.get(job_id, 0) + 1
        if self._starts[job_id] >= MAX_STARTS:
            log_path = self.log_dir / f"job-{job_id}.log"
            self.store.finish(
                job_id, "failed", error=f"its process exited with {returncode} {MAX_STARTS} times; see {log_path}"
            )
            self._starts.pop(job_id, None)

    def _spawn(self, job_id: int) -> subprocess.Popen:
        log.info("starting job %d", job_id)
        with open(self.log_dir / f"job-{job_id}.log", "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "nas", "resume", str(job_id), "--db", self.store.url, "--quiet", "--top", "0"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # a Ctrl-C at the service's terminal reaches the service, which stops them
            )
