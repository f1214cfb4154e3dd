"""The cheap half of a trial: price the candidate on the accelerator and check the hard
constraints, before anything is built or scored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwmodels import Accelerator, ChipConfig, CostReport, MappingPolicy, estimate, load_accelerator
from nas.plugins import Arch, Space
from nas.search._trial import Excess, constraint_excess, violations
from nas.spec import JobSpec, SpecError
from nas.store import JobRecord


@dataclass(frozen=True)
class Priced:
    metrics: dict[str, float]  # the hardware metrics of nas.objectives.METRICS
    deployable: bool
    hardware: dict[str, Any]  # the cost report's summary, stored with the candidate
    constraints: Excess  # every active hard constraint -> its relative excess (<= 0: satisfied)

    @property
    def violations(self) -> Excess:
        return violations(self.constraints)

    @property
    def feasible(self) -> bool:
        return not self.violations


def resolve_accelerator(spec: JobSpec) -> Accelerator:
    try:
        return load_accelerator(spec.accelerator)
    except (KeyError, ValueError) as err:
        raise SpecError("accelerator", f"{err}") from err


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
    return Priced(metrics, report.deployable, hardware, constraint_excess(spec.constraints, metrics, report.deployable))
