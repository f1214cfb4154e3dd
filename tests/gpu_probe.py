"""An evaluator plug-in that reports what GPUs its Ray worker was given (tests/test_gpu_workers.py)."""

from __future__ import annotations

import os


def device_probe(**_options):
    return _probe


def _probe(arch) -> dict[str, float]:
    """Scores are floats: ``cuda_visible`` is CUDA_VISIBLE_DEVICES's first id, -1 if unset, -2 if empty."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    shown = -1.0 if visible is None else -2.0 if visible == "" else float(visible.split(",")[0])
    return {"accuracy": 0.5, "cuda_visible": shown, "gpus_seen": float(len(visible.split(","))) if visible else 0.0}
