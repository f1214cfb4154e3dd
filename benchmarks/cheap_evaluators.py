"""Evaluator plug-ins for the engine's benchmarks, where the evaluation must cost nothing so that
the figures measure the search itself.

- ``IRParams``: the zero-cost `params` proxy (log10 of the parameter count), read from the layer IR
  instead of a built model (the same count: tests/test_lowering.py checks IR against builder). The
  sampler benchmark's accuracy stand-in: more capacity per millisecond and per millijoule.
- ``Instant``: returns at once (a fixed pseudo-random score per architecture); the loop-overhead
  benchmark's evaluator.
"""

from __future__ import annotations

import math

from hwmodels import total_params
from search_spaces import lower


class IRParams:
    accuracy_floor = 4.0  # log10(10k parameters): below any network of the shipped spaces

    def __call__(self, arch) -> dict[str, float]:
        return {"accuracy": math.log10(total_params(lower(arch, (3, 32, 32), num_classes=10)))}


class Instant:
    accuracy_floor = 0.0

    def __call__(self, arch) -> dict[str, float]:
        return {"accuracy": int(arch.arch_hash[:8], 16) / 16**8}
