"""Where evaluations and trainings run: Ray actors (one per worker, each holding its evaluator and
data), or the job's own process (``workers.count: 0``, for debugging and sampler benchmarks).

A task is ``evaluate`` (the evaluator's scores of a candidate, seconds) or ``train`` (the candidate
trained under the job's recipe and measured, minutes; its weights come back as bytes).

Executors only execute: they never touch the database. Every outcome, failures included, comes
back to the search loop as an ``Outcome``.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nas.spec import JobSpec, SpecError


@dataclass(frozen=True)
class Outcome:
    ok: bool
    scores: dict[str, float] = field(default_factory=dict)
    failure: str | None = None
    eval_s: float = 0.0
    worker: str | None = None
    artifact: bytes | None = None  # a training's state_dict (torch.save), kept only when fully trained
    # a training's rungs, [{"steps", "of", "accuracy"}]: scores["accuracy"] is the last one's where it
    # trained to the end; a training stopped at an earlier rung (successive halving) has none
    rungs: tuple[dict[str, Any], ...] = ()
    # a full training's INT8 model (ONNX) and how it was quantized (nas.int8; "failed" where it did);
    # its INT8 accuracy is scores["accuracy_int8"]
    int8_onnx: bytes | None = None
    int8: dict[str, Any] | None = None
    precision: str | None = None  # what the training computed in (float32; bfloat16 autocast on CUDA)


TASKS = ("evaluate", "train")


@runtime_checkable
class Executor(Protocol):
    """What the search loop asks of an executor (``InlineExecutor``, ``RayExecutor``)."""

    @property
    def capacity(self) -> int:
        """Tasks it can take now (idle slots)."""
        ...

    def submit(self, arch_json: str, task: str = "evaluate", bars: Sequence[float | None] | None = None) -> int:
        """Start ``task`` (one of ``TASKS``) on a network; returns its ticket. Needs ``capacity > 0``.
        ``bars``: a training's accuracy bars at its rungs before the last (``nas.training.AccuracyMeter``)."""
        ...

    def wait(self, timeout: float) -> list[tuple[int, Outcome]]:
        """The tasks finished within ``timeout`` seconds (timed-out ones as failed outcomes), by ticket."""
        ...

    def cancel_all(self) -> list[int]:
        """Stop every running task; returns their tickets."""
        ...

    def shutdown(self) -> None:
        """Stop its workers (and a Ray it started)."""
        ...


def evaluate(evaluator: Any, arch: Any, worker: str | None) -> Outcome:
    """Run one evaluation; an exception or a non-finite accuracy is a failed outcome, not a crash."""
    start = time.perf_counter()
    try:
        raw = evaluator(arch)
        scores = {str(k): float(v) for k, v in dict(raw).items()}
        if not math.isfinite(scores.get("accuracy", math.nan)):
            raise ValueError(f"the evaluator returned no finite 'accuracy' (got {raw!r})")
    except Exception as err:  # the evaluator is user code: anything it raises is the candidate's failure
        return Outcome(False, failure=_failure(err), eval_s=time.perf_counter() - start)
    return Outcome(True, scores=scores, eval_s=time.perf_counter() - start, worker=worker)


def train(meter: Any, arch: Any, worker: str | None, bars: Sequence[float | None] | None = None) -> Outcome:
    """Train and measure one candidate (``nas.training.AccuracyMeter``) through its rungs, stopping
    at one below its bar; failures are outcomes."""
    start = time.perf_counter()
    try:
        rungs, result = meter.through_rungs(arch, bars)
    except Exception as err:
        return Outcome(False, failure=_failure(err), eval_s=time.perf_counter() - start)
    elapsed = time.perf_counter() - start
    if result is None:  # stopped at an early rung: no scores, no weights
        return Outcome(True, {}, eval_s=elapsed, worker=worker, rungs=tuple(rungs))
    scores = {"accuracy": result.accuracy}
    if result.accuracy_int8 is not None:
        scores["accuracy_int8"] = result.accuracy_int8
    return Outcome(
        True, scores, eval_s=elapsed, worker=worker, artifact=result.weights, rungs=tuple(rungs),
        int8_onnx=result.int8_onnx, int8=result.int8, precision=result.precision,
    )  # fmt: skip


def _failure(err: Exception) -> str:
    last = traceback.extract_tb(err.__traceback__)[-1:]
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(err).__name__}: {err}{where}"


def _meter(spec: JobSpec) -> Any:
    from nas.training import AccuracyMeter

    return AccuracyMeter(spec)


class InlineExecutor:
    """Evaluates in the calling process, one at a time; trial timeouts cannot be enforced here."""

    def __init__(self, spec: JobSpec, evaluator: Any, space: Any) -> None:
        self.spec, self.evaluator, self.space = spec, evaluator, space
        self._meter = None
        self._done: list[tuple[int, Outcome]] = []
        self._next = 0

    @property
    def capacity(self) -> int:
        return 1 - len(self._done)

    def submit(self, arch_json: str, task: str = "evaluate", bars: Sequence[float | None] | None = None) -> int:
        ticket, self._next = self._next, self._next + 1
        arch = self.space.arch_from_json(arch_json)
        if task == "train":
            self._meter = self._meter or _meter(self.spec)
            self._done.append((ticket, train(self._meter, arch, "inline", bars)))
        else:
            self._done.append((ticket, evaluate(self.evaluator, arch, "inline")))
        return ticket

    def wait(self, timeout: float) -> list[tuple[int, Outcome]]:
        done, self._done = self._done, []
        return done

    def cancel_all(self) -> list[int]:
        return []

    def shutdown(self) -> None:
        pass


class _EvalActor:
    """One worker: builds the job's space and evaluator once, then evaluates architectures."""

    def __init__(self, spec_json: str, sys_path: list[str], threads: int) -> None:
        for entry in reversed(sys_path):  # plug-ins import on workers as they did in the driver
            if entry not in sys.path:
                sys.path.insert(0, entry)
        from nas.plugins import make_evaluator, resolve_space

        spec = JobSpec.model_validate_json(spec_json)
        self.spec = spec
        self.space = resolve_space(spec)
        self.evaluator = make_evaluator(spec)
        self.meter = None  # built on a worker's first training: its data loads then
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:
            pass
        self.node = _where()  # the worker string outcomes record

    def ready(self) -> str:
        return self.node

    def evaluate(self, arch_json: str) -> Outcome:
        return evaluate(self.evaluator, self.space.arch_from_json(arch_json), self.node)

    def train(self, arch_json: str, bars: list[float | None] | None = None) -> Outcome:
        self.meter = self.meter or _meter(self.spec)
        return train(self.meter, self.space.arch_from_json(arch_json), self.node, bars)


def _where() -> str:
    """Where this actor runs: its Ray node id, and the GPUs Ray assigned it (Ray's ids on that node),
    e.g. ``<node>/gpu:1``; a CPU-only worker is its node id alone."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    gpus = ray.get_gpu_ids()
    return f"{node}/gpu:{','.join(str(g) for g in gpus)}" if gpus else node


def gpu_slots(nodes: list[dict[str, Any]], per: float) -> int:
    """Workers of ``per`` GPUs each that fit on these Ray nodes (``ray.nodes()``): a share below one
    GPU lives on one GPU, so 0.4 fits twice per GPU, not 2.5 times."""
    slots = 0
    for node in nodes:
        gpus = node.get("Resources", {}).get("GPU", 0) if node.get("Alive", True) else 0
        slots += int(gpus // per) if per >= 1 else int(gpus + 1e-9) * int(1 / per + 1e-9)
    return slots


class RayExecutor:
    """``workers.count`` Ray actors; a local Ray is started unless one is running or an address is given.

    With ``workers.gpus_per_worker`` each actor reserves that share of a GPU (Ray sets its
    ``CUDA_VISIBLE_DEVICES``), and no more workers start than the cluster's GPUs hold; an actor
    that reserves none is given no GPU (``CUDA_VISIBLE_DEVICES`` empty: Ray >= 2.60 no longer
    hides the GPUs from it).
    """

    def __init__(self, spec: JobSpec) -> None:
        import ray

        self.ray = ray
        self.started_ray = False
        if not ray.is_initialized():
            address = spec.ray_address()
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
            if address:
                ray.init(address=address, **kwargs)
            else:
                cpus = max(os.cpu_count() or 1, math.ceil((spec.workers.count or 0) * spec.workers.cpus_per_worker))
                # "local": a new instance of our own, even where `ray start` left a cluster that a bare
                # ray.init() would join (and then refuse num_cpus); Ray finds this machine's GPUs itself
                # (those CUDA_VISIBLE_DEVICES shows)
                ray.init(address="local", num_cpus=cpus, **kwargs)
            self.started_ray = True
        per, gpus = spec.workers.cpus_per_worker, spec.workers.gpus_per_worker
        count = spec.workers.count or max(1, int(ray.cluster_resources().get("CPU", 1) // per))
        if gpus:
            count = self._gpu_bound(spec, count, gpu_slots(ray.nodes(), gpus))
        training = getattr(spec.evaluator, "train", None)
        self.timeouts = {"evaluate": spec.budget.trial_timeout_s, "train": training.timeout_s if training else 0}
        # an actor without a GPU share must not see one: Ray no longer empties CUDA_VISIBLE_DEVICES
        # for it, and a worker process's environment is set before anything in it imports torch
        hidden = {} if gpus else {"runtime_env": {"env_vars": {"CUDA_VISIBLE_DEVICES": ""}}}
        self._actor_cls = ray.remote(_EvalActor).options(num_cpus=per, num_gpus=gpus, max_concurrency=1, **hidden)
        self._args = (spec.model_dump_json(), list(sys.path), max(1, int(per)))
        self._idle = [self._actor_cls.remote(*self._args) for _ in range(count)]
        self._running: dict[Any, tuple[int, Any, float, float]] = {}  # ref -> (ticket, actor, started, timeout)
        self._next = 0
        try:  # every worker has built its evaluator before the first trial: errors surface here, once
            ray.get([actor.ready.remote() for actor in self._idle])
        except ray.exceptions.RayError as err:
            self.shutdown()
            raise RuntimeError(f"the Ray workers could not start: {_describe(err)}") from err

    def _gpu_bound(self, spec: JobSpec, count: int, slots: int) -> int:
        """The workers to start: ``count``, or as many as the cluster's GPUs hold where the spec left
        the count to Ray; a request the cluster cannot hold fails now rather than waiting forever."""
        if slots >= (spec.workers.count or 1):
            return min(count, slots)
        total = self.ray.cluster_resources().get("GPU", 0)
        if self.started_ray:
            self.ray.shutdown()
        asked = f"{spec.workers.count} workers x " if spec.workers.count else ""
        raise SpecError(
            "workers.gpus_per_worker",
            f"{asked}{spec.workers.gpus_per_worker:g} GPUs asked, the Ray cluster has {total:g} GPUs, room for "
            f"{slots} such workers; ask fewer workers or a smaller share, set gpus_per_worker: 0 to train on "
            "CPUs, or join a cluster with GPUs (workers.address)",
        )

    @property
    def capacity(self) -> int:
        return len(self._idle)

    def submit(self, arch_json: str, task: str = "evaluate", bars: Sequence[float | None] | None = None) -> int:
        actor = self._idle.pop()
        ticket, self._next = self._next, self._next + 1
        ref = actor.train.remote(arch_json, list(bars or [])) if task == "train" else actor.evaluate.remote(arch_json)
        self._running[ref] = (ticket, actor, time.monotonic(), self.timeouts[task])
        return ticket

    def wait(self, timeout: float) -> list[tuple[int, Outcome]]:
        ray = self.ray
        if not self._running:
            return []
        ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=timeout, fetch_local=True)
        results = []
        for ref in ready:
            ticket, actor, started, _ = self._running.pop(ref)
            try:
                outcome = ray.get(ref)
                self._idle.append(actor)
            except ray.exceptions.RayError as err:  # the worker died: out of memory, killed, crashed
                outcome = Outcome(False, failure=_describe(err), eval_s=time.monotonic() - started)
                self._replace(actor)
            results.append((ticket, outcome))
        now = time.monotonic()
        for ref, (ticket, actor, started, timeout) in list(self._running.items()):
            if now - started > timeout:
                del self._running[ref]
                self._replace(actor)
                results.append((ticket, Outcome(False, failure=f"timeout: still running after {timeout:g} s")))
        return results

    def cancel_all(self) -> list[int]:
        """Stop every running evaluation; returns their tickets."""
        tickets = []
        for ticket, actor, *_ in self._running.values():
            self.ray.kill(actor)
            tickets.append(ticket)
        self._running.clear()
        return tickets

    def shutdown(self) -> None:
        for _, actor, *_ in self._running.values():
            self.ray.kill(actor)
        for actor in self._idle:
            self.ray.kill(actor)
        self._running.clear()
        self._idle.clear()
        if self.started_ray:
            self.ray.shutdown()

    def _replace(self, actor: Any) -> None:
        self.ray.kill(actor)
        self._idle.append(self._actor_cls.remote(*self._args))


def _describe(err: Exception) -> str:
    name = type(err).__name__
    if "OutOfMemory" in name:
        return f"out of memory: {str(err).splitlines()[0]}"
    text = str(err).strip().splitlines()
    return f"{name}: {text[-1] if text else ''}"


def make_executor(spec: JobSpec, *, evaluator: Any = None, space: Any = None) -> Executor:
    if spec.workers.count == 0:
        return InlineExecutor(spec, evaluator, space)
    return RayExecutor(spec)
