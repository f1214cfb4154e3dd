"""The operator's settings for one service (``create_app``'s arguments, ``nas serve``'s flags): the
limits on what one job may ask for (``nas.limits.Limits``), the grants of ``Policy``, and the bounds
on what one request may ask of the service itself. Routes read them through ``Depends``
(``nas.service._deps``), never from module constants, so ``GET /limits`` shows every bound a
request meets and a test can override them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwmodels import MAX_VARIANTS
from nas.limits import Limits
from nas.service._policy import Policy
from nas.whatif import MAX_ACCELERATORS

MAX_BODY_BYTES = 1 << 20  # a job spec is a few kB; an inline space a few more
OPERATOR_HINT = "the service's operator can raise it (`nas serve --help`)"


@dataclass(frozen=True)
class Settings:
    limits: Limits = field(default_factory=lambda: Limits(raise_hint=OPERATOR_HINT))
    policy: Policy = field(default_factory=Policy)
    auth: bool = False  # every route but /healthz needs a bearer token
    data_dir: Path = Path("nas-service")  # exports and job logs
    max_jobs: int = 2  # processes (jobs and exports) run at once
    run_jobs: bool = True  # False: serve the API only; jobs wait queued for a service that runs them
    # what one request may ask of the service (GET /limits lists them with the job limits)
    max_body_bytes: int = MAX_BODY_BYTES  # a request's body
    max_page: int = 1000  # items on one page of a list
    max_variants: int = MAX_VARIANTS  # chips one POST /hw/sweep prices (hwmodels builds no more)
    max_accelerators: int = MAX_ACCELERATORS  # accelerators one GET /jobs/{id}/compare re-prices
    max_train_steps: int = 100_000  # training steps one export may ask for (its run is bounded by max_export_s)

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

    def request_limits(self) -> dict[str, Any]:
        """What ``GET /limits`` shows beside the job limits."""
        return {k: getattr(self, k) for k in REQUEST_LIMITS}


REQUEST_LIMITS = ("max_body_bytes", "max_page", "max_variants", "max_accelerators", "max_train_steps")
