"""Results: a job's Pareto front (bounded, sorted, paged, kept per job and query) and its candidates."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import Response

from nas.pricing import stored_report
from nas.service import _schemas as schemas
from nas.service._common import JobId, PageDep, PagesDep, StoreDep, Tenant, errs, job_for, plugin_space
from nas.spec import FieldError
from nas.status import CandidateStatus
from nas.store import FILTERABLE, ROW_FIELDS, parse_bounds

router = APIRouter(tags=["results"])


@router.get("/jobs/{job_id}/pareto", response_model=schemas.ParetoPage, responses=errs(401, 404, 422))
async def pareto(
    job_id: JobId,
    tenant: Tenant,
    store: StoreDep,
    pages: PagesDep,
    page: PageDep,
    where: Annotated[
        str | None, Query(max_length=2000, description="bounds, e.g. 'latency_ms<1.25,energy_mj<3'")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            description=f"one of {', '.join(FILTERABLE)} (a dense job's map / miou: its accuracy); default the first objective"
        ),
    ] = None,
    descending: Annotated[bool | None, Query(description="default: best first")] = None,
    fields: Annotated[
        str | None, Query(max_length=2000, description="comma-separated fields to return, e.g. 'id,name,accuracy'")
    ] = None,
) -> Response:
    """The feasible candidates no other feasible candidate within ``where`` dominates."""
    # the answer is a function of the query and the job's stamp: polled pages come from the cache,
    # after one small query (run here, on the event loop: cheaper than a thread hop)
    found = store.front_stamp(job_id)
    if found is None or (tenant is not None and found[0] != tenant):
        job_for(store, job_id, tenant)  # the 404 every route gives
    limit, offset = page.limit, page.offset
    key = (found[1][:2], where, sort, descending, fields, limit, offset)
    body = pages.get(key, found[1])
    if body is None:

        def answer() -> bytes:
            job = store.get_job(job_id)
            wanted = _fields(fields)
            front = store.pareto(
                job_id, where=parse_bounds(where), sort=sort, descending=descending, limit=limit, offset=offset
            )
            rows = [c.row() for c in front]
            if wanted:
                rows = [{k: r[k] for k in wanted} for r in rows]
            answer = schemas.ParetoPage(objectives=job.spec["objectives"], items=rows, limit=limit, offset=offset)
            return answer.model_dump_json(exclude_unset=True).encode()  # a row shows the fields asked for

        body = await anyio.to_thread.run_sync(answer)
        pages.put(key, found[1], body)
    return Response(body, media_type="application/json")


@router.get("/jobs/{job_id}/candidates", response_model=schemas.CandidatePage, responses=errs(401, 404))
def list_candidates(
    job_id: JobId, tenant: Tenant, store: StoreDep, page: PageDep, status: CandidateStatus | None = None
) -> schemas.CandidatePage:
    """Every distinct architecture the job drew, in trial order."""
    job_for(store, job_id, tenant)
    items = store.candidates(job_id, status=status, limit=page.limit, offset=page.offset)
    return schemas.CandidatePage(items=[schemas.candidate_out(c) for c in items], limit=page.limit, offset=page.offset)


@router.get("/jobs/{job_id}/candidates/{ref}", response_model=schemas.Candidate, responses=errs(401, 404))
def get_candidate(
    job_id: JobId,
    ref: Annotated[str, PathParam(max_length=64, description="candidate id or arch hash prefix")],
    tenant: Tenant,
    store: StoreDep,
) -> schemas.Candidate:
    """One candidate with its architecture, metrics and per-layer hardware table (none for a
    plug-in space's: its networks are lowered only by the job's own process)."""
    job = job_for(store, job_id, tenant)
    c = store.candidate(job_id, ref)
    if plugin_space(job):  # its networks lower only in the job's process (docs/service.md)
        return schemas.candidate_out(c)
    return schemas.candidate_out(c, stored_report(job, c.arch, c.hardware).to_dict()["layers"])


def _fields(text: str | None) -> list[str]:
    if not text:
        return []
    wanted = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in ROW_FIELDS]
    if unknown:
        raise FieldError("fields", f"unknown {', '.join(unknown)}; known: {', '.join(ROW_FIELDS)}", where="query")
    return list(dict.fromkeys(wanted))
