"""What-if across chips: a job's networks re-priced on other accelerators (how its front moves), and
one network priced over a grid of chip parameters. Both price with ``hwmodels.estimate_many``
(one vectorised call per mapping policy); nothing is stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwmodels import (
    Accelerator,
    AcceleratorError,
    Layer,
    Totals,
    accelerator_names,
    area_mm2,
    chip_grid,
    estimate,
    estimate_many,
    load_accelerator,
)
from nas.limits import MAX_ACCELERATORS
from nas.objectives import loss_vector
from nas.pareto import non_dominated
from nas.pricing import accelerator_from_json, candidate_accelerator
from nas.spec import FieldError, JobSpec
from nas.store import CandidateRecord, Store
from nas.verdict import judge, meets_front_bounds

MAX_COMPARED = 20_000  # candidates one comparison re-prices (every complete one of a large job is more)


def resolve_accelerators(
    names: Sequence[str] | None, field: str = "accelerators", where: str = "body"
) -> list[Accelerator]:
    """Shipped names or YAML paths (default: every shipped accelerator); FieldError names a bad one."""
    names = list(names) if names else accelerator_names()
    if len(names) > MAX_ACCELERATORS:
        raise FieldError(field, f"{len(names)} accelerators is over the limit of {MAX_ACCELERATORS}; compare fewer",
                         where=where)  # fmt: skip
    out = []
    for name in names:
        try:
            out.append(load_accelerator(name))
        except AcceleratorError as err:
            raise FieldError(field, str(err), where=where) from err
    return out


def _price_all(networks: Sequence[Sequence[Layer]], accs: Sequence[Accelerator], spec_mode: str, batch: int):
    """estimate_many over accelerators of any mapping policies: grouped by policy, in input order."""
    out: list[list[Any]] = [[None] * len(accs) for _ in networks]
    groups: dict[str, list[int]] = {}
    for i, acc in enumerate(accs):
        groups.setdefault(acc.mapping.model_dump_json(), []).append(i)
    for indices in groups.values():
        priced = estimate_many(networks, [accs[i] for i in indices], mode=spec_mode, batch=batch)
        for row, totals in zip(out, priced, strict=True):
            for i, t in zip(indices, totals, strict=True):
                row[i] = t
    return out


def compare_job(
    store: Store,
    job_id: int,
    accelerators: Sequence[str] | None = None,
    *,
    every_candidate: bool = False,
    max_priced_layers: int | None = None,
) -> dict[str, Any]:
    """The job's front (or every complete candidate) re-priced on each accelerator: per accelerator,
    each candidate's metrics, whether it meets the job's constraints there, and the front there.
    ``max_priced_layers`` bounds layers x chips: past it, FieldError before any pricing."""
    from nas.plugins import resolve_space

    job = store.get_job(job_id)
    spec = JobSpec.model_validate(job.spec)
    own = accelerator_from_json(job.accelerator)  # first, as "NAME (the job's)"
    codesign = bool(spec.chip_search)  # then the job's own column is each candidate on its own chip
    # the job's fixed chip is not listed again among the others (a co-design's base is another column)
    accs = [own, *(a for a in resolve_accelerators(accelerators) if codesign or a != own)]
    if every_candidate and job.n_complete > MAX_COMPARED:  # refused before anything is loaded
        raise FieldError(
            "all",
            f"the job has {job.n_complete:,} complete candidates, over {MAX_COMPARED:,}; compare its front",
            where="query",
        )
    members = store.candidates(job_id, status="complete") if every_candidate else store.pareto(job_id)
    space = resolve_space(spec)
    networks, layers = [], 0
    for c in members:  # lowered one by one: refusing an over-large comparison costs at most the limit
        networks.append(space.lower(space.arch_from_json(c.arch), spec.input_shape, spec.num_classes))
        layers += len(networks[-1]) * len(accs)
        if max_priced_layers is not None and layers > max_priced_layers:
            raise FieldError(
                "all" if every_candidate else "accelerators",
                f"over {max_priced_layers:,} layers x chips to price (max_priced_layers, GET /limits); "
                "compare fewer accelerators or the front only",
                where="query",
            )
    priced = _price_all(networks, accs, spec.mode, spec.batch)
    if codesign:
        for row, c, layers in zip(priced, members, networks, strict=True):
            row[0] = Totals.of(
                estimate(layers, candidate_accelerator(job, c.hardware), mode=spec.mode, batch=spec.batch)
            )
    original_front = {c.id for c in store.pareto(job_id)}
    result = {"job": job_id, "objectives": list(spec.objectives), "candidates": "all" if every_candidate else "front",
              "accelerators": []}  # fmt: skip
    for a, acc in enumerate(accs):
        areas = (
            [c.metrics.get("area_mm2") for c in members] if codesign and not a else [area_mm2(acc.chip)] * len(members)
        )
        rows = [_row(c, priced[i][a], spec, areas[i]) for i, c in enumerate(members)]
        feasible = [r for r in rows if r["feasible"]]
        if feasible:
            losses = np.array([loss_vector(r, spec.objectives) for r in feasible])
            for r, on in zip(feasible, non_dominated(losses), strict=True):
                r["on_front"] = bool(on)
        front = [r for r in rows if r.get("on_front")]
        result["accelerators"].append({
            "accelerator": acc.name if a else "each candidate's own chip (the job's)" if codesign else f"{acc.name} (the job's)",
            "area_mm2": None if codesign and not a else area_mm2(acc.chip),
            "feasible": len(feasible),
            "front": len(front),
            "kept_from_job_front": sum(1 for r in front if r["id"] in original_front),
            "best": {m: _best(front, m) for m in ("latency_ms", "energy_mj", "throughput_fps") if front},
            "rows": rows,
        })  # fmt: skip
    return result


def _row(c: CandidateRecord, t, spec: JobSpec, area: float | None) -> dict[str, Any]:
    metrics = {**c.metrics, "latency_ms": t.latency_ms, "throughput_fps": t.throughput_fps, "energy_mj": t.energy_mj,
               "power_w": t.power_w, "utilisation": t.utilisation, "area_mm2": area}  # fmt: skip
    verdict = judge(spec.constraints, metrics, t.deployable, scored=metrics.get("accuracy") is not None)
    violated = verdict.violations
    # on a front only as the job's own front admits it: every objective known, the scored bounds met
    known = all(metrics.get(o) is not None for o in spec.objectives) and meets_front_bounds(
        spec.constraints.model_dump(), metrics
    )
    return {**{o: metrics.get(o) for o in spec.objectives},
            "id": c.id, "name": c.name, "accuracy": c.metrics.get("accuracy"), "params": c.metrics.get("params"),
            "latency_ms": t.latency_ms, "throughput_fps": t.throughput_fps, "energy_mj": t.energy_mj,
            "power_w": t.power_w, "area_mm2": area, "bound": t.bound, "deployable": t.deployable,
            "feasible": not violated and known, "violations": violated, "on_front": False}  # fmt: skip


def _best(rows: list[dict[str, Any]], metric: str) -> float:
    values = [r[metric] for r in rows]
    return max(values) if metric == "throughput_fps" else min(values)


def sweep(
    layers: Sequence[Layer], base: Accelerator, grid: Mapping[str, Sequence[Any]], *, mode: str = "throughput",
    batch: int = 1,
) -> list[dict[str, Any]]:  # fmt: skip
    """``layers`` priced on every chip of ``grid`` laid over ``base``: one row per variant."""
    variants = chip_grid(base, grid)
    totals = estimate_many([layers], [acc for _, acc in variants], mode=mode, batch=batch)[0]
    return [
        {**changes, "accelerator": acc.name, "latency_ms": t.latency_ms, "throughput_fps": t.throughput_fps,
         "energy_mj": t.energy_mj, "power_w": t.power_w, "utilisation": t.utilisation, "bound": t.bound,
         "deployable": t.deployable, "area_mm2": area_mm2(acc.chip)}
        for (changes, acc), t in zip(variants, totals, strict=True)
    ]  # fmt: skip
