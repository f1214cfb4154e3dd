"""The service: a REST API over the store, a supervisor that runs the jobs and exports, the dashboard at ``/``.

    from nas.service import create_app
    app = create_app("sqlite:///nas.db")          # serve with uvicorn, or `nas serve`

``nas.client.Client`` speaks to it from Python; ``docs/service.md`` walks through it. Routes take
the store, the operator's ``Settings`` (limits, policy) and the caller's tenant through FastAPI's
``Depends`` (``nas.service._common``): a test overrides any of them with ``app.dependency_overrides``.
"""

from nas.service._app import create_app
from nas.service._policy import Policy
from nas.service._settings import MAX_BODY_BYTES, OPERATOR_HINT, Settings
from nas.service._supervisor import JobSupervisor

__all__ = ["MAX_BODY_BYTES", "OPERATOR_HINT", "JobSupervisor", "Policy", "Settings", "create_app"]
