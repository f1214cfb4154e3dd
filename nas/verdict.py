"""A candidate's verdict, decided in one place (``judge``): feasible (to be evaluated), complete,
infeasible with its violations, failed, or a duplicate of an earlier candidate; with the hard
constraints as an ordered name -> relative excess mapping and the values Optuna is told.

Pricing (``nas.pricing``), the search loop (``nas.search``) and the what-if re-pricing
(``nas.whatif``) all ask ``judge``; nothing else compares a metric with a bound. Free of torch,
Ray and Optuna: job control imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nas.objectives import ACCURACY_OBJECTIVES, values
from nas.spec import Constraints
from nas.status import CandidateStatus

Excess = dict[str, float]  # constraint name -> relative excess over its bound (<= 0: satisfied)
DUPLICATE = "duplicate"  # a trial's outcome when it proposed a candidate already recorded
# known only once the candidate is scored (and moved by every refit of the predictor); the rest
# when it is priced. constraint -> (the metric it bounds, the comparison a front member passes)
SCORED_CONSTRAINTS = ("min_accuracy", "max_int8_drop")


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
        "max_area_mm2": c.max_area_mm2,  # after the others: older jobs' stored constraint lists keep their order
        "max_int8_drop": c.max_int8_drop,
    }
    return tuple(name for name, bound in bounds.items() if bound is not None)


CONSTRAINT_METRIC = {  # constraint -> the metric it bounds
    "max_latency_ms": "latency_ms",
    "min_fps": "throughput_fps",
    "max_energy_mj": "energy_mj",
    "max_params": "params",
    "max_weight_mib": "weight_mib",
    "max_area_mm2": "area_mm2",
    "min_accuracy": "accuracy",
    "max_int8_drop": "int8_drop",
}


def front_bounds(c: Mapping[str, Any]) -> dict[str, tuple[str, str, float]]:
    """The scored constraints a front member must meet, from a job's stored constraints: name ->
    (metric, comparison, bound). A member's accuracy and INT8 drop move with every refit, so the
    front is drawn under these from the current values; one whose value is unknown yet is not on it."""
    return {
        name: (CONSTRAINT_METRIC[name], ">=" if name.startswith("min_") else "<=", float(c[name]))
        for name in SCORED_CONSTRAINTS
        if c.get(name) is not None
    }


def meets_front_bounds(c: Mapping[str, Any], metrics: Mapping[str, Any]) -> bool:
    """Whether a complete candidate's current values meet its job's ``front_bounds``."""
    for metric, op, bound in front_bounds(c).values():
        value = metrics.get(metric)
        if value is None or not (value >= bound if op == ">=" else value <= bound):
            return False
    return True


def constraint_excess(c: Constraints, m: Mapping[str, Any], deployable: bool) -> Excess:
    """Each active constraint as a relative excess, value / bound - 1 (<= 0 is satisfied), so that
    samplers summing violations weigh milliseconds and millijoules alike. The scored constraints
    (``min_accuracy``, ``max_int8_drop``) are 0 (not violated) until their value is known."""
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
        # a drop may be 0 or negative: its excess is in points over the bound, per point of bound (at least 0.01)
        "max_int8_drop": lambda: (
            (m["int8_drop"] - c.max_int8_drop) / max(c.max_int8_drop, 0.01) if m.get("int8_drop") is not None else 0.0
        ),
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


@dataclass(frozen=True)
class Verdict:
    """What a trial's candidate is. ``status``: ``None`` while it is priced and feasible but not yet
    scored (to be evaluated), else complete | infeasible | failed | duplicate."""

    status: str | None
    excess: Excess  # every active constraint -> relative excess: what Optuna is told with the values
    failure: str | None = None  # why it is infeasible or failed, in words
    original: str | None = None  # a duplicate's: the status of the candidate it repeats

    @property
    def violations(self) -> Excess:
        """Every violated constraint known so far (``min_accuracy`` once scored)."""
        return violations(self.excess)

    @property
    def rejected(self) -> Excess:
        """The violations that reject a candidate before it is built (stored with the candidate):
        those of the priced constraints; a scored candidate under ``min_accuracy`` stays complete
        and off the front, since a predicted accuracy may still change."""
        return {k: v for k, v in self.violations.items() if k not in SCORED_CONSTRAINTS}

    @property
    def feasible(self) -> bool:
        """No violated constraint (``min_accuracy`` included once scored)."""
        return not self.violations

    def told(self, metrics: Mapping[str, Any], objectives: Sequence[str], worst_accuracy: float | None):
        """What Optuna hears: the objectives, or None for a failed evaluation. An infeasible
        candidate has no accuracy; it is told the worst seen so far (samplers rank it by its
        violations, which come with it)."""
        return told_values(metrics, self.original or self.status, objectives, worst_accuracy)


def judge(
    c: Constraints,
    metrics: Mapping[str, Any],
    deployable: bool,
    *,
    scored: bool = False,
    failure: str | None = None,
) -> Verdict:
    """The verdict on a candidate with ``metrics`` (hardware always; ``accuracy`` once scored):
    infeasible if a priced constraint is violated (it is never built); else failed if its
    evaluation failed (``failure``); else complete once ``scored``; else feasible, to be evaluated."""
    excess = constraint_excess(c, metrics, deployable)
    verdict = Verdict(None, excess)
    if verdict.rejected:
        return Verdict(CandidateStatus.INFEASIBLE.value, excess, describe_violations(verdict.rejected))
    if failure is not None:
        return Verdict(CandidateStatus.FAILED.value, excess, failure)
    if scored:
        return Verdict(CandidateStatus.COMPLETE.value, excess)
    return verdict


def duplicate(original_status: str, excess: Excess | None) -> Verdict:
    """A later trial of a recorded candidate: told what the original was told (its metrics, its
    status, its constraints)."""
    return Verdict(DUPLICATE, dict(excess or {}), original=original_status)


def told_values(
    metrics: Mapping[str, Any], status: str | None, objectives: Sequence[str], worst_accuracy: float | None
) -> list[float] | None:
    """What Optuna hears for a candidate of ``status``: see ``Verdict.told``."""
    if status == CandidateStatus.FAILED:
        return None
    if status == CandidateStatus.INFEASIBLE:  # never scored: its accuracies are the worst seen
        worst = worst_accuracy if worst_accuracy is not None else 0.0
        metrics = {**metrics, **dict.fromkeys(ACCURACY_OBJECTIVES, worst)}
    return values(dict(metrics), objectives)


_UNITS = {
    "int8_drop": " (0-1)",
    "latency_ms": " ms",
    "throughput_fps": " fps",
    "energy_mj": " mJ",
    "weight_mib": " MiB",
    "area_mm2": " mm2",
}


def constraint_report(bounds: Mapping[str, Any], candidates: Sequence[tuple[Mapping[str, float], Mapping[str, Any]]]):
    """Which constraints rejected how many of a job's candidates, and how far to loosen each:
    ``candidates`` are (stored violations, metrics) of the complete and infeasible ones. A
    constraint's ``admit_at`` is the loosest bound that admits one candidate it alone rejected
    (None: every candidate it rejects breaks another constraint too). The scored constraints
    (``front_bounds``) are read from the current values, which a refit may still move. Returned as
    the job record keeps it (``JobRecord.constraint_report``), with one line of advice per constraint."""
    scored = front_bounds(bounds)
    rejected_by: list[set[str]] = []
    for stored, metrics in candidates:
        names = set(stored)
        for name, (metric, _, _) in scored.items():
            if metrics.get(metric) is not None and not meets_front_bounds({name: bounds[name]}, metrics):
                names.add(name)
        rejected_by.append(names)
    report: dict[str, Any] = {"candidates": len(candidates), "feasible": sum(not r for r in rejected_by)}
    per: dict[str, dict[str, Any]] = {}
    for name in sorted({n for r in rejected_by for n in r}):
        metric = CONSTRAINT_METRIC.get(name)
        over = [m for r, (_, m) in zip(rejected_by, candidates, strict=True) if name in r]
        alone = [m for r, (_, m) in zip(rejected_by, candidates, strict=True) if r == {name}]
        entry: dict[str, Any] = {"violated": len(over), "bound": bounds.get(name)}
        if metric is not None:
            pick = max if name.startswith("min_") else min
            values = [m[metric] for m in over if m.get(metric) is not None]
            admitted = [m[metric] for m in alone if m.get(metric) is not None]
            entry["best"] = pick(values) if values else None
            entry["admit_at"] = pick(admitted) if admitted else None
        per[name] = entry
    report["constraints"] = per
    report["advice"] = [_advice(name, e, len(candidates)) for name, e in per.items()]
    return report


def _advice(name: str, e: Mapping[str, Any], total: int) -> str:
    if name == "deployable_only":
        return (
            f"deployable_only: {e['violated']} of {total} candidates use ops the accelerator cannot run;"
            " set deployable_only: false to price them anyway (they run partly on the host)"
        )
    unit = _UNITS.get(CONSTRAINT_METRIC[name], "")
    side = "under" if name.startswith("min_") else "over"
    text = f"{name}: {e['violated']} of {total} candidates {side}"
    if e.get("best") is not None:
        text += f", the best at {e['best']:.4g}{unit}"
    if e.get("admit_at") is not None:
        text += f": loosen to {e['admit_at']:.4g} to admit one"
    else:
        text += ": each also breaks another constraint; loosen those together"
    return text
