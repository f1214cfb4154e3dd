"""The hypervolume's reference point, decided here and nowhere else, and fixed for a job's life.

At submission (``at_submission``), each objective takes, in this order: the spec's
``reference_point``; the hard constraint's bound (``max_latency_ms``, ``min_fps``,
``max_energy_mj``, ``max_params``); for a predicted accuracy, ``min_accuracy`` or chance
(1 / classes); for a plug-in evaluator's accuracy, its declared ``accuracy_floor``; for a hardware
objective, the worst over ``SAMPLES`` randomly drawn and priced architectures. An objective still
without one (a proxy score's accuracy: it has no natural floor) gets the worst of the first
``WARMUP`` scored candidates (``after_warmup``, applied by the store). ``hypervolume_of`` is the
front's hypervolume against it, None until every objective has one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from nas.objectives import ACCURACY_OBJECTIVES, OBJECTIVES, sign
from nas.pareto import hypervolume
from nas.tasks import get_task

if TYPE_CHECKING:  # the store applies the warm-up rule without loading the spec's models
    from nas.spec import JobSpec

SAMPLES = 256  # architectures priced at submission to place the hardware objectives' reference
WARMUP = 10  # scored candidates after which an objective without a reference gets one

Reference = dict[str, float | None]


def bounds(spec: JobSpec, accuracy_floor: float | None) -> dict[str, float | None]:
    """What the spec itself says about each objective's worst acceptable value."""
    c = spec.constraints
    out: dict[str, float | None] = {
        "latency_ms": c.max_latency_ms,
        "throughput_fps": c.min_fps,
        "energy_mj": c.max_energy_mj,
        "params": c.max_params,
        "area_mm2": c.max_area_mm2,
    }
    if spec.accuracy_kind() == "predicted":  # the task's metric: chance is its floor, in FP32 and INT8
        chance = get_task(spec.task).chance(spec.num_classes)
        out["accuracy"] = c.min_accuracy if c.min_accuracy is not None else chance
        out["accuracy_int8"] = chance
    else:
        out["accuracy"] = accuracy_floor
    return {**out, **{o: float(v) for o, v in spec.reference_point.items()}}


def needs_samples(spec: JobSpec, accuracy_floor: float | None) -> bool:
    known = bounds(spec, accuracy_floor)
    return any(known.get(o) is None for o in spec.objectives if o not in ACCURACY_OBJECTIVES)


def at_submission(
    spec: JobSpec, accuracy_floor: float | None, sampled: Sequence[Mapping[str, float]] = ()
) -> Reference:
    """The job's reference point; ``sampled``: the priced random architectures' metrics, needed
    when ``needs_samples``."""
    known = bounds(spec, accuracy_floor)
    reference: Reference = {}
    for o in spec.objectives:
        if known.get(o) is not None:
            reference[o] = float(known[o])
        elif o == "accuracy":
            reference[o] = None  # fixed after the warm-up
        else:
            worst = max if OBJECTIVES[o] == "minimize" else min
            reference[o] = float(worst(m[o] for m in sampled))
    return reference


def after_warmup(
    reference: Mapping[str, float | None], n_complete: int, worst: Callable[[str], float]
) -> Reference | None:
    """The reference with its missing objectives set to ``worst(objective)`` over the scored
    candidates, once ``WARMUP`` are scored; None while nothing changes."""
    missing = [o for o, v in reference.items() if v is None]
    if not missing or n_complete < WARMUP:
        return None
    return {**reference, **{o: worst(o) for o in missing}}


def hypervolume_of(
    front_losses: Sequence[Sequence[float]], reference: Mapping[str, float | None], objectives: Sequence[str]
) -> float | None:
    if any(reference.get(o) is None for o in objectives):
        return None
    return hypervolume(list(front_losses), [sign(o) * reference[o] for o in objectives])
