"""Exports: a candidate as a zip of its state_dict, ExportedProgram and ONNX files (TorchScript on
request) with its model card. The request only checks and queues it; the supervisor runs it in a process of its own
(``nas export-run``), under the slots, time limit and quota of jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from nas.export import check_request, choose_candidate
from nas.limits import Limits, check_quota
from nas.service import _schemas as schemas
from nas.service._common import (
    JobId,
    LimitsDep,
    SettingsDep,
    StoreDep,
    SupervisorDep,
    Tenant,
    errs,
    export_for,
    job_for,
    wake,
)
from nas.service._redact import redact
from nas.spec import FieldError, JobSpec
from nas.status import ExportStatus
from nas.store import NotFoundError

ExportId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]


router = APIRouter(tags=["export"])


@router.post(
    "/jobs/{job_id}/export", status_code=202, response_model=schemas.ExportOut, responses=errs(401, 404, 422, 429)
)
def export(
    job_id: JobId,
    request: schemas.ExportRequest,
    tenant: Tenant,
    store: StoreDep,
    limits: LimitsDep,
    settings: SettingsDep,
    supervisor: SupervisorDep,
) -> schemas.ExportOut:
    """Queue an export of a candidate (or of the best under ``where``): arch.json, state_dict,
    ExportedProgram, ONNX (TorchScript when ``formats`` asks) and a model card, zipped. The service runs it in a process
    of its own (seconds; minutes with training; stopped past max_export_s): poll
    ``card_url`` until its status is complete (or failed), then download ``url``."""
    job = job_for(store, job_id, tenant)
    over = Limits.exceeds("train_steps", request.train_steps, settings.max_train_steps, "steps", "train fewer")
    if over:
        raise FieldError(errors=over)
    c = choose_candidate(store, job.id, request.candidate, where=request.where, sort=request.sort)
    formats = check_request(
        JobSpec.model_validate(job.spec), c, formats=request.formats, train_steps=request.train_steps,
        train_batch=request.train_batch, trained=store.has_weights(job.id, c.id), limits=limits,
        allow_untrained=request.allow_untrained, int8=request.int8,
        has_int8=request.int8 and store.has_int8_model(job.id, c.id),
    )  # fmt: skip
    check_quota(store, limits, tenant)
    asked = {"formats": list(formats), "train_steps": request.train_steps, "train_batch": request.train_batch,
             "allow_untrained": request.allow_untrained, "int8": request.int8}  # fmt: skip
    record = store.create_export(job.id, c.id, request=asked, tenant=job.tenant)
    wake(supervisor)
    return schemas.export_out(record)


@router.get(
    "/exports/{export_id}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the zip",
        },
        **errs(401, 404, 409),
    },
)
def get_export(export_id: ExportId, tenant: Tenant, store: StoreDep) -> FileResponse:
    """The export's zip, once complete (409 before, and for a failed one)."""
    record = export_for(store, export_id, tenant)
    if record.status == ExportStatus.FAILED:
        raise HTTPException(409, f"export {export_id} failed, no zip to download: {redact(record.error)}")
    if record.status != ExportStatus.COMPLETE:
        detail = f"export {export_id} is {record.status}: poll {schemas.card_url(record)} until it is complete"
        raise HTTPException(409, detail)
    path = Path(record.path)
    if not path.is_file():
        raise NotFoundError(f"export {export_id}: its file {path.name} is gone from the service's data folder")
    return FileResponse(path, media_type="application/zip", filename=path.name)


@router.get("/exports/{export_id}/card", response_model=schemas.ExportOut, responses=errs(401, 404))
def get_export_card(export_id: ExportId, tenant: Tenant, store: StoreDep) -> schemas.ExportOut:
    """The export's status and, once complete, its files and model card."""
    return schemas.export_out(export_for(store, export_id, tenant))
