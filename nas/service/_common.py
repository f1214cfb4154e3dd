"""What every route shares, injected with FastAPI's ``Depends`` (a test swaps any of them with
``app.dependency_overrides[get_store] = ...``): the store, the operator's settings, limits and
policy, the runner, the caller's tenant and a page of a list; and the rules routes apply alike:
the visibility rule (another tenant's job answers 404, as an unknown one does), handing a job to
the runner, and whether a job can train."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from nas.limits import Limits
from nas.service import _schemas as schemas
from nas.service._cache import PageCache
from nas.service._policy import Policy
from nas.service._settings import Settings
from nas.service._supervisor import JobSupervisor
from nas.spec import FieldError
from nas.store import ExportRecord, JobRecord, NotFoundError, Store


@dataclass
class Service:
    """What ``create_app`` built (``app.state.service``); routes reach it only through the getters below."""

    store: Store
    settings: Settings
    supervisor: JobSupervisor | None
    pages: PageCache = field(default_factory=PageCache)
    version: str = field(default_factory=lambda: _version())


def _version() -> str:
    try:
        return metadata.version("imc-nas")
    except metadata.PackageNotFoundError:
        return "unknown"


# ---- the dependencies (async: read on the event loop, no thread hop) -------------------------------


async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_store(service: Annotated[Service, Depends(get_service)]) -> Store:
    return service.store


async def get_settings(service: Annotated[Service, Depends(get_service)]) -> Settings:
    return service.settings


async def get_limits(settings: Annotated[Settings, Depends(get_settings)]) -> Limits:
    return settings.limits


async def get_policy(settings: Annotated[Settings, Depends(get_settings)]) -> Policy:
    return settings.policy


async def get_supervisor(service: Annotated[Service, Depends(get_service)]) -> JobSupervisor | None:
    return service.supervisor


async def get_pages(service: Annotated[Service, Depends(get_service)]) -> PageCache:
    return service.pages


ServiceDep = Annotated[Service, Depends(get_service)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SupervisorDep = Annotated[JobSupervisor | None, Depends(get_supervisor)]
PagesDep = Annotated[PageCache, Depends(get_pages)]

_bearer = HTTPBearer(auto_error=False, description="a token from `nas token create --tenant NAME`")


async def get_tenant(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    store: StoreDep,
    settings: SettingsDep,
) -> str | None:
    """The caller's tenant: None with auth off; with auth on, a valid token's or a 401. Async: a
    thread hop would cost more than the one indexed lookup."""
    if not settings.auth:
        return None
    tenant = store.tenant_of(credentials.credentials) if credentials else None
    if tenant is None:
        raise HTTPException(
            401, "a valid token is needed: `Authorization: Bearer <token>`", {"WWW-Authenticate": "Bearer"}
        )
    return tenant


ANONYMOUS = "\0anonymous"  # with auth on, a caller without a valid token (only /healthz answers one)


async def get_optional_tenant(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    store: StoreDep,
    settings: SettingsDep,
) -> str | None:
    """The caller's tenant as ``get_tenant`` gives it, or ``ANONYMOUS`` instead of a 401."""
    try:
        return await get_tenant(credentials, store, settings)
    except HTTPException:
        return ANONYMOUS


Tenant = Annotated[str | None, Depends(get_tenant)]
OptionalTenant = Annotated[str | None, Depends(get_optional_tenant)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def get_page(
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, description="page size, at most max_page (GET /limits)")] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Page:
    """A page of a list, its size bounded by the operator's ``max_page``."""
    over = Limits.exceeds("limit", limit, settings.max_page, "items a page", "page through with offset")
    if over:
        raise FieldError(errors=over, where="query")
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(get_page)]
JobId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


# ---- the rules routes share -----------------------------------------------------------------------


def job_for(store: Store, job_id: int, tenant: str | None) -> JobRecord:
    """The job, if the caller may see it; an unknown id and another tenant's answer alike."""
    try:
        job = store.get_job(job_id)
    except NotFoundError:
        job = None
    if job is None or (tenant is not None and job.tenant != tenant):
        raise NotFoundError(f"job {job_id} is not among your jobs; GET /jobs lists them")
    return job


def export_for(store: Store, export_id: int, tenant: str | None) -> ExportRecord:
    try:
        record = store.get_export(export_id)
        job_for(store, record.job_id, tenant)
    except NotFoundError:
        raise NotFoundError(f"export {export_id} is not among your exports") from None
    return record


def plugin_space(job: JobRecord) -> bool:
    """Whether the job searches a plug-in space: code the service never imports (its job's process
    does), so the routes that would lower its networks here answer without them."""
    space = job.spec.get("space")
    return isinstance(space, dict) and "plugin" in space


def wake(supervisor: JobSupervisor | None) -> None:
    """Tell the runner there is work (a job or export queued) now rather than at its next poll."""
    if supervisor is not None:
        supervisor.wake()


def hand_to_runner(store: Store, supervisor: JobSupervisor | None, job_id: int) -> JobRecord:
    """Queue the job for the service's runner (it becomes ``managed``) and wake the runner: how
    resume and train hand a job over."""
    job = store.requeue(job_id)
    wake(supervisor)
    return job


def errs(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: schemas.ERRORS[c] for c in codes}
