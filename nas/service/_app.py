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

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from starlette.staticfiles import StaticFiles

from hwmodels import AcceleratorError
from nas.limits import Limits, QuotaError
from nas.search import JobStateError
from nas.service import _catalogue, _exports, _jobs, _results, _whatif
from nas.service import _schemas as schemas
from nas.service._common import Service
from nas.service._limits import BodyLimit
from nas.service._policy import Policy
from nas.service._redact import redact
from nas.service._supervisor import JobSupervisor
from nas.spec import FieldError, JobSpec, spec_error_details
from nas.store import (
    NotFoundError,
    Store,
    StoreError,
)
from search_spaces import SpaceError, UnknownNameError

log = logging.getLogger("nas.service")
MAX_BODY_BYTES = 1 << 20  # a job spec is a few kB; an inline space a few more


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
) -> FastAPI:
    """The service over ``store``. ``run_jobs`` False serves the API without running jobs (they
    stay queued for a service that does); ``allow_plugins`` lists the exact ``module:object``
    plug-ins a submitted spec may name (none by default: a plug-in is code a job would import),
    ``allow_ray_addresses`` the Ray clusters it may join, ``data_roots`` the folders its data may
    come from (``nas.service._policy``);
    ``limits`` bound what one job may ask for (default: ``Limits()``, workers up to this machine's CPUs)."""
    store = store if isinstance(store, Store) else Store(store)
    data_dir = Path(data_dir)
    limits = limits or Limits(raise_hint="the service's operator can raise it (`nas serve --help`)")
    supervisor = (
        JobSupervisor(
            store, log_dir=data_dir / "logs", export_dir=data_dir / "exports", max_jobs=max_jobs, limits=limits
        )
        if run_jobs
        else None
    )
    policy = Policy(tuple(allow_plugins), tuple(allow_ray_addresses), tuple(Path(r) for r in data_roots))
    service = Service(store, auth, data_dir, supervisor, limits, policy)

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
    for routes in (_catalogue, _jobs, _results, _exports, _whatif):
        app.include_router(routes.router(service))
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
            return JSONResponse({"detail": redact(str(err))}, status_code=status)

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
            {"loc": [err.where, *(field.split(".") if field else [])], "msg": redact(msg), "type": "value_error"}
            for field, msg in err.errors
        ]
    where = "query" if request.method == "GET" else "body"
    return [{"loc": [where], "msg": redact(str(err).strip("'\"")), "type": "value_error"}]


# ---- routes ---------------------------------------------------------------------------------------
