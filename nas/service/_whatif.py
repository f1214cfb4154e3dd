"""What-if across chips: a job's front re-priced on other accelerators, a network over a chip grid."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

import search_spaces
from hwmodels import MAX_VARIANTS, load_accelerator
from nas.service._common import JobId, Service, Tenant, errs, job_for
from nas.spec import FieldError
from nas.whatif import MAX_ACCELERATORS, compare_job, resolve_accelerators, sweep


class SweepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preset: str | None = Field(
        None, description="a preset network (GET /spaces lists the spaces; presets: `nas space presets`)"
    )
    arch: dict[str, Any] | None = Field(None, description="an ArchConfig, as `nas space show --json` prints it")
    base: str = Field("metis-like", description="the accelerator the grid is laid over")
    grid: dict[str, list[float]] = Field(
        description=f"knob -> values, e.g. {{'cores': [1, 2, 4]}}; <= {MAX_VARIANTS} variants"
    )
    input_shape: tuple[int, int, int] = (3, 224, 224)
    num_classes: int = Field(1000, ge=1, le=100_000)
    mode: Literal["throughput", "latency"] = "throughput"
    batch: int = Field(1, ge=1, le=1024)


def router(service: Service) -> APIRouter:
    router = APIRouter()
    store = service.store

    @router.get("/jobs/{job_id}/compare", tags=["hardware"], responses=errs(401, 404, 422))
    async def compare(
        job_id: JobId,
        tenant: Tenant,
        accelerators: Annotated[
            str | None,
            Query(
                max_length=2000,
                description=f"comma-separated names (default: every shipped one; <= {MAX_ACCELERATORS})",
            ),
        ] = None,
        all: Annotated[bool, Query(description="re-price every complete candidate, not only the front")] = False,
    ) -> dict[str, Any]:
        """The job's front (or every complete candidate) re-priced on other accelerators: per
        accelerator, the candidates' metrics, which meet the job's constraints, and the front there."""
        job_for(store, job_id, tenant)
        names = [n.strip() for n in accelerators.split(",") if n.strip()] if accelerators else None
        if names and any("/" in n or n.endswith(".yaml") for n in names):
            raise FieldError(
                "accelerators", "name shipped accelerators (GET /accelerators); paths are the CLI's", where="query"
            )
        resolve_accelerators(names, where="query")  # a bad name: 422 before any pricing
        return await anyio.to_thread.run_sync(lambda: compare_job(store, job_id, names, every_candidate=all))

    @router.post("/hw/sweep", tags=["hardware"], responses=errs(401, 422))
    async def hw_sweep(request: SweepRequest, _tenant: Tenant) -> dict[str, Any]:
        """One network priced over a grid of chip parameters laid over a shipped accelerator."""
        if (request.preset is None) == (request.arch is None):
            raise FieldError("preset", "give exactly one of preset and arch")
        if request.input_shape[1] > 1024 or request.input_shape[2] > 1024 or request.input_shape[0] > 64:
            raise FieldError("input_shape", "over the limit of 64 channels and 1024 px a side")
        if "/" in request.base or request.base.endswith(".yaml"):
            raise FieldError("base", "name a shipped accelerator (GET /accelerators)")

        def run() -> dict[str, Any]:
            try:
                arch = (search_spaces.get_preset(request.preset) if request.preset
                        else search_spaces.ArchConfig.model_validate(request.arch))  # fmt: skip
            except (KeyError, ValueError) as err:
                raise FieldError("preset" if request.preset else "arch", str(err)) from err
            layers = search_spaces.lower(arch, request.input_shape, num_classes=request.num_classes)
            base = load_accelerator(request.base)
            rows = sweep(layers, base, request.grid, mode=request.mode, batch=request.batch)
            return {"network": arch.name, "base": base.name, "grid": request.grid, "rows": rows}

        return await anyio.to_thread.run_sync(run)

    return router
