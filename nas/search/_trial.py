"""One trial's verdict, in one place: its hard constraints (an ordered name -> excess mapping), the
text of its violations, the values Optuna is told, and ``settle``, which writes the trial to the
store and then tells Optuna the same values and constraints, by name (recording comes before
telling: see nas.search._runner)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.objectives import values
from nas.spec import Constraints
from nas.status import CandidateStatus
from nas.store import CandidateIn, CandidateRecord, Store

Excess = dict[str, float]  # constraint name -> relative excess over its bound (<= 0: satisfied)


def constraint_names(c: Constraints) -> tuple[str, ...]:
    """The job's active hard constraints, in the order every trial stores and tells them."""
    bounds = {
        "max_latency_ms": c.max_latency_ms,
        "min_fps": c.min_fps,
        "max_energy_mj": c.max_energy_mj,
        "max_params": c.max_params,
        "max_weight_mib": c.max_weight_mib,
        "deployable_only": c.deployable_only or None,
        "min_accuracy": c.min_accuracy,
        "max_area_mm2": c.max_area_mm2,  # last: older jobs' stored constraint lists keep their order
    }
    return tuple(name for name, bound in bounds.items() if bound is not None)


def constraint_excess(c: Constraints, m: Mapping[str, Any], deployable: bool) -> Excess:
    """Each active constraint as a relative excess, value / bound - 1 (<= 0 is satisfied), so that
    samplers summing violations weigh milliseconds and millijoules alike. ``min_accuracy`` is 0
    (not violated) until the candidate is scored."""
    accuracy = m.get("accuracy")
    excess = {
        "max_latency_ms": lambda: m["latency_ms"] / c.max_latency_ms - 1,
        "min_fps": lambda: c.min_fps / max(m["throughput_fps"], 1e-12) - 1,
        "max_energy_mj": lambda: m["energy_mj"] / c.max_energy_mj - 1,
        "max_params": lambda: m["params"] / c.max_params - 1,
        "max_weight_mib": lambda: m["weight_mib"] / c.max_weight_mib - 1,
        "max_area_mm2": lambda: (m["area_mm2"] / c.max_area_mm2 - 1) if m.get("area_mm2") is not None else 1.0,
        "deployable_only": lambda: -1.0 if deployable else 1.0,
        "min_accuracy": lambda: c.min_accuracy / max(accuracy, 1e-12) - 1 if accuracy is not None else 0.0,
    }
    out = {name: excess[name]() for name in constraint_names(c)}
    return {k: (v if math.isfinite(v) else 1e9) for k, v in out.items()}


def violations(excess: Mapping[str, float]) -> Excess:
    """The violated constraints and by how much (0.25: 25 % over its bound)."""
    return {name: round(v, 6) for name, v in excess.items() if v > 0}


def describe_violations(violated: Mapping[str, float]) -> str:
    parts = [
        "not deployable on the accelerator" if name == "deployable_only" else f"{name} exceeded by {v:.1%}"
        for name, v in violated.items()
    ]
    return "violates: " + "; ".join(parts)


def told_values(
    metrics: Mapping[str, Any], status: str, objectives: tuple[str, ...], worst_accuracy: float | None
) -> list[float] | None:
    """What Optuna hears: the objectives, or None for a failed evaluation. An infeasible candidate
    has no accuracy; it is told the worst seen so far (samplers rank it by its violations, which
    come with it)."""
    if status == CandidateStatus.FAILED:
        return None
    if status == CandidateStatus.INFEASIBLE:
        metrics = {**metrics, "accuracy": worst_accuracy if worst_accuracy is not None else 0.0}
    return values(dict(metrics), objectives)


def named(constraints: Mapping[str, float] | list[float] | None, names: tuple[str, ...]) -> Excess | None:
    """A stored trial's constraints by name (rows written before they were named hold a list in
    ``constraint_names`` order)."""
    if constraints is None or isinstance(constraints, Mapping):
        return dict(constraints) if constraints is not None else None
    return dict(zip(names, constraints, strict=True))


def tell(study: optuna.Study, trial: optuna.Trial, told: list[float] | None, constraints: Mapping | None) -> None:
    if told is None:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        return
    for name, value in (constraints or {}).items():
        trial.set_constraint(name, value)
    study.tell(trial, told, skip_if_finished=True)


def settle(
    store: Store,
    study: optuna.Study,
    job_id: int,
    trial: optuna.Trial,
    told: list[float] | None,
    constraints: Excess | None,
    *,
    candidate: CandidateIn | None = None,
    duplicate_of: int | None = None,
) -> CandidateRecord:
    """Write the trial (a new candidate, or a duplicate of one), then tell Optuna; returns the
    candidate as the store holds it."""
    record = store.record(
        job_id, trial.number, candidate=candidate, duplicate_of=duplicate_of, values=told, constraints=constraints
    )
    tell(study, trial, told, constraints)
    return record
