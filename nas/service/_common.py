"""What every route shares: the service's state, the caller's tenant, path and query types, and
the visibility rule (another tenant's job answers 404, as an unknown one does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from nas.limits import Limits
from nas.service import _schemas as schemas
from nas.service._cache import PageCache
from nas.service._policy import Policy
from nas.service._supervisor import JobSupervisor
from nas.status import CANDIDATE_STATUSES, JOB_STATUSES
from nas.store import ExportRecord, JobRecord, NotFoundError, Store

MAX_PAGE = 1000


@dataclass
class Service:
    store: Store
    auth: bool
    data_dir: Path
    supervisor: JobSupervisor | None
    limits: Limits
    policy: Policy = field(default_factory=Policy)
    pages: PageCache = field(default_factory=PageCache)
    version: str = field(default_factory=lambda: _version())


def _version() -> str:
    try:
        return metadata.version("imc-nas")
    except metadata.PackageNotFoundError:
        return "unknown"


_bearer = HTTPBearer(auto_error=False, description="a token from `nas token create --tenant NAME`")


async def _tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str | None:
    """The caller's tenant: None with auth off; with auth on, a valid token's or a 401. Async: a
    thread hop would cost more than the one indexed lookup."""
    service: Service = request.app.state.service
    if not service.auth:
        return None
    tenant = service.store.tenant_of(credentials.credentials) if credentials else None
    if tenant is None:
        raise HTTPException(
            401, "a valid token is needed: `Authorization: Bearer <token>`", {"WWW-Authenticate": "Bearer"}
        )
    return tenant


ANONYMOUS = "\0anonymous"  # with auth on, a caller without a valid token (only /healthz answers one)


async def _optional_tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str | None:
    """The caller's tenant as ``_tenant`` gives it, or ``ANONYMOUS`` instead of a 401."""
    try:
        return await _tenant(request, credentials)
    except HTTPException:
        return ANONYMOUS


Tenant = Annotated[str | None, Depends(_tenant)]
OptionalTenant = Annotated[str | None, Depends(_optional_tenant)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
JobId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
JobStatus = Literal[JOB_STATUSES]  # type: ignore[valid-type]
CandidateStatus = Literal[CANDIDATE_STATUSES]  # type: ignore[valid-type]


def job_for(store: Store, job_id: int, tenant: str | None) -> JobRecord:
    """The job, if the caller may see it; an unknown id and another tenant's answer alike."""
    try:
        job = store.get_job(job_id)
    except NotFoundError:
        job = None
    if job is None or (tenant is not None and job.tenant != tenant):
        raise NotFoundError(f"job {job_id} is not among your jobs; GET /jobs lists them")
    return job


def plugin_space(job: JobRecord) -> bool:
    """Whether the job searches a plug-in space: code the service never imports (its job's process
    does), so the routes that would lower its networks here answer without them."""
    space = job.spec.get("space")
    return isinstance(space, dict) and "plugin" in space


def export_for(store: Store, export_id: int, tenant: str | None) -> ExportRecord:
    try:
        record = store.get_export(export_id)
        job_for(store, record.job_id, tenant)
    except NotFoundError:
        raise NotFoundError(f"export {export_id} is not among your exports") from None
    return record


def errs(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: schemas.ERRORS[c] for c in codes}
