"""What one job may ask for: a bound on every spec field that costs CPU, memory or time, checked
where a spec enters (``nas.search.submit``).

The service applies its operator's limits (``nas serve --max-workers ...``; ``GET /limits`` lists
them) and per-tenant quotas on jobs; ``nas run`` applies this machine's defaults (no more workers
than CPUs unless ``--max-workers`` says so). Library callers of ``submit`` pass none and are trusted.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from nas.spec import JobSpec, PluginRef, SpecError
from nas.status import UNFINISHED


def cpu_count() -> int:
    """The CPUs this process may use (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Limits:
    """Server-side maximums. ``raise_hint`` says, in errors, how the limit is lifted."""

    max_workers: int = field(default_factory=cpu_count)  # Ray workers (x cpus_per_worker) per job
    max_classes: int = 100_000
    max_input_side: int = 1024  # H and W of input_shape: exports build and run the network at this size
    max_input_channels: int = 64
    max_batch: int = 1024  # the priced batch (spec.batch)
    max_trials: int = 100_000
    max_wall_time_s: float = 24 * 3600.0  # a job's search, and every single evaluation or training in it
    max_jobs_per_tenant: int = 20  # a tenant's unfinished jobs (queued, running, interrupted): 429 beyond
    max_running_per_tenant: int | None = None  # of those, run at once (None: every runner slot)
    heartbeat_timeout_s: float = 60.0  # a job's process silent this long is stopped and its job failed
    raise_hint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name != "raise_hint" and value is not None and value < 1:
                raise ValueError(f"limits: {name} must be >= 1, got {value}")

    @classmethod
    def local(cls, max_workers: int | None = None) -> Limits:
        """This machine's defaults for ``nas run``: workers up to its CPUs unless raised."""
        limits = cls(raise_hint="raise it with --max-workers if you mean it")
        return replace(limits, max_workers=max_workers) if max_workers is not None else limits

    def public(self) -> dict[str, Any]:
        """What ``GET /limits`` shows."""
        return {k: v for k, v in asdict(self).items() if k != "raise_hint"}

    def check(self, spec: JobSpec) -> None:
        """Raise ``SpecError`` naming every field over its limit, with the limit and the fix."""
        over = self.violations(spec)
        if over:
            raise SpecError(errors=over)

    def violations(self, spec: JobSpec) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []

        def bound(loc: str, value: float | None, limit: float, what: str, fix: str) -> None:
            if value is not None and value > limit:
                hint = f"; {self.raise_hint}" if self.raise_hint and loc.startswith("workers") else ""
                out.append((loc, f"{value:g} is over the limit of {limit:g} {what}; {fix}{hint}"))

        w = spec.workers
        bound("workers.count", w.count, self.max_workers, "workers", "ask for fewer (omit it: one per CPU)")
        if w.count is not None and w.count <= self.max_workers:
            cpus = w.count * w.cpus_per_worker
            bound("workers.cpus_per_worker", cpus, self.max_workers, "CPUs (count x cpus_per_worker)", "ask for fewer")
        bound("num_classes", spec.num_classes, self.max_classes, "classes", "a classifier head this wide is a typo")
        c, h, wd = spec.input_shape
        bound("input_shape", max(h, wd), self.max_input_side, "pixels a side", "deploy at a smaller resolution")
        bound("input_shape", c, self.max_input_channels, "channels", "give (C, H, W), channels first")
        bound("batch", spec.batch, self.max_batch, "frames", "price a smaller batch")
        b = spec.budget
        bound("budget.trials", b.trials, self.max_trials, "trials", "split the search into jobs, or resume it")
        bound("budget.wall_time_s", b.wall_time_s, self.max_wall_time_s, "s", "resume the job to go on")
        bound(
            "budget.trial_timeout_s",
            b.trial_timeout_s,
            self.max_wall_time_s,
            "s",
            "one evaluation cannot outlast a job",
        )
        train = getattr(spec.evaluator, "train", None) if not isinstance(spec.evaluator, PluginRef) else None
        if train is not None:
            bound(
                "evaluator.train.timeout_s",
                train.timeout_s,
                self.max_wall_time_s,
                "s",
                "one training cannot outlast a job",
            )
        return out


class QuotaError(Exception):
    """A tenant is at its quota of jobs (HTTP 429): nothing was created."""


def check_quota(store: Any, limits: Limits, tenant: str | None, *, exclude: int | None = None) -> None:
    """Refuse one more unfinished job for ``tenant`` (None: every job, auth off) at its quota."""
    active = [j.id for s in UNFINISHED for j in store.list_jobs(status=s, tenant=tenant, limit=None) if j.id != exclude]
    if len(active) >= limits.max_jobs_per_tenant:
        who = f"tenant {tenant}" if tenant else "this service (auth off: one tenant)"
        raise QuotaError(
            f"{who} has {len(active)} unfinished jobs, the limit (max_jobs_per_tenant, GET /limits); "
            "wait for one to finish, or cancel one"
        )
