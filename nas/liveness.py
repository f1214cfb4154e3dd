"""Whether a job's (or an export's) process is alive, as others see it: its owner id (host:pid),
a heartbeat in the store, and the processes it started (asking a job to stop is ``nas.jobs.cancel``).

Such a process beats from a thread of its own (``Heartbeat``; a job's is ``Pulse``, the only
writer of its heartbeat and time spent), so a long evaluation, a training or Ray's start-up never
looks like a hang; what stops the beat is the process itself stopping (a SIGSTOP, a deadlock, the
database gone). A job's pulse also watches for a cancel request and, if the loop has not stopped
``CANCEL_GRACE_S`` later (it is inside a long call), interrupts it.
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
from typing import Any, Self

from nas.store import ExportRecord, JobRecord, Store, StoreError

HEARTBEAT_S = 1.0  # how often a job's process records that it is alive and looks for a cancel request
STALE_BEATS = 10  # another host's job is presumed dead after this many missed beats
CANCEL_GRACE_S = 5.0  # how long the loop has to stop on its own after a cancel request


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_pid(job: JobRecord | ExportRecord) -> int | None:
    """The pid of the process that claimed the job (or export), if it runs on this host."""
    if not job.owner:
        return None
    host, _, pid = job.owner.rpartition(":")
    return int(pid) if host == socket.gethostname() and pid.isdigit() else None


def owner_alive(job: JobRecord | ExportRecord) -> bool:
    """Whether the process that claimed the job (or export) still runs: checked directly on its own host, by a
    recent heartbeat elsewhere."""
    if not job.owner:
        return False
    pid = owner_pid(job)
    if pid is not None:
        return pid_alive(pid)
    if job.heartbeat_at is None:
        return False
    return (datetime.now(UTC) - job.heartbeat_at).total_seconds() < STALE_BEATS * HEARTBEAT_S


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


class Heartbeat:
    """A thread that calls ``beat`` every ``HEARTBEAT_S`` while the ``with`` block runs: a process's
    sign of life to whoever supervises it, whatever its main thread is inside. A beat the database
    refuses is tried again at the next; ``heard`` gets each beat's answer."""

    def __init__(self, beat: Callable[[], Any], name: str) -> None:
        self._beat_once = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5 * HEARTBEAT_S)

    def heard(self, answer: Any) -> None:
        """What to do with a beat's answer (nothing here)."""

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                answer = self._beat_once()
            except StoreError:  # the database hiccuped: beat again next time
                continue
            self.heard(answer)


class Pulse(Heartbeat):
    """The job process's heartbeat (with the time spent); ``cancelled`` is set once a cancel
    request is seen, and a loop that has not stopped ``CANCEL_GRACE_S`` later is interrupted."""

    def __init__(self, store: Store, job_id: int, owner: str) -> None:
        super().__init__(self._record, f"nas-pulse-{job_id}")
        self.store, self.job_id, self.owner = store, job_id, owner
        self.spent: Callable[[], tuple[float | None, float | None]] | None = None  # run and eval seconds so far
        self.cancelled = threading.Event()
        self._settled = threading.Event()  # the run is wrapping up: never interrupt it now
        self._seen_at: float | None = None
        self._interrupted = False

    def settle(self) -> None:
        """From now on the run only records its end and stops its workers: not to be interrupted."""
        self._settled.set()

    def _record(self) -> bool:
        run_s, eval_s = self.spent() if self.spent else (None, None)
        return self.store.heartbeat(self.job_id, self.owner, run_seconds=run_s, eval_seconds=eval_s)

    def heard(self, cancel: bool) -> None:
        if cancel and self._seen_at is None:
            self._seen_at = time.monotonic()
            self.cancelled.set()
        late = self._seen_at is not None and time.monotonic() - self._seen_at > CANCEL_GRACE_S
        if late and not self._interrupted and not self._settled.is_set():
            _interrupt_main()  # the loop is inside a long call: stop it there
            self._interrupted = True


def _interrupt_main() -> None:
    """Raise in the main thread, even inside a blocking call: a real signal sent to that thread
    interrupts the call (``_thread.interrupt_main`` only sets a flag). SIGINT raises
    KeyboardInterrupt; `nas run` makes SIGTERM do the same. With neither Python's to handle, the
    loop stops at its next heartbeat, and the service's supervisor stops a job that does not."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if callable(signal.getsignal(sig)):
            signal.pthread_kill(threading.main_thread().ident, sig)
            return
