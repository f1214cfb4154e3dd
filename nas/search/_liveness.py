"""Moved to ``nas.liveness`` (job control is free of the search loop's imports); kept for old imports."""

from nas.jobs import cancel  # noqa: F401 - its home before nas.jobs
from nas.liveness import (  # noqa: F401 - the names importers of this path use
    CANCEL_GRACE_S,
    HEARTBEAT_S,
    STALE_BEATS,
    Heartbeat,
    Pulse,
    kill_session,
    owner_alive,
    owner_id,
    owner_pid,
    pid_alive,
    session_pids,
)
