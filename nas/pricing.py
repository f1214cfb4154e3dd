"""The cheap half of a trial: price the candidate on the accelerator and judge its hard
constraints (``nas.verdict.judge``), before anything is built or scored. Free of torch, Ray and the
search loop: job control (``nas.jobs``) prices with it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hwmodels import (
    Accelerator,
    AcceleratorError,
    ChipConfig,
    CostReport,
    MappingPolicy,
    area_mm2,
    chip_variant,
    estimate,
    load_accelerator,
)
from nas.plugins import Arch, Space
from nas.spec import JobSpec, SpecError
from nas.store import JobRecord
from nas.verdict import Excess, Verdict, judge


@dataclass(frozen=True)
class Priced:
    metrics: dict[str, float]  # the hardware metrics of nas.objectives.METRICS
    deployable: bool
    hardware: dict[str, Any]  # the cost report's summary, stored with the candidate
    verdict: Verdict  # before scoring: infeasible, or feasible (status None) and to be evaluated
    chip: dict[str, float] = field(default_factory=dict)  # co-design: the searched knobs' values

    @property
    def constraints(self) -> Excess:
        """Every active hard constraint -> its relative excess (<= 0: satisfied)."""
        return self.verdict.excess

    @property
    def violations(self) -> Excess:
        return self.verdict.violations

    @property
    def feasible(self) -> bool:
        return self.verdict.status is None


def resolve_accelerator(spec: JobSpec) -> Accelerator:
    """The job's chip (co-design: the base), every searched knob's choices checked on it."""
    field_name = "accelerator" if isinstance(spec.accelerator, str) else "accelerator.base"
    try:
        base = load_accelerator(spec.accelerator_name)
    except (KeyError, ValueError) as err:
        raise SpecError(field_name, f"{err}") from err
    for knob, choices in spec.chip_search.items():
        for choice in choices:
            try:
                chip_variant(base, {knob: choice})
            except AcceleratorError as err:
                raise SpecError(f"accelerator.search.{knob}", f"{choice} is not a valid choice ({err})") from err
    return base


class ChipChoice:
    """The chips a job prices on: its accelerator, or in a co-design job one variant of it per
    combination of the searched knobs (each built once), sampled by the trial with the network."""

    def __init__(self, base: Accelerator, search: dict[str, tuple[float, ...]]) -> None:
        self.base, self.search = base, search
        self._variants: dict[tuple, Accelerator] = {}

    def sample(self, trial: Any) -> dict[str, float]:
        return {knob: trial.suggest_categorical(f"chip.{knob}", list(choices)) for knob, choices in self.search.items()}

    def accelerator(self, chip: dict[str, float]) -> Accelerator:
        key = tuple(chip.items())
        if key not in self._variants:
            self._variants[key] = chip_variant(self.base, chip)
        return self._variants[key]


def candidate_key(arch_hash: str, chip: dict[str, float]) -> str:
    """A candidate's identity: its network's hash, or in a co-design job the network and its chip."""
    if not chip:
        return arch_hash
    return hashlib.sha256(f"{arch_hash}|{json.dumps(chip, sort_keys=True)}".encode()).hexdigest()


def chip_label(chip: dict[str, float]) -> str:
    return ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in chip.items())


def accelerator_to_json(acc: Accelerator) -> dict[str, Any]:
    return {"chip": acc.chip.model_dump(mode="json"), "mapping": acc.mapping.model_dump(mode="json")}


def accelerator_from_json(data: dict[str, Any]) -> Accelerator:
    return Accelerator(ChipConfig.model_validate(data["chip"]), MappingPolicy.model_validate(data["mapping"]))


def candidate_accelerator(job: JobRecord, hardware: dict[str, Any]) -> Accelerator:
    """The chip a stored candidate was priced on: the job's stored one, with the candidate's
    searched knobs laid over it in a co-design job."""
    return chip_variant(accelerator_from_json(job.accelerator), hardware.get("chip") or {})


def stored_report(job: JobRecord, arch_json: str, hardware: dict[str, Any] | None = None) -> CostReport:
    """A stored candidate's full cost report, per-layer table included: a pure function of its arch,
    its chip (``hardware``, the stored summary) and the job's stored accelerator, so it is rebuilt
    (about a millisecond), not stored."""
    from nas.plugins import resolve_space

    spec = JobSpec.model_validate(job.spec)
    space = resolve_space(spec)
    layers = space.lower(space.arch_from_json(arch_json), spec.input_shape, spec.num_classes)
    return estimate(layers, candidate_accelerator(job, hardware or {}), mode=spec.mode, batch=spec.batch)


def price(space: Space, arch: Arch, spec: JobSpec, accelerator: Accelerator, chip: dict | None = None) -> Priced:
    """``arch`` priced on ``accelerator`` (in a co-design job, the variant with the knobs ``chip``)."""
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
        "area_mm2": area_mm2(accelerator.chip),
    }
    hardware = report.to_dict(layers=False)
    for key in (*metrics, "deployable"):  # the columns hold these; the summary keeps the rest
        hardware.pop(key, None)
    if chip:
        hardware["chip"] = dict(chip)
    verdict = judge(spec.constraints, metrics, report.deployable)
    return Priced(metrics, report.deployable, hardware, verdict, dict(chip or {}))
