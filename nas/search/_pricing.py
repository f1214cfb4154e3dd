"""The cheap half of a trial: price the candidate on the accelerator and check the hard
constraints, before anything is built or scored."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hwmodels import Accelerator, ChipConfig, CostReport, MappingPolicy, estimate, load_accelerator
from nas.plugins import Arch, Space
from nas.spec import Constraints, JobSpec, SpecError
from nas.store import JobRecord


@dataclass(frozen=True)
class Priced:
    metrics: dict[str, float]  # the hardware metrics of nas.objectives.METRICS
    deployable: bool
    hardware: dict[str, Any]  # the cost report's summary, stored with the candidate
    violations: dict[str, float]  # constraint -> relative excess over its bound (0.25: 25 % over)
    constraint_values: list[float]  # told to Optuna: <= 0 is satisfied, one per active constraint

    @property
    def feasible(self) -> bool:
        return not self.violations


def resolve_accelerator(spec: JobSpec) -> Accelerator:
    try:
        return load_accelerator(spec.accelerator)
    except (KeyError, ValueError) as err:
        raise SpecError(f"accelerator: {err}") from err


def accelerator_to_json(acc: Accelerator) -> dict[str, Any]:
    return {"chip": acc.chip.model_dump(mode="json"), "mapping": acc.mapping.model_dump(mode="json")}


def accelerator_from_json(data: dict[str, Any]) -> Accelerator:
    return Accelerator(ChipConfig.model_validate(data["chip"]), MappingPolicy.model_validate(data["mapping"]))


def stored_report(job: JobRecord, arch_json: str) -> CostReport:
    """A stored candidate's full cost report, per-layer table included: a pure function of its arch
    and the job's stored accelerator, so it is rebuilt (about a millisecond), not stored."""
    from nas.plugins import resolve_space

    spec = JobSpec.model_validate(job.spec)
    space = resolve_space(spec)
    layers = space.lower(space.arch_from_json(arch_json), spec.input_shape, spec.num_classes)
    return estimate(layers, accelerator_from_json(job.accelerator), mode=spec.mode, batch=spec.batch)


def price(space: Space, arch: Arch, spec: JobSpec, accelerator: Accelerator) -> Priced:
    layers = space.lower(arch, spec.input_shape, spec.num_classes)
    report = estimate(layers, accelerator, mode=spec.mode, batch=spec.batch)
    metrics = {
        "latency_ms": report.latency_ms,
        "throughput_fps": report.throughput_fps,
        "energy_mj": report.energy_mj,
        "power_w": report.power_w,
        "params": report.params,
        "weight_mib": report.weight_bytes / 2**20,
        "macs": float(report.macs),
        "utilisation": report.utilisation,
    }
    hardware = report.to_dict(layers=False)
    for key in (*metrics, "deployable"):  # the columns hold these; the summary keeps the rest
        hardware.pop(key, None)
    values = _constraint_values(spec.constraints, metrics, report.deployable)
    violations = {name: round(v, 6) for name, v in values.items() if v > 0}
    return Priced(metrics, report.deployable, hardware, violations, list(values.values()))


def _constraint_values(c: Constraints, m: dict[str, float], deployable: bool) -> dict[str, float]:
    """Each active constraint as a relative excess: value / bound - 1 (<= 0 is satisfied), so that
    samplers summing violations weigh milliseconds and millijoules alike."""
    values = {}
    if c.max_latency_ms is not None:
        values["max_latency_ms"] = m["latency_ms"] / c.max_latency_ms - 1
    if c.min_fps is not None:
        values["min_fps"] = c.min_fps / max(m["throughput_fps"], 1e-12) - 1
    if c.max_energy_mj is not None:
        values["max_energy_mj"] = m["energy_mj"] / c.max_energy_mj - 1
    if c.max_params is not None:
        values["max_params"] = m["params"] / c.max_params - 1
    if c.max_weight_mib is not None:
        values["max_weight_mib"] = m["weight_mib"] / c.max_weight_mib - 1
    if c.deployable_only:
        values["deployable_only"] = -1.0 if deployable else 1.0
    if c.min_accuracy is not None:  # unknown (0: not violated) until the candidate is scored
        accuracy = m.get("accuracy")
        values["min_accuracy"] = c.min_accuracy / max(accuracy, 1e-12) - 1 if accuracy is not None else 0.0
    return {k: (v if math.isfinite(v) else 1e9) for k, v in values.items()}
