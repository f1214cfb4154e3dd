"""What-if across chips: a job's front re-priced on other accelerators, a network over a chip grid."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

import search_spaces
from hwmodels import AcceleratorError, accelerator_names, load_accelerator
from nas.limits import Limits
from nas.service import _schemas as schemas
from nas.service._common import JobId, LimitsDep, SettingsDep, StoreDep, Tenant, errs, job_for, plugin_space
from nas.service._policy import check_accelerators
from nas.spec import FieldError, spec_error_details
from nas.whatif import compare_job, resolve_accelerators, sweep


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    preset: str | None = Field(
        None, description="a preset network (GET /spaces lists the spaces; presets: `nas space presets`)"
    )
    arch: dict[str, Any] | None = Field(None, description="an ArchConfig, as `nas space show --json` prints it")
    base: str = Field("metis-like", description="the accelerator the grid is laid over")
    grid: dict[str, list[float]] = Field(
        description="knob -> values, e.g. {'cores': [1, 2, 4]}; at most max_variants (GET /limits) chips in all"
    )
    input_shape: tuple[PositiveInt, PositiveInt, PositiveInt] = Field(
        (3, 224, 224), description="(C, H, W); at most GET /limits' sizes"
    )
    num_classes: int = Field(1000, ge=1)
    mode: Literal["throughput", "latency"] = "throughput"
    batch: int = Field(1, ge=1)


router = APIRouter(tags=["hardware"])


@router.get("/jobs/{job_id}/compare", response_model=schemas.Comparison, responses=errs(401, 404, 422))
async def compare(
    job_id: JobId,
    tenant: Tenant,
    store: StoreDep,
    settings: SettingsDep,
    limits: LimitsDep,
    accelerators: Annotated[
        str | None,
        Query(
            max_length=2000,
            description="comma-separated names (default: every shipped one; at most max_accelerators, GET /limits)",
        ),
    ] = None,
    all: Annotated[bool, Query(description="re-price every complete candidate, not only the front")] = False,
) -> dict[str, Any]:
    """The job's front (or every complete candidate) re-priced on other accelerators: per
    accelerator, the candidates' metrics, which meet the job's constraints, and the front there."""
    if plugin_space(job_for(store, job_id, tenant)):
        raise FieldError(
            "job_id", "the job searches a plug-in space, which only its job's process imports; "
            "its operator can re-price it on the server", where="path",
        )  # fmt: skip
    names = [n.strip() for n in accelerators.split(",") if n.strip()] if accelerators else None
    over = Limits.exceeds(
        "accelerators", len(names or accelerator_names()), settings.max_accelerators, "accelerators", "compare fewer"
    )
    if over:
        raise FieldError(errors=over, where="query")
    check_accelerators(names or [], "accelerators", where="query")  # names only: nothing opened
    resolve_accelerators(names, where="query")
    return await anyio.to_thread.run_sync(
        lambda: compare_job(store, job_id, names, every_candidate=all, max_priced_layers=limits.max_priced_layers)
    )


@router.post("/hw/sweep", response_model=schemas.Sweep, responses=errs(401, 422))
async def hw_sweep(request: SweepRequest, _tenant: Tenant, settings: SettingsDep, limits: LimitsDep) -> dict[str, Any]:
    """One network priced over a grid of chip parameters laid over a shipped accelerator."""
    if (request.preset is None) == (request.arch is None):
        raise FieldError("preset", "give exactly one of preset and arch")
    check_accelerators([request.base], "base")  # names only: nothing opened
    over = limits.input_violations(request.input_shape, request.num_classes, request.batch)
    try:
        arch = (search_spaces.get_preset(request.preset) if request.preset
                else search_spaces.ArchConfig.model_validate(request.arch))  # fmt: skip
    except ValidationError as err:
        details = spec_error_details(err)  # loc: body, then the path inside the arch
        raise FieldError(errors=[(".".join(["arch", *map(str, d["loc"][1:])]), d["msg"]) for d in details]) from None
    except (KeyError, ValueError) as err:
        raise FieldError("preset", str(err)) from err
    over += limits.arch_violations(arch, "arch")
    variants = math.prod(len(v) for v in request.grid.values())
    over += Limits.exceeds("grid", variants, settings.max_variants, "chip variants", "sweep fewer values")
    if over:
        raise FieldError(errors=over)

    def run() -> dict[str, Any]:
        layers = search_spaces.lower(arch, request.input_shape, num_classes=request.num_classes)
        limits.check_priced_layers(len(layers) * variants, "grid")  # before any chip is built
        base = load_accelerator(request.base)
        try:
            rows = sweep(layers, base, request.grid, mode=request.mode, batch=request.batch)
        except AcceleratorError as err:  # a value no chip has
            raise FieldError("grid", str(err)) from err
        return {"network": arch.name, "base": base.name, "grid": request.grid, "rows": rows}

    return await anyio.to_thread.run_sync(run)
