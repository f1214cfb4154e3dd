"""The operator's settings for one service (``create_app``'s arguments, ``nas serve``'s flags): the
limits on what one job may ask for (``nas.limits.Limits``), the grants of ``Policy``, and the bounds
on what one request may ask of the service itself (``nas.limits.RequestLimits``). Routes read them
through ``Depends`` (``nas.service._common``), never from module constants, so ``GET /limits`` shows every bound a
request meets and a test can override them."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from hwmodels import MAX_VARIANTS
from nas.limits import MAX_ACCELERATORS, Limits, RequestLimits
from nas.service._policy import Policy

MAX_BODY_BYTES = RequestLimits.max_body_bytes
OPERATOR_HINT = "the service's operator can raise it (`nas serve --help`)"


@dataclass(frozen=True)
class Settings(RequestLimits):
    limits: Limits = field(default_factory=lambda: Limits(raise_hint=OPERATOR_HINT))
    policy: Policy = field(default_factory=Policy)
    auth: bool = False  # every route but /healthz needs a bearer token
    data_dir: Path = Path("nas-service")  # exports and job logs
    max_jobs: int = 2  # processes (jobs and exports) run at once
    run_jobs: bool = True  # False: serve the API only; jobs wait queued for a service that runs them
    # and, from RequestLimits, what one request may ask of the service

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        for name in ("max_jobs", *REQUEST_LIMITS):
            if getattr(self, name) < 1:
                raise ValueError(f"settings: {name} must be >= 1, got {getattr(self, name)}")
        for name, ceiling in (("max_variants", MAX_VARIANTS), ("max_accelerators", MAX_ACCELERATORS)):
            if getattr(self, name) > ceiling:
                raise ValueError(
                    f"settings: {name} is at most {ceiling} (what one call prices), got {getattr(self, name)}"
                )


REQUEST_LIMITS = tuple(f.name for f in fields(RequestLimits))
