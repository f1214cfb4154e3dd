"""What one job may ask for: a bound on every spec field that costs CPU, memory or time, checked
where a spec enters (``nas.jobs.submit``).

The service applies its operator's limits (``nas serve --max-workers ...``; ``GET /limits`` lists
them) and per-tenant quotas on jobs; ``nas run`` applies this machine's defaults (no more workers
than CPUs unless ``--max-workers`` says so). Library callers of ``submit`` pass none and are trusted.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from hwmodels import MAX_VARIANTS
from nas.spec import FieldError, JobSpec, PluginRef, SpecError
from nas.status import UNFINISHED, UNFINISHED_EXPORTS
from search_spaces import ArchConfig, SearchSpace

MAX_ACCELERATORS = 16  # chips one comparison re-prices a front on


def cpu_count() -> int:
    """The CPUs this process may use (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask of the service itself (``nas serve --max-page ...``; ``GET /limits``
    lists them with the job limits). Light, so that ``nas serve``'s flags are built from it."""

    max_body_bytes: int = 1 << 20  # a request's body: a job spec is a few kB, an inline space a few more
    max_page: int = 1000  # items on one page of a list
    max_variants: int = MAX_VARIANTS  # chips one POST /hw/sweep prices (hwmodels builds no more)
    max_accelerators: int = MAX_ACCELERATORS  # accelerators one GET /jobs/{id}/compare re-prices
    max_train_steps: int = 100_000  # training steps one export may ask for (its run is bounded by max_export_s)

    def request_limits(self) -> dict[str, int]:
        """What ``GET /limits`` shows beside the job limits."""
        return {f.name: getattr(self, f.name) for f in fields(RequestLimits)}


@dataclass(frozen=True)
class Limits:
    """Server-side maximums. ``raise_hint`` says, in errors, how the limit is lifted."""

    max_workers: int = field(default_factory=cpu_count)  # Ray workers (x cpus_per_worker) per job
    # GPUs (workers x gpus_per_worker) per job, a node's worth; 0: no job trains on a GPU. None (``nas
    # run``): no bound here, the job's Ray cluster refuses more than it has when the job starts
    max_gpus: int | None = 8
    max_classes: int = 100_000
    max_input_side: int = 1024  # H and W of input_shape: exports build and run the network at this size
    max_input_channels: int = 64
    max_batch: int = 1024  # the priced batch (spec.batch)
    max_trials: int = 100_000
    max_wall_time_s: float = 24 * 3600.0  # a job's search, and every single evaluation or training in it
    max_jobs_per_tenant: int = 20  # a tenant's unfinished jobs (queued, running, interrupted): 429 beyond
    max_running_per_tenant: int | None = None  # of those, run at once (None: every runner slot)
    heartbeat_timeout_s: float = 60.0  # a job's process silent this long is stopped and its job failed
    # the size of one network (an inline space's largest choices, a swept arch): what pricing,
    # building and training it cost grows with these
    max_depth: int = 64  # blocks in one stage
    max_blocks: int = 128  # blocks in one network, all stages
    max_width: int = 8192  # channels of any tensor: a stage's dim, its MLP's hidden (dim x mlp_ratio)
    max_heads: int = 64  # attention heads of one block (dim // head_dim)
    max_kernel: int = 31  # a pooling, convolution or attention window's side
    max_batch_pixels: int = 1 << 22  # images x H x W of one batch the job builds (proxy, training, export)
    max_priced_layers: int = 4_000_000  # layers x chips one sweep or comparison prices
    raise_hint: str = field(default="", compare=False)
    max_export_s: float = 900.0  # one export's run (build, training, tracing), after a start-up allowance

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            least = 0 if name == "max_gpus" else 1
            if name != "raise_hint" and value is not None and value < least:
                raise ValueError(f"limits: {name} must be >= {least}, got {value}")

    @classmethod
    def local(cls, max_workers: int | None = None) -> Limits:
        """This machine's defaults for ``nas run``: workers up to its CPUs unless raised; GPUs as
        many as this machine's Ray finds (it refuses more when the job starts)."""
        limits = cls(max_gpus=None, raise_hint="raise it with --max-workers if you mean it")
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
            if value is not None:
                hint = f"; {self.raise_hint}" if self.raise_hint and loc.startswith("workers") else ""
                out.extend(self.exceeds(loc, value, limit, what, fix + hint))

        w = spec.workers
        bound("workers.count", w.count, self.max_workers, "workers", "ask for fewer (omit it: one per CPU)")
        if w.count is not None and w.count <= self.max_workers:
            cpus = w.count * w.cpus_per_worker
            bound("workers.cpus_per_worker", cpus, self.max_workers, "CPUs (count x cpus_per_worker)", "ask for fewer")
        if w.gpus_per_worker and self.max_gpus is not None:
            if w.count is None:  # one worker per CPU would hold as many GPUs as the cluster has
                out.append(("workers.count", f"a job that asks GPUs states its workers here (at most {self.max_gpus}"
                            " GPUs in all, count x gpus_per_worker); set workers.count"))  # fmt: skip
            else:
                gpus, fix = w.count * w.gpus_per_worker, "ask for fewer workers or a smaller share"
                bound("workers.gpus_per_worker", gpus, self.max_gpus, "GPUs (count x gpus_per_worker)", fix)
        out += self.input_violations(spec.input_shape, spec.num_classes, spec.batch)
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
        evaluator = None if isinstance(spec.evaluator, PluginRef) else spec.evaluator
        if evaluator is not None:
            train = evaluator.train
            bound(
                "evaluator.train.timeout_s",
                train.timeout_s,
                self.max_wall_time_s,
                "s",
                "one training cannot outlast a job",
            )
            side = evaluator.resolution**2
            fix = "lower the resolution or the batch"
            bound(
                "evaluator.batch", evaluator.batch * side, self.max_batch_pixels, "pixels (batch x resolution^2)", fix
            )
            bound("evaluator.train.recipe.batch_size", train.recipe.batch_size * side, self.max_batch_pixels,
                  "pixels (batch_size x resolution^2)", fix)  # fmt: skip
        if isinstance(spec.space, SearchSpace):
            out += self.space_violations(spec.space, "space")
        return out

    def input_violations(
        self, input_shape: tuple[int, int, int], num_classes: int, batch: int
    ) -> list[tuple[str, str]]:
        """What a network is priced at: its input (C, H, W), its classes, the frames per batch."""
        c, h, w = input_shape
        return [
            *self.exceeds(
                "num_classes", num_classes, self.max_classes, "classes", "a classifier head this wide is a typo"
            ),
            *self.exceeds(
                "input_shape", max(h, w), self.max_input_side, "pixels a side", "deploy at a smaller resolution"
            ),
            *self.exceeds("input_shape", c, self.max_input_channels, "channels", "give (C, H, W), channels first"),
            *self.exceeds("batch", batch, self.max_batch, "frames", "price a smaller batch"),
        ]

    def space_violations(self, space: SearchSpace, loc: str) -> list[tuple[str, str]]:
        """An inline space's largest networks against the size limits (its choice lists are
        bounded by the space's own schema, so this costs microseconds)."""
        out: list[tuple[str, str]] = []
        if space.hierarchical is not None:
            h = space.hierarchical
            for i, stage in enumerate(h.stages):
                out += self._stage(f"{loc}.hierarchical.stages.{i}", stage)
            blocks = max(sum(max(s.depth) for s in h.stages[:n]) for n in h.num_stages)
            out += self.exceeds(f"{loc}.hierarchical.stages", blocks, self.max_blocks, "blocks in one network")
        if space.isotropic is not None:
            out += self._stage(f"{loc}.isotropic.stage", space.isotropic.stage)
            out += self.exceeds(f"{loc}.isotropic.patch_size", max(space.isotropic.patch_size), self.max_kernel,
                              "pixels a side (patch)")  # fmt: skip
        return out

    def arch_violations(self, arch: ArchConfig, loc: str) -> list[tuple[str, str]]:
        """One network against the size limits."""
        out: list[tuple[str, str]] = []
        for i, s in enumerate(arch.stages):
            options = {o: (getattr(s, o),) for o in ("kernel_size", "window_size", "head_dim") if getattr(s, o)}
            out += self._sizes(f"{loc}.stages.{i}", (s.depth,), (s.dim,), (s.mlp_ratio,), {s.mixer: options})
        out += self.exceeds(
            f"{loc}.stages", sum(s.depth for s in arch.stages), self.max_blocks, "blocks in one network"
        )
        out += self.exceeds(f"{loc}.stem_stride", arch.stem_stride, self.max_kernel, "pixels a side (patch)")
        return out

    def check_priced_layers(self, layers: int, loc: str, where: str = "body") -> None:
        """Refuse pricing ``layers`` (layers x chips) over ``max_priced_layers``."""
        over = self.exceeds(loc, layers, self.max_priced_layers, "layers x chips to price", "price fewer")
        if over:
            raise FieldError(errors=over, where=where)

    def _stage(self, loc: str, stage: Any) -> list[tuple[str, str]]:
        options = {m: stage.option_choices(m) for m in stage.mixers}
        return self._sizes(loc, stage.depth, stage.dim, stage.mlp_ratio, options)

    def _sizes(self, loc: str, depths, dims, mlp_ratios, options: dict[str, dict[str, tuple]]) -> list[tuple[str, str]]:
        """A stage's largest choices: ``options`` maps each mixer to its option -> choices."""
        out = self.exceeds(f"{loc}.depth", max(depths), self.max_depth, "blocks in one stage")
        out += self.exceeds(f"{loc}.dim", max(dims), self.max_width, "channels")
        out += self.exceeds(f"{loc}.mlp_ratio", int(max(dims) * max(mlp_ratios)), self.max_width,
                          "channels (dim x mlp_ratio)")  # fmt: skip
        for mixer, choices in options.items():
            for option in ("kernel_size", "window_size"):
                if option in choices:
                    out += self.exceeds(f"{loc}.{option}", max(choices[option]), self.max_kernel,
                                      f"pixels a side ({mixer})")  # fmt: skip
            if "head_dim" in choices:
                out += self.exceeds(f"{loc}.head_dim", max(dims) // min(choices["head_dim"]), self.max_heads,
                                  f"attention heads (dim / head_dim, {mixer})")  # fmt: skip
        return list(dict.fromkeys(out))  # one entry per field and message

    @staticmethod
    def exceeds(loc: str, value: float, limit: float, what: str, fix: str = "") -> list[tuple[str, str]]:
        """``[(loc, message)]`` if ``value`` is over ``limit``, else ``[]``."""
        if value <= limit:
            return []

        def shown(x: float) -> str:
            return f"{x:,}" if isinstance(x, int) else f"{x:g}"

        return [(loc, f"{shown(value)} is over the limit of {shown(limit)} {what}; {fix or 'see GET /limits'}")]


class QuotaError(Exception):
    """A tenant is at its quota of jobs (HTTP 429): nothing was created."""


def check_quota(store: Any, limits: Limits, tenant: str | None, *, exclude: int | None = None) -> None:
    """Refuse one more unfinished job or export for ``tenant`` (None: every one, auth off) at its
    quota: queued and running exports count with the unfinished jobs, since each takes a runner
    slot. ``exclude``: a job being resumed, already counted."""
    active = [j.id for s in UNFINISHED for j in store.list_jobs(status=s, tenant=tenant, limit=None) if j.id != exclude]
    exports = store.count_exports(status=UNFINISHED_EXPORTS, tenant=tenant)
    if len(active) + exports >= limits.max_jobs_per_tenant:
        who = f"tenant {tenant}" if tenant else "this service (auth off: one tenant)"
        raise QuotaError(
            f"{who} has {len(active)} unfinished jobs and {exports} unfinished exports, the limit "
            "(max_jobs_per_tenant, GET /limits); wait for one to finish, or cancel a job"
        )
