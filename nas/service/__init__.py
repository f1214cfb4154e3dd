"""The service: a REST API over the store, a supervisor that runs the jobs and exports, the dashboard at ``/``.

    from nas.service import create_app
    app = create_app("sqlite:///nas.db")          # serve with uvicorn, or `nas serve`

``nas.client.Client`` speaks to it from Python; ``docs/service.md`` walks through it.
"""

from nas.service._app import MAX_BODY_BYTES, create_app
from nas.service._supervisor import JobSupervisor

__all__ = ["MAX_BODY_BYTES", "JobSupervisor", "create_app"]
