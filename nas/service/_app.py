"""The REST API (FastAPI): jobs, Pareto queries, candidates, exports, and the dashboard at ``/``.

Handlers only read and write the store; jobs run in processes the ``JobSupervisor`` starts, so a
query answers in milliseconds while a search runs. With auth on, every route but ``/healthz``
needs a bearer token, and a tenant sees only its own jobs: another tenant's id answers 404, as an
unknown one does.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.to_thread
import yaml
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from hwmodels import AcceleratorError, accelerator_names, load_accelerator
from nas.export import choose_candidate, export_archive
from nas.limits import Limits, QuotaError, check_quota
from nas.objectives import ACCURACY_KINDS
from nas.search import JobStateError, cancel, check_can_run, submit
from nas.search._pricing import stored_report
from nas.service import _schemas as schemas
from nas.service._cache import PageCache
from nas.service._limits import BodyLimit
from nas.service._supervisor import JobSupervisor
from nas.spec import FieldError, JobSpec, PluginRef, SpecError, spec_error_details
from nas.store import (
    CANDIDATE_STATUSES,
    FILTERABLE,
    JOB_STATUSES,
    ROW_FIELDS,
    JobRecord,
    NotFoundError,
    Store,
    StoreError,
    parse_bounds,
)
from search_spaces import SpaceError, UnknownNameError, get_space, space_names

MAX_BODY_BYTES = 1 << 20  # a job spec is a few kB; an inline space a few more
MAX_PAGE = 1000
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
SPEC_BODY = {  # POST /jobs reads its body itself (JSON or YAML): this is what the schema says it takes
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/JobSpec"},
                "examples": {
                    "demo": {
                        "summary": "the README's demo job",
                        "value": {
                            "name": "edge-classifier",
                            "space": "metaformer-tiny",
                            "objectives": ["accuracy", "latency_ms", "energy_mj"],
                            "constraints": {"min_fps": 800, "max_energy_mj": 3.0, "max_params": 8_000_000},
                            "budget": {"trials": 200, "wall_time_s": 240},
                        },
                    }
                },
            },
            "application/yaml": {"schema": {"$ref": "#/components/schemas/JobSpec"}},
        },
    }
}


@dataclass
class Service:
    store: Store
    auth: bool
    data_dir: Path
    supervisor: JobSupervisor | None
    limits: Limits
    allow_plugins: tuple[str, ...] = ()
    pages: PageCache = field(default_factory=PageCache)
    version: str = field(default_factory=lambda: _version())

    @property
    def export_dir(self) -> Path:
        return self.data_dir / "exports"


def _version() -> str:
    try:
        return metadata.version("imc-nas")
    except metadata.PackageNotFoundError:
        return "unknown"


def create_app(
    store: Store | str | None = None,
    *,
    auth: bool = False,
    data_dir: str | Path = "nas-service",
    max_jobs: int = 2,
    run_jobs: bool = True,
    allow_plugins: tuple[str, ...] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
    limits: Limits | None = None,
) -> FastAPI:
    """The service over ``store``. ``run_jobs`` False serves the API without running jobs (they
    stay queued for a service that does); ``allow_plugins`` lists the module prefixes a submitted
    spec may name as plug-ins (none by default: a plug-in is code the service would import);
    ``limits`` bound what one job may ask for (default: ``Limits()``, workers up to this machine's CPUs)."""
    store = store if isinstance(store, Store) else Store(store)
    data_dir = Path(data_dir)
    limits = limits or Limits(raise_hint="the service's operator can raise it (`nas serve --help`)")
    supervisor = JobSupervisor(store, log_dir=data_dir / "logs", max_jobs=max_jobs, limits=limits) if run_jobs else None
    service = Service(store, auth, data_dir, supervisor, limits, tuple(allow_plugins))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if supervisor is not None:
            supervisor.start()
        yield
        if supervisor is not None:
            supervisor.stop()

    app = FastAPI(
        title="imc-nas",
        version=service.version,
        summary="Hardware-aware neural architecture search for in-memory-computing accelerators",
        description=(
            "Submit search jobs, watch them, query their Pareto fronts and export the winners as "
            "PyTorch, TorchScript and ONNX models. With auth on, send `Authorization: Bearer <token>` "
            "(`nas token create --tenant NAME`)."
        ),
        lifespan=lifespan,
        responses={k: v for k, v in schemas.ERRORS.items() if k in (401, 413)},
    )
    app.state.service = service
    app.openapi = lambda: _openapi(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    _add_error_handlers(app)
    app.include_router(_routes(service))
    dashboard = _dashboard_dir()
    if dashboard is not None:
        app.mount("/ui", StaticFiles(directory=dashboard, html=True), name="dashboard")

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/ui/")

    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus the JobSpec that POST /jobs reads itself (it parses JSON or YAML)."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
        )
        spec = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(spec.pop("$defs", {}))
        components["JobSpec"] = spec
        app.openapi_schema = schema
    return app.openapi_schema


def _dashboard_dir() -> Path | None:
    """The dashboard's static files. ``dashboards`` sits above ``nas`` in the imports' order, so the
    service finds its files without importing it."""
    found = importlib.util.find_spec("dashboards")
    if found is None or not found.submodule_search_locations:
        return None
    static = Path(next(iter(found.submodule_search_locations))) / "static"
    return static if static.is_dir() else None


# ---- errors ---------------------------------------------------------------------------------------


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int):
        async def handle(_request: Request, err: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(err)}, status_code=status)

        return handle

    app.add_exception_handler(NotFoundError, handler(404))
    app.add_exception_handler(QuotaError, handler(429))
    app.add_exception_handler(JobStateError, handler(409))
    app.add_exception_handler(StoreError, handler(503))  # after its subclasses: the database failed

    async def invalid(request: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": _details(err, request)}, status_code=422)

    for kind in (FieldError, ValueError, SpaceError, UnknownNameError, AcceleratorError):
        app.add_exception_handler(kind, invalid)


def _details(err: Exception, request: Request) -> list[dict[str, Any]]:
    """FastAPI's shape of validation errors: ``loc`` from the error's own field paths (a
    ``FieldError``), else the request's body or query as a whole."""
    if isinstance(err, ValidationError):
        return spec_error_details(err)
    if isinstance(err, FieldError):
        return [
            {"loc": [err.where, *(field.split(".") if field else [])], "msg": msg, "type": "value_error"}
            for field, msg in err.errors
        ]
    where = "query" if request.method == "GET" else "body"
    return [{"loc": [where], "msg": str(err).strip("'\""), "type": "value_error"}]


# ---- routes ---------------------------------------------------------------------------------------

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


Tenant = Annotated[str | None, Depends(_tenant)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="page size")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1)]
JobId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
JobStatus = Literal[JOB_STATUSES]  # type: ignore[valid-type]
CandidateStatus = Literal[CANDIDATE_STATUSES]  # type: ignore[valid-type]


def _routes(service: Service):
    from fastapi import APIRouter

    router = APIRouter()
    store = service.store

    def job_for(job_id: int, tenant: str | None) -> JobRecord:
        """The job, if the caller may see it; an unknown id and another tenant's answer alike."""
        try:
            job = store.get_job(job_id)
        except NotFoundError:
            job = None
        if job is None or (tenant is not None and job.tenant != tenant):
            raise NotFoundError(f"job {job_id} is not among your jobs; GET /jobs lists them")
        return job

    def export_for(export_id: int, tenant: str | None):
        try:
            record = store.get_export(export_id)
            job_for(record.job_id, tenant)
        except NotFoundError:
            raise NotFoundError(f"export {export_id} is not among your exports") from None
        return record

    def job_views(jobs: list[JobRecord]) -> list[schemas.Job]:
        """Jobs with their best front member: one query for the whole page, not one per job."""
        best = store.best_on_front(jobs)
        out = []
        for job in jobs:
            c, objective = best.get(job.id), job.spec["objectives"][0]
            top = c and schemas.Best(
                objective=objective, value=c.metrics.get(objective), candidate_id=c.id, name=c.name
            )
            out.append(schemas.job_out(job, top, _eta(job)))
        return out

    def job_view(job: JobRecord) -> schemas.Job:
        return job_views([job])[0]

    @router.get("/healthz", response_model=schemas.Health, tags=["service"])
    def healthz() -> schemas.Health:
        """Liveness: answers without a token."""
        running = service.supervisor.running() if service.supervisor else []
        return schemas.Health(
            status="ok", version=service.version, database=store.safe_url, auth=service.auth, jobs_running=running
        )

    @router.get("/limits", response_model=schemas.Limits, tags=["service"], responses=_errs(401))
    def limits(_tenant: Tenant) -> schemas.Limits:
        """What one job may ask for here, and the quotas on jobs per tenant."""
        return schemas.Limits(**service.limits.public())

    @router.post(
        "/jobs",
        status_code=201,
        response_model=schemas.Job,
        tags=["jobs"],
        openapi_extra=SPEC_BODY,
        responses={k: schemas.ERRORS[k] for k in (401, 413, 422, 429)},
    )
    async def create_job(request: Request, tenant: Tenant) -> schemas.Job:
        """Submit a search job: a JobSpec as JSON, or as YAML with a YAML content type. The job is
        queued and starts when a runner slot is free. Over a limit (GET /limits): 422, or 429 at
        the tenant's quota of unfinished jobs; nothing is created."""
        data = _read_spec(await request.body(), request.headers.get("content-type", ""))
        spec = _validate(data, service)
        await anyio.to_thread.run_sync(lambda: check_quota(store, service.limits, tenant))
        # submitting prices a few hundred architectures and writes the store: off the event loop
        return await anyio.to_thread.run_sync(lambda: job_view(_submit(service, spec, tenant)))

    @router.get("/jobs", response_model=schemas.JobPage, tags=["jobs"], responses={401: schemas.ERRORS[401]})
    def list_jobs(
        tenant: Tenant,
        status: JobStatus | None = None,
        tag: Annotated[str | None, Query(max_length=100)] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> schemas.JobPage:
        """The jobs, newest first, optionally of one status or tag."""
        jobs = store.list_jobs(status=status, tag=tag, tenant=tenant, limit=limit, offset=offset)
        total = store.count_jobs(status=status, tag=tag, tenant=tenant)
        return schemas.JobPage(items=job_views(jobs), total=total, limit=limit, offset=offset)

    @router.get("/jobs/{job_id}", response_model=schemas.Job, tags=["jobs"], responses=_errs(401, 404))
    def get_job(job_id: JobId, tenant: Tenant) -> schemas.Job:
        """Status, progress counts, the best candidate so far, hypervolume, ETA and errors."""
        return job_view(job_for(job_id, tenant))

    @router.post("/jobs/{job_id}/cancel", response_model=schemas.Job, tags=["jobs"], responses=_errs(401, 404))
    def cancel_job(job_id: JobId, tenant: Tenant) -> schemas.Job:
        """Stop the job within seconds; it keeps its results and can be resumed."""
        job_for(job_id, tenant)
        return job_view(cancel(store, job_id))

    @router.post(
        "/jobs/{job_id}/resume", response_model=schemas.Job, tags=["jobs"], responses=_errs(401, 404, 409, 429)
    )
    def resume_job(job_id: JobId, tenant: Tenant) -> schemas.Job:
        """Continue an interrupted, cancelled or failed job (or one with budget left) in the service."""
        job = job_for(job_id, tenant)
        if job.status == "queued" and job.managed:  # already waiting for the service's runner
            return job_view(job)
        check_can_run(job, resume=True)
        check_quota(store, service.limits, tenant, exclude=job_id)
        job = store.requeue(job_id)
        if service.supervisor:
            service.supervisor.wake()
        return job_view(job)

    @router.post(
        "/jobs/{job_id}/train", response_model=schemas.Job, tags=["jobs"], responses=_errs(401, 404, 409, 422, 429)
    )
    def train_job(job_id: JobId, request: schemas.TrainRequest, tenant: Tenant) -> schemas.Job:
        """Measure the front's best ``top`` candidates (train them with the job's recipe; their
        weights are kept for export): the service's runner continues the job to do it."""
        job = job_for(job_id, tenant)
        if job.accuracy_kind != "predicted":
            raise HTTPException(
                409, f"job {job_id} has no training recipe (its accuracy is {ACCURACY_KINDS[job.accuracy_kind]}); "
                "submit it with evaluator.train to measure candidates"
            )  # fmt: skip
        if job.status == "running":
            raise HTTPException(409, f"job {job_id} is running; ask again when it has finished")
        check_quota(store, service.limits, tenant, exclude=job_id)
        store.request_training(job_id, request.top)
        job = store.requeue(job_id)
        if service.supervisor:
            service.supervisor.wake()
        return job_view(job)

    @router.get(
        "/jobs/{job_id}/hypervolume",
        response_model=list[schemas.HypervolumePoint],
        tags=["jobs"],
        responses=_errs(401, 404),
    )
    def hypervolume(job_id: JobId, tenant: Tenant) -> list[schemas.HypervolumePoint]:
        """The hypervolume each time the front moved."""
        job_for(job_id, tenant)
        return [
            schemas.HypervolumePoint(n_trials=n, hypervolume=v, front_size=f)
            for n, v, f in store.hypervolume_history(job_id)
        ]

    @router.get(
        "/jobs/{job_id}/pareto", response_model=schemas.ParetoPage, tags=["results"], responses=_errs(401, 404, 422)
    )
    async def pareto(
        job_id: JobId,
        tenant: Tenant,
        where: Annotated[
            str | None, Query(max_length=2000, description="bounds, e.g. 'latency_ms<1.25,energy_mj<3'")
        ] = None,
        sort: Annotated[
            str | None, Query(description=f"one of {', '.join(FILTERABLE)}; default the first objective")
        ] = None,
        descending: Annotated[bool | None, Query(description="default: best first")] = None,
        fields: Annotated[
            str | None, Query(max_length=2000, description="comma-separated fields to return, e.g. 'id,name,accuracy'")
        ] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Response:
        """The feasible candidates no other feasible candidate within ``where`` dominates."""
        # the answer is a function of the query and the job's stamp: polled pages come from the cache,
        # after one small query (run here, on the event loop: cheaper than a thread hop)
        found = store.front_stamp(job_id)
        if found is None or (tenant is not None and found[0] != tenant):
            job_for(job_id, tenant)  # the 404 every route gives
        key = (found[1][:2], where, sort, descending, fields, limit, offset)
        body = service.pages.get(key, found[1])
        if body is None:

            def page() -> bytes:
                job = store.get_job(job_id)
                wanted = _fields(fields)
                front = store.pareto(
                    job_id, where=parse_bounds(where), sort=sort, descending=descending, limit=limit, offset=offset
                )
                rows = [c.row() for c in front]
                if wanted:
                    rows = [{k: r[k] for k in wanted} for r in rows]
                answer = schemas.ParetoPage(objectives=job.spec["objectives"], items=rows, limit=limit, offset=offset)
                return answer.model_dump_json().encode()

            body = await anyio.to_thread.run_sync(page)
            service.pages.put(key, found[1], body)
        return Response(body, media_type="application/json")

    @router.get(
        "/jobs/{job_id}/candidates", response_model=schemas.CandidatePage, tags=["results"], responses=_errs(401, 404)
    )
    def list_candidates(
        job_id: JobId,
        tenant: Tenant,
        status: CandidateStatus | None = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> schemas.CandidatePage:
        """Every distinct architecture the job drew, in trial order."""
        job_for(job_id, tenant)
        items = store.candidates(job_id, status=status, limit=limit, offset=offset)
        return schemas.CandidatePage(items=[schemas.candidate_out(c) for c in items], limit=limit, offset=offset)

    @router.get(
        "/jobs/{job_id}/candidates/{ref}", response_model=schemas.Candidate, tags=["results"], responses=_errs(401, 404)
    )
    def get_candidate(
        job_id: JobId,
        ref: Annotated[str, PathParam(max_length=64, description="candidate id or arch hash prefix")],
        tenant: Tenant,
    ) -> schemas.Candidate:
        """One candidate with its architecture, metrics and per-layer hardware table."""
        job = job_for(job_id, tenant)
        c = store.candidate(job_id, ref)
        return schemas.candidate_out(c, stored_report(job, c.arch).to_dict()["layers"])

    @router.post(
        "/jobs/{job_id}/export",
        status_code=201,
        response_model=schemas.ExportOut,
        tags=["export"],
        responses=_errs(401, 404, 422),
    )
    def export(job_id: JobId, request: schemas.ExportRequest, tenant: Tenant) -> schemas.ExportOut:
        """Export a candidate (or the best under ``where``) as a zip: arch.json, state_dict,
        TorchScript, ONNX, ExportedProgram and a model card. Runs in the request (seconds; minutes with training)."""
        job = job_for(job_id, tenant)
        c = choose_candidate(store, job.id, request.candidate, where=request.where, sort=request.sort)
        record = export_archive(
            store, job, c, service.export_dir,
            formats=request.formats, train_steps=request.train_steps, train_batch=request.train_batch,
        )  # fmt: skip
        return _export_out(record)

    @router.get(
        "/exports/{export_id}",
        tags=["export"],
        responses={200: {"content": {"application/zip": {}}}, **_errs(401, 404)},
    )
    def get_export(export_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], tenant: Tenant) -> FileResponse:
        """The export's zip."""
        record = export_for(export_id, tenant)
        path = Path(record.path)
        if not path.is_file():
            raise NotFoundError(f"export {export_id}: its file {path.name} is gone from the service's data folder")
        return FileResponse(path, media_type="application/zip", filename=path.name)

    @router.get(
        "/exports/{export_id}/card", response_model=schemas.ExportOut, tags=["export"], responses=_errs(401, 404)
    )
    def get_export_card(export_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)], tenant: Tenant) -> schemas.ExportOut:
        """The export's files and model card."""
        return _export_out(export_for(export_id, tenant))

    @router.get("/accelerators", response_model=list[schemas.Accelerator], tags=["catalogue"], responses=_errs(401))
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

    @router.get("/spaces", response_model=list[schemas.Space], tags=["catalogue"], responses=_errs(401))
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


def _errs(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: schemas.ERRORS[c] for c in codes}


def _read_spec(body: bytes, content_type: str) -> dict[str, Any]:
    media = content_type.split(";")[0].strip().lower()
    try:
        text = body.decode()
        data = yaml.safe_load(text) if media in YAML_TYPES else json.loads(text)
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


def _validate(data: dict[str, Any], service: Service) -> JobSpec:
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as err:
        raise RequestValidationError(spec_error_details(err)) from None
    # a spec over HTTP names what the service ships: a plug-in is code to import, a path a file to read
    for name in ("space", "evaluator"):
        value = getattr(spec, name)
        if isinstance(value, PluginRef) and not value.plugin.startswith(service.allow_plugins or ("\0",)):
            raise SpecError(
                f"{name}.plugin",
                "plug-ins are off in this service; its operator allows them with "
                "`nas serve --allow-plugin MODULE_PREFIX`",
            )
    if isinstance(spec.space, str) and spec.space not in space_names():
        raise SpecError(
            "space", f"{spec.space!r} is not a registered space ({', '.join(space_names())}); or inline one"
        )
    if spec.accelerator not in accelerator_names():
        raise SpecError(
            "accelerator", f"{spec.accelerator!r} is not one of {', '.join(accelerator_names())} (GET /accelerators)"
        )
    service.limits.check(spec)
    return spec


def _submit(service: Service, spec: JobSpec, tenant: str | None) -> JobRecord:
    job = submit(service.store, spec, tenant=tenant, managed=True)
    if service.supervisor:
        service.supervisor.wake()
    return job


def _eta(job: JobRecord) -> float | None:
    if job.status != "running":
        return None
    budget = job.spec.get("budget", {})
    etas = []
    if budget.get("trials") and job.n_trials:
        etas.append(max(0, budget["trials"] - job.n_trials) * job.run_seconds / job.n_trials)
    if budget.get("wall_time_s"):
        etas.append(max(0.0, budget["wall_time_s"] - job.run_seconds))
    return min(etas) if etas else None


def _fields(text: str | None) -> list[str]:
    if not text:
        return []
    wanted = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in ROW_FIELDS]
    if unknown:
        raise FieldError("fields", f"unknown {', '.join(unknown)}; known: {', '.join(ROW_FIELDS)}", where="query")
    return list(dict.fromkeys(wanted))


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
