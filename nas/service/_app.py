"""The REST API (FastAPI): the app, its errors and the dashboard at ``/``; the routes are in one
module per resource (``_jobs``, ``_results``, ``_exports``, ``_catalogue``, ``_whatif``).

Handlers only read and write the store; jobs and exports run in processes the ``JobSupervisor``
starts, so a query answers in milliseconds while a search runs and no request builds a network. With auth on, every route but ``/healthz``
needs a bearer token, and a tenant sees only its own jobs: another tenant's id answers 404, as an
unknown one does.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import ValidationError
from starlette.staticfiles import StaticFiles

from hwmodels import AcceleratorError
from nas.jobs import JobStateError
from nas.limits import Limits, QuotaError
from nas.service import _catalogue, _exports, _jobs, _results, _whatif
from nas.service import _schemas as schemas
from nas.service._common import Service
from nas.service._limits import BodyLimit
from nas.service._policy import Policy
from nas.service._redact import for_http
from nas.service._settings import MAX_BODY_BYTES, OPERATOR_HINT, Settings
from nas.service._supervisor import JobSupervisor
from nas.spec import FieldError, JobSpec, spec_error_details
from nas.store import (
    NotFoundError,
    Store,
    StoreError,
)
from search_spaces import SpaceError, UnknownNameError

log = logging.getLogger("nas.service")
DOCS_ASSETS = "/docs-assets"  # Swagger UI's files, served here: /docs works without internet


def create_app(
    store: Store | str | None = None,
    *,
    auth: bool = False,
    data_dir: str | Path = "nas-service",
    max_jobs: int = 2,
    run_jobs: bool = True,
    allow_plugins: tuple[str, ...] = (),
    allow_ray_addresses: tuple[str, ...] = (),
    data_roots: tuple[str | Path, ...] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
    limits: Limits | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The service over ``store``. ``run_jobs`` False serves the API without running jobs (they
    stay queued for a service that does); ``allow_plugins`` lists the exact ``module:object``
    plug-ins a submitted spec may name (none by default: a plug-in is code a job would import),
    ``allow_ray_addresses`` the Ray clusters it may join, ``data_roots`` the folders its data may
    come from (``nas.service._policy``);
    ``limits`` bound what one job may ask for (default: ``Limits()``, workers up to this machine's CPUs).
    ``settings`` gives all of them at once (and the request limits: page size, sweep variants,
    compared accelerators), instead of the keywords."""
    store = store if isinstance(store, Store) else Store(store)
    if settings is None:
        settings = Settings(
            limits=limits or Limits(raise_hint=OPERATOR_HINT),
            policy=Policy(tuple(allow_plugins), tuple(allow_ray_addresses), tuple(Path(r) for r in data_roots)),
            auth=auth, data_dir=Path(data_dir), max_jobs=max_jobs, run_jobs=run_jobs, max_body_bytes=max_body_bytes,
        )  # fmt: skip
    supervisor = (
        JobSupervisor(
            store,
            log_dir=settings.data_dir / "logs",
            export_dir=settings.data_dir / "exports",
            max_jobs=settings.max_jobs,
            limits=settings.limits,
        )
        if settings.run_jobs
        else None
    )
    service = Service(store, settings, supervisor)

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
            "PyTorch models (torch.export's ExportedProgram, a state_dict, ONNX; TorchScript on request). With auth on, send `Authorization: Bearer <token>` "
            "(`nas token create --tenant NAME`)."
        ),
        lifespan=lifespan,
        responses={k: v for k, v in schemas.ERRORS.items() if k in (401, 413)},
        docs_url=None,  # served below from the package's own copy of Swagger UI, not a CDN
        redoc_url=None,  # ReDoc ships only from a CDN: /docs is the API's page
    )
    app.state.service = service
    app.openapi = lambda: _openapi(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    _add_error_handlers(app)
    for routes in (_catalogue, _jobs, _results, _exports, _whatif):
        app.include_router(routes.router)
    _add_docs(app)
    dashboard = _dashboard_dir()
    if dashboard is not None:
        app.mount("/ui", StaticFiles(directory=dashboard, html=True), name="dashboard")

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/ui/")

    return app


def _add_docs(app: FastAPI) -> None:
    """The API's page, /docs: Swagger UI from the ``swagger-ui-bundle`` package's files, so it
    shows without internet (FastAPI's default loads them from a CDN)."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
        )


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
            return JSONResponse({"detail": for_http(str(err))}, status_code=status)

        return handle

    app.add_exception_handler(NotFoundError, handler(404))
    app.add_exception_handler(QuotaError, handler(429))
    app.add_exception_handler(JobStateError, handler(409))

    async def unavailable(_request: Request, err: Exception) -> JSONResponse:
        # the driver's text names the database's host, port and user: the operator's log has it
        log.warning("database error: %s", err)
        return JSONResponse({"detail": "the database did not answer; try again shortly"}, status_code=503)

    app.add_exception_handler(StoreError, unavailable)  # after its subclasses: the database failed

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
            {"loc": [err.where, *(field.split(".") if field else [])], "msg": for_http(msg), "type": "value_error"}
            for field, msg in err.errors
        ]
    where = "query" if request.method == "GET" else "body"
    return [{"loc": [where], "msg": for_http(str(err).strip("'\"")), "type": "value_error"}]


# ---- routes ---------------------------------------------------------------------------------------
