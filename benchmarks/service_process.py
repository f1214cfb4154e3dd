"""`nas serve` in a child process for the API benchmarks (of this commit, or of an older one's
worktree), and their percentile."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx


@contextlib.contextmanager
def serving(db_url: str, data_dir: Path, *, cwd: Path | None = None) -> Iterator[str]:
    """A `nas serve` on a free local port, answering; yields its base URL, stops it (SIGTERM) after."""
    with serving_process(db_url, data_dir, cwd=cwd) as (base, _server):
        yield base


@contextlib.contextmanager
def serving_process(
    db_url: str, data_dir: Path, *, cwd: Path | None = None, extra: Sequence[str] = ()
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``serving`` with `nas serve`'s ``extra`` options; yields its base URL and its process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "nas", "serve", "--port", str(port), "--db", db_url, "--data-dir", str(data_dir)]
    server = subprocess.Popen([*command, *extra], stdout=subprocess.DEVNULL, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz").raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nas serve did not start (exit code {server.poll()})") from None
                time.sleep(0.1)
        yield base, server
    finally:
        server.terminate()
        server.wait(timeout=60)


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def checkout(ref: str, workdir: Path) -> Path:
    """A worktree of ``ref`` under ``workdir`` (made once); `python -m nas` there runs that code."""
    tree = workdir / f"baseline-{ref.replace('/', '_')}"
    if not tree.exists():
        root = Path(__file__).parent.parent
        subprocess.run(["git", "worktree", "add", "--detach", str(tree.resolve()), ref], cwd=root, check=True)
    return tree.resolve()
