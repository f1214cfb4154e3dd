"""Jobs: submit (JSON or YAML), list, watch, cancel, resume, train, hypervolume history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import yaml
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from nas.jobs import cancel, check_can_run, check_can_train, submit
from nas.limits import Limits, check_quota
from nas.service import _schemas as schemas
from nas.service._common import (
    JobId,
    LimitsDep,
    PageDep,
    PolicyDep,
    StoreDep,
    SupervisorDep,
    Tenant,
    errs,
    hand_to_runner,
    job_for,
    wake,
)
from nas.service._policy import Policy
from nas.spec import JobSpec, SpecError, spec_error_details
from nas.status import JobStatus
from nas.store import JobRecord, Store

REQUIRED_OVER_HTTP = {
    "space": "name the space to search (GET /spaces) or give one inline",
    "budget": "give budget.trials, budget.wall_time_s or both: what the job may spend",
}
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
README_JOB = Path(__file__).resolve().parents[2] / "docs" / "examples" / "edge-classifier.yaml"


def _spec_body(example: Path) -> dict[str, Any]:
    """What POST /jobs takes (it reads its body itself, JSON or YAML), with the README's job as the
    example, read from its one file (absent from an installed package: no example then)."""
    json_body: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/JobSpec"}}
    yaml_body: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/JobSpec"}}
    if example.is_file():
        text = example.read_text()
        summary = f"the README's job ({example.parent.parent.name}/{example.parent.name}/{example.name})"
        json_body["examples"] = {"readme": {"summary": summary, "value": yaml.safe_load(text)}}
        yaml_body["examples"] = {"readme": {"summary": summary, "value": text}}
    return {
        "requestBody": {"required": True, "content": {"application/json": json_body, "application/yaml": yaml_body}}
    }


SPEC_BODY = _spec_body(README_JOB)


router = APIRouter(tags=["jobs"])


def job_views(store: Store, jobs: list[JobRecord]) -> list[schemas.Job]:
    """Jobs with their best front member: one query for the whole page, not one per job."""
    best = store.best_on_front(jobs)
    out = []
    for job in jobs:
        c, objective = best.get(job.id), job.spec["objectives"][0]
        top = c and schemas.Best(objective=objective, value=c.metrics.get(objective), candidate_id=c.id, name=c.name)
        out.append(schemas.job_out(job, top, _eta(job)))
    return out


def job_view(store: Store, job: JobRecord) -> schemas.Job:
    return job_views(store, [job])[0]


@router.post(
    "/jobs",
    status_code=201,
    response_model=schemas.Job,
    openapi_extra=SPEC_BODY,
    responses={k: schemas.ERRORS[k] for k in (401, 413, 422, 429)},
)
async def create_job(
    request: Request,
    tenant: Tenant,
    store: StoreDep,
    limits: LimitsDep,
    policy: PolicyDep,
    supervisor: SupervisorDep,
) -> schemas.Job:
    """Submit a search job: a JobSpec as JSON, or as YAML with a YAML content type. The job is
    queued and starts when a runner slot is free. Over a limit (GET /limits): 422, or 429 at
    the tenant's quota of unfinished jobs; nothing is created."""
    data = _read_spec(await request.body(), request.headers.get("content-type", ""))
    spec = _validate(data, policy, limits, tenant)
    await anyio.to_thread.run_sync(lambda: check_quota(store, limits, tenant))

    def create() -> schemas.Job:  # stores the job and wakes the runner: off the event loop
        job = submit(store, spec, tenant=tenant, managed=True)
        wake(supervisor)
        return job_view(store, job)

    return await anyio.to_thread.run_sync(create)


@router.get("/jobs", response_model=schemas.JobPage, responses={401: schemas.ERRORS[401]})
def list_jobs(
    tenant: Tenant,
    store: StoreDep,
    page: PageDep,
    status: JobStatus | None = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
) -> schemas.JobPage:
    """The jobs, newest first, optionally of one status or tag."""
    jobs = store.list_jobs(status=status, tag=tag, tenant=tenant, limit=page.limit, offset=page.offset)
    total = store.count_jobs(status=status, tag=tag, tenant=tenant)
    return schemas.JobPage(items=job_views(store, jobs), total=total, limit=page.limit, offset=page.offset)


@router.get("/jobs/{job_id}", response_model=schemas.Job, responses=errs(401, 404))
def get_job(job_id: JobId, tenant: Tenant, store: StoreDep) -> schemas.Job:
    """Status, progress counts, the best candidate so far, hypervolume, ETA and errors."""
    return job_view(store, job_for(store, job_id, tenant))


@router.post("/jobs/{job_id}/cancel", response_model=schemas.Job, responses=errs(401, 404))
def cancel_job(job_id: JobId, tenant: Tenant, store: StoreDep) -> schemas.Job:
    """Stop the job within seconds; it keeps its results and can be resumed."""
    job_for(store, job_id, tenant)
    return job_view(store, cancel(store, job_id))


@router.post("/jobs/{job_id}/resume", response_model=schemas.Job, responses=errs(401, 404, 409, 429))
def resume_job(
    job_id: JobId, tenant: Tenant, store: StoreDep, limits: LimitsDep, supervisor: SupervisorDep
) -> schemas.Job:
    """Continue an interrupted, cancelled or failed job (or one with budget left) in the service."""
    job = job_for(store, job_id, tenant)
    if job.status == JobStatus.QUEUED and job.managed:  # already waiting for the service's runner
        return job_view(store, job)
    check_can_run(job, resume=True)
    check_quota(store, limits, tenant, exclude=job_id)
    return job_view(store, hand_to_runner(store, supervisor, job_id))


@router.post("/jobs/{job_id}/train", response_model=schemas.Job, responses=errs(401, 404, 409, 422, 429))
def train_job(
    job_id: JobId,
    request: schemas.TrainRequest,
    tenant: Tenant,
    store: StoreDep,
    limits: LimitsDep,
    supervisor: SupervisorDep,
) -> schemas.Job:
    """Measure the front's best ``top`` candidates (train them with the job's recipe; their
    weights are kept for export): the service's runner continues the job to do it."""
    job = job_for(store, job_id, tenant)
    check_can_train(job)
    check_quota(store, limits, tenant, exclude=job_id)
    store.request_training(job_id, request.top)
    return job_view(store, hand_to_runner(store, supervisor, job_id))


@router.get("/jobs/{job_id}/hypervolume", response_model=list[schemas.HypervolumePoint], responses=errs(401, 404))
def hypervolume(job_id: JobId, tenant: Tenant, store: StoreDep) -> list[schemas.HypervolumePoint]:
    """The hypervolume each time the front moved."""
    job_for(store, job_id, tenant)
    return [
        schemas.HypervolumePoint(n_trials=n, hypervolume=v, front_size=f)
        for n, v, f in store.hypervolume_history(job_id)
    ]


def _read_spec(body: bytes, content_type: str) -> dict[str, Any]:
    media = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode()
        data = yaml.load(text, Loader=_NoAliases) if media in YAML_TYPES else json.loads(text)
    except RecursionError:
        raise SpecError("the body nests too deeply for a job spec") from None
    except UnicodeDecodeError as err:
        raise SpecError(f"the body is not UTF-8 text ({err.reason})") from err
    except json.JSONDecodeError as err:
        raise SpecError(
            f"the body is not valid JSON ({err.msg} at line {err.lineno}); send YAML as application/yaml"
        ) from err
    except yaml.YAMLError as err:
        raise SpecError(f"the body is not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise SpecError("the body: a job spec is a mapping of fields (name, space, objectives, ...)")
    return data


class _NoAliases(yaml.SafeLoader):
    """YAML without anchors' aliases: a few hundred bytes of nested aliases expand to gigabytes."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not taken in a job spec", mark)
        return super().compose_node(parent, index)


def _validate(data: dict[str, Any], policy: Policy, limits: Limits, tenant: str | None) -> JobSpec:
    # a request says what it searches and what it may spend: an empty body is a mistake, not a job
    missing = [(f, why) for f, why in REQUIRED_OVER_HTTP.items() if f not in data]
    if missing:
        raise SpecError(errors=missing)
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as err:
        raise RequestValidationError(spec_error_details(err)) from None
    spec = policy.check_spec(spec, tenant)  # names, never paths; plug-ins and clusters the operator's
    limits.check(spec)
    return spec


def _eta(job: JobRecord) -> float | None:
    """Seconds to the trial budget at the rate so far; None once the trials are done while trainings
    remain (``progress.trainings`` counts them: a training's minutes are not a trial's seconds)."""
    if job.status != JobStatus.RUNNING:
        return None
    budget = job.spec.get("budget", {})
    if budget.get("trials") and job.n_trials >= budget["trials"] and job.n_trained < job.trainings_planned:
        return None
    etas = []
    if budget.get("trials") and job.n_trials:
        etas.append(max(0, budget["trials"] - job.n_trials) * job.run_seconds / job.n_trials)
    if budget.get("wall_time_s"):
        etas.append(max(0.0, budget["wall_time_s"] - job.run_seconds))
    return min(etas) if etas else None
