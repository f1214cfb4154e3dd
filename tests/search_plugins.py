"""Evaluator plug-ins for the search tests: deterministic, cheap, and able to fail, hang or log.

Imported by import path (``search_plugins:ToyEvaluator``) in the test process, in `nas` subprocesses
and on Ray workers, which is the plug-in protocol's real path.
"""

from __future__ import annotations

import os
import time


class ToyEvaluator:
    accuracy_floor = 0.0

    def __init__(self, *, delay_s: float = 0.0, log: str | None = None, fail_mod: int = 0, hang_mod: int = 0,
                 hang_s: float = 60.0) -> None:  # fmt: skip
        self.delay_s, self.log, self.fail_mod, self.hang_mod, self.hang_s = delay_s, log, fail_mod, hang_mod, hang_s

    def __call__(self, arch) -> dict[str, float]:
        if self.log:  # one short line per evaluation; O_APPEND keeps lines whole across processes
            fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{arch.arch_hash}\n".encode())
            os.close(fd)
        time.sleep(self.delay_s)
        h = int(arch.arch_hash[:8], 16)
        if self.fail_mod and h % self.fail_mod == 0:
            raise RuntimeError("toy failure")
        if self.hang_mod and h % self.hang_mod == 1:
            time.sleep(self.hang_s)
        return {"accuracy": (h % 997) / 997, "depth": float(sum(s.depth for s in arch.stages))}


def process_killer(**_options):
    """An evaluator whose construction kills its process outright, as the OOM killer would: the job
    is left running under a dead owner, with nothing recorded."""
    os._exit(3)


def evaluations(log) -> list[str]:
    return log.read_text().split() if log.exists() else []


def pid_recorder(*, path: str, **options):
    """A ToyEvaluator that first records which process built it (a pid a line): a plug-in named over
    HTTP must be built by the job's process, never by the service's."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    return ToyEvaluator(**options)
