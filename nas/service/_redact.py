"""What the service says about itself: nothing. Texts that reach a client (a job's error, a failed
store call) lose the server's URLs and paths here, keeping a file's name, which says what failed
without saying where (``/srv/nas/nas-service/logs/job-4.log`` -> ``…/job-4.log``)."""

from __future__ import annotations

import re
from typing import Any

_URL = re.compile(r"\b[A-Za-z][\w+.-]*://[^\s'\"]+")  # sqlite:///nas.db, postgresql+psycopg://user:pw@host/db
# two or more segments, absolute (/srv/x.db) or relative (nas-service/logs/job-4.log); a route
# (/jobs/4) is rare in an error and loses only its head
_PATH = re.compile(r"(?<![\w/.~-])[~.]{0,2}/?(?:[\w.~-]*[^\W\d][\w.~-]*/)+([\w.~-]*)")  # not 3/4


def redact(text: str | None) -> str | None:
    if text is None:
        return None
    return _PATH.sub(lambda m: f"…/{m.group(1)}", _URL.sub("<url>", text))


def redact_tree(value: Any) -> Any:
    """``value`` (a spec, a model card: JSON-like) with every string ``redact``-ed: a data folder
    under the operator's root shows as its last name (``…/set``), as the tenant named it."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value


# The store and the search loop speak to the CLI's user (`nas cancel 4`); a client of the API is
# told the route that does the same (an operator's command, `nas serve --...`, stays: it says who acts).
_HTTP_WAY = [
    (re.compile(r"`nas cancel (\d+)`"), r"POST /jobs/\1/cancel"),
    (re.compile(r"`nas resume (\d+)`"), r"POST /jobs/\1/resume"),
    (re.compile(r"`nas train (\d+)[^`]*`"), r"POST /jobs/\1/train"),
    (re.compile(r"`nas (?:pareto|show) (\d+)[^`]*`"), r"GET /jobs/\1/pareto"),
    (re.compile(r"`nas jobs[^`]*`"), "GET /jobs"),
    (re.compile(r"`nas hw list`"), "GET /accelerators"),
    (re.compile(r"`nas space list`"), "GET /spaces"),
    (re.compile(r" is running in [^\s;,]+"), " is running"),  # its process's host:pid: the server's
]


def for_http(text: str | None) -> str | None:
    """``text`` as a client of the API reads it: ``redact``-ed, and every CLI hint the route that
    does the same."""
    text = redact(text)
    if text is None:
        return None
    for pattern, route in _HTTP_WAY:
        text = pattern.sub(route, text)
    return text
