"""Exports: a candidate as a zip of PyTorch, TorchScript, ONNX and ExportedProgram files with its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from nas.export import choose_candidate, export_archive
from nas.service import _schemas as schemas
from nas.service._common import JobId, Service, Tenant, errs, export_for, job_for
from nas.store import NotFoundError


def router(service: Service) -> APIRouter:
    router = APIRouter()
    store = service.store

    @router.post(
        "/jobs/{job_id}/export",
        status_code=201,
        response_model=schemas.ExportOut,
        tags=["export"],
        responses=errs(401, 404, 422),
    )
    def export(job_id: JobId, request: schemas.ExportRequest, tenant: Tenant) -> schemas.ExportOut:
        """Export a candidate (or the best under ``where``) as a zip: arch.json, state_dict,
        TorchScript, ONNX, ExportedProgram and a model card. Runs in the request (seconds; minutes with training)."""
        job = job_for(store, job_id, tenant)
        c = choose_candidate(store, job.id, request.candidate, where=request.where, sort=request.sort)
        record = export_archive(
            store, job, c, service.export_dir,
            formats=request.formats, train_steps=request.train_steps, train_batch=request.train_batch,
        )  # fmt: skip
        return _export_out(record)

    @router.get(
        "/exports/{export_id}",
        tags=["export"],
        responses={200: {"content": {"application/zip": {}}}, **errs(401, 404)},
    )
    def get_export(export_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], tenant: Tenant) -> FileResponse:
        """The export's zip."""
        record = export_for(store, export_id, tenant)
        path = Path(record.path)
        if not path.is_file():
            raise NotFoundError(f"export {export_id}: its file {path.name} is gone from the service's data folder")
        return FileResponse(path, media_type="application/zip", filename=path.name)

    @router.get(
        "/exports/{export_id}/card", response_model=schemas.ExportOut, tags=["export"], responses=errs(401, 404)
    )
    def get_export_card(export_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], tenant: Tenant) -> schemas.ExportOut:
        """The export's files and model card."""
        return _export_out(export_for(store, export_id, tenant))

    return router


def _export_out(record) -> schemas.ExportOut:
    return schemas.ExportOut(
        id=record.id,
        job_id=record.job_id,
        candidate_id=record.candidate_id,
        url=f"/exports/{record.id}",
        files=record.card.get("files", {}),
        card=record.card,
        created_at=record.created_at,
    )
