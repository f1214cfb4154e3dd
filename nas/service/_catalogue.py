"""The service and its catalogue: liveness, limits, the shipped accelerators and search spaces."""

from __future__ import annotations

from fastapi import APIRouter

from hwmodels import accelerator_names, load_accelerator
from nas.service import _schemas as schemas
from nas.service._common import (
    ANONYMOUS,
    LimitsDep,
    OptionalTenant,
    ServiceDep,
    SettingsDep,
    StoreDep,
    SupervisorDep,
    Tenant,
    errs,
)
from nas.store import NotFoundError, Store
from search_spaces import get_space, space_names

router = APIRouter()


@router.get("/healthz", response_model=schemas.Health, response_model_exclude_none=True, tags=["service"])
def healthz(
    caller: OptionalTenant, store: StoreDep, settings: SettingsDep, supervisor: SupervisorDep, service: ServiceDep
) -> schemas.Health:
    """Liveness: answers without a token, and then says only that the service is up; a caller
    with a token (or any, with auth off) also gets the version and its own running jobs."""
    if caller is ANONYMOUS:
        return schemas.Health(status="ok")
    running = supervisor.running() if supervisor else []
    if caller is not None:
        running = [j for j in running if _tenant_of(store, j) == caller]
    return schemas.Health(status="ok", version=service.version, auth=settings.auth, jobs_running=running)


@router.get("/limits", response_model=schemas.Limits, tags=["service"], responses=errs(401))
def limits(_tenant: Tenant, limits: LimitsDep, settings: SettingsDep) -> schemas.Limits:
    """What one job and one request may ask for here, and the quotas on jobs per tenant."""
    return schemas.Limits(**limits.public(), **settings.request_limits())


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


def _tenant_of(store: Store, job_id: int) -> str | None:
    try:
        return store.get_job(job_id).tenant
    except NotFoundError:
        return None
