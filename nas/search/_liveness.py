"""Whether a job's process is alive, as others see it: its owner id (host:pid), a heartbeat in the
store, and the processes it started; and asking that process to stop (``cancel``).

A job's process beats from a thread of its own (``Pulse``; the only writer of the heartbeat and the
time spent), so a long evaluation, a training or Ray's start-up never looks like a hang; what stops the beat is the process itself stopping (a
SIGSTOP, a deadlock, the database gone). The same thread watches for a cancel request and, if the
loop has not stopped ``CANCEL_GRACE_S`` later (it is inside a long call), interrupts it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from nas.status import JobStatus
from nas.store import JobRecord, Store, StoreError

HEARTBEAT_S = 1.0  # how often a job's process records that it is alive and looks for a cancel request
STALE_BEATS = 10  # another host's job is presumed dead after this many missed beats
CANCEL_GRACE_S = 5.0  # how long the loop has to stop on its own after a cancel request


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_pid(job: JobRecord) -> int | None:
    """The pid of the process that claimed the job, if it runs on this host."""
    if not job.owner:
        return None
    host, _, pid = job.owner.rpartition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def owner_alive(job: JobRecord) -> bool:
    """Whether the process that claimed the job still runs: checked directly on its own host, by a
    recent heartbeat elsewhere."""
    if not job.owner:
        return False
    pid = owner_pid(job)
    if pid is not None:
        return pid_alive(pid)
    if job.heartbeat_at is None:
        return False
    return (datetime.now(UTC) - job.heartbeat_at).total_seconds() < STALE_BEATS * HEARTBEAT_S


def cancel(store: Store, job_id: int) -> JobRecord:
    """Ask the process running the job to stop; a job nobody runs is marked cancelled at once."""
    job = store.get_job(job_id)
    if JobStatus(job.status).finished:
        return job
    job = store.request_cancel(job_id)
    if job.status != "running" or not owner_alive(job):
        job = store.finish(job_id, "cancelled")
    return job


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    return False


def session_pids(sid: int) -> list[int]:
    """Every live process of session ``sid`` (Linux; empty elsewhere). A job's process leads a
    session of its own, and Ray's processes (some in process groups of their own) stay in it."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[3]) == sid and fields[0] != "Z":  # fields after the name: state, ppid, pgrp, session
                pids.append(int(stat.parent.name))
    return pids


def kill_session(sid: int) -> int:
    """SIGKILL every process of session ``sid`` (a stopped one is killed too); returns how many."""
    pids = session_pids(sid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


class Pulse:
    """The job process's heartbeat thread; ``cancelled`` is set once a cancel request is seen."""

    def __init__(self, store: Store, job_id: int, owner: str) -> None:
        self.store, self.job_id, self.owner = store, job_id, owner
        self.spent: Callable[[], tuple[float | None, float | None]] | None = None  # run and eval seconds so far
        self.cancelled = threading.Event()
        self._stop = threading.Event()
        self._settled = threading.Event()  # the run is wrapping up: never interrupt it now
        self._thread = threading.Thread(target=self._beat, name=f"nas-pulse-{job_id}", daemon=True)

    def __enter__(self) -> Pulse:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5 * HEARTBEAT_S)

    def settle(self) -> None:
        """From now on the run only records its end and stops its workers: not to be interrupted."""
        self._settled.set()

    def _beat(self) -> None:
        seen_at, interrupted = None, False
        while not self._stop.wait(HEARTBEAT_S):
            run_s, eval_s = self.spent() if self.spent else (None, None)
            try:
                cancel = self.store.heartbeat(self.job_id, self.owner, run_seconds=run_s, eval_seconds=eval_s)
            except StoreError:  # the database hiccuped: beat again next time
                continue
            if cancel and seen_at is None:
                seen_at = time.monotonic()
                self.cancelled.set()
            late = seen_at is not None and time.monotonic() - seen_at > CANCEL_GRACE_S
            if late and not interrupted and not self._settled.is_set():
                _interrupt_main()  # the loop is inside a long call: stop it there
                interrupted = True


def _interrupt_main() -> None:
    """Raise in the main thread, even inside a blocking call: a real signal sent to that thread
    interrupts the call (``_thread.interrupt_main`` only sets a flag). SIGINT raises
    KeyboardInterrupt; `nas run` makes SIGTERM do the same. With neither Python's to handle, the
    loop stops at its next heartbeat, and the service's supervisor stops a job that does not."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if callable(signal.getsignal(sig)):
            signal.pthread_kill(threading.main_thread().ident, sig)
            return
