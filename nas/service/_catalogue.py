"""The service and its catalogue: liveness, limits, the shipped accelerators and search spaces."""

from __future__ import annotations

from fastapi import APIRouter

from hwmodels import accelerator_names, load_accelerator
from nas.service import _schemas as schemas
from nas.service._common import Service, Tenant, errs
from search_spaces import get_space, space_names


def router(service: Service) -> APIRouter:
    router = APIRouter()
    store = service.store

    @router.get("/healthz", response_model=schemas.Health, tags=["service"])
    def healthz() -> schemas.Health:
        """Liveness: answers without a token."""
        running = service.supervisor.running() if service.supervisor else []
        return schemas.Health(
            status="ok", version=service.version, database=store.safe_url, auth=service.auth, jobs_running=running
        )

    @router.get("/limits", response_model=schemas.Limits, tags=["service"], responses=errs(401))
    def limits(_tenant: Tenant) -> schemas.Limits:
        """What one job may ask for here, and the quotas on jobs per tenant."""
        return schemas.Limits(**service.limits.public())

    @router.get("/accelerators", response_model=list[schemas.Accelerator], tags=["catalogue"], responses=errs(401))
    def accelerators(_tenant: Tenant) -> list[schemas.Accelerator]:
        """The shipped accelerator configurations a spec may name."""
        out = []
        for name in accelerator_names():
            chip = load_accelerator(name).chip
            out.append(
                schemas.Accelerator(
                    name=name, description=chip.description, cores=chip.cores, clock_mhz=chip.clock_mhz,
                    imc_array=f"{chip.imc.rows}x{chip.imc.cols}", default_mapping=chip.default_mapping,
                )
            )  # fmt: skip
        return out

    @router.get("/spaces", response_model=list[schemas.Space], tags=["catalogue"], responses=errs(401))
    def spaces(_tenant: Tenant) -> list[schemas.Space]:
        """The registered search spaces a spec may name."""
        out = []
        for name in space_names():
            space = get_space(name)
            size = space.size()
            out.append(
                schemas.Space(
                    name=name, description=space.description, size=size if size < 2**53 else None,
                    definition=space.model_dump(mode="json"),
                )
            )  # fmt: skip
        return out

    return router
