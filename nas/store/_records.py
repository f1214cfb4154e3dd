"""What the store hands out and takes in: frozen records, detached from any session."""

from __future__ import annotations

import dataclasses
import json
import operator
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nas.objectives import METRICS, accuracy_label
from nas.status import (  # noqa: F401 - the statuses' tuples are re-exported by nas.store
    CANDIDATE_STATUSES,
    JOB_STATUSES,
    CandidateStatus,
    ExportStatus,
    JobStatus,
)
from nas.tasks import METRIC_ALIASES, get_task

METRIC_COLUMNS = tuple(m for m in METRICS if m not in ("trial_number", "eval_s"))


class StoreError(RuntimeError):
    """The database refused or failed; the message names the database and what to do."""


class NotFoundError(StoreError, LookupError):
    """No such job or candidate."""


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything the store stores is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# The records below are plain dataclasses with typed fields: the store fills each from the row of
# the same field names (``_convert``), the API's response models derive from them. Adding a field
# is two edits: the row (``_models``) and the record.


@dataclass(frozen=True)
class JobRecord:
    id: int
    name: str
    tags: tuple[str, ...]
    spec: dict[str, Any]
    accelerator: dict[str, Any]
    study_name: str
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    owner: str | None
    cancel_requested: bool
    error: str | None
    n_trials: int
    n_complete: int
    n_infeasible: int
    n_failed: int
    n_duplicates: int
    n_front: int
    hypervolume: float | None
    reference_point: dict[str, float | None]
    eval_seconds: float
    run_seconds: float
    tenant: str | None = None
    managed: bool = False
    predictor: dict[str, Any] = field(default_factory=dict)  # the accuracy predictor and its held-out errors
    train_final: int = 0  # the front's best measured at the end: the spec's train.final, or more asked (`nas train`)
    n_trained: int = 0  # candidates measured (trained) so far, the end's included: the training phase's progress
    # which constraints rejected how many candidates and how far to loosen each (nas.verdict.constraint_report);
    # set when the job ends; {} before
    constraint_report: dict[str, Any] = field(default_factory=dict)

    @property
    def budget_trials(self) -> int | None:
        return self.spec["budget"]["trials"]

    @property
    def accuracy_kind(self) -> str:
        """``predicted`` (an accuracy, 0-1), ``score`` (a proxy's ranking score) or ``evaluator``."""
        evaluator = self.spec.get("evaluator") or {}
        if "plugin" in evaluator:
            return "evaluator"
        train = evaluator.get("train") or {}
        return "predicted" if train.get("candidates", 0) > 0 or train.get("final", 0) > 0 else "score"

    @property
    def task(self) -> str:
        """What its networks do (``nas.tasks``): classification, detection or segmentation."""
        return self.spec.get("task") or "classification"

    @property
    def metric(self) -> str:
        """The name of its task's metric, which its ``accuracy`` fields hold: accuracy, map or miou."""
        return get_task(self.task).metric

    @property
    def accuracy_label(self) -> str:
        """What this job's ``accuracy`` is called where it is shown (``nas.objectives.accuracy_label``):
        "proxy score" in a job that trains nothing, else its task's metric ("accuracy", "mAP@[.5:.95]", "mIoU")."""
        return accuracy_label(self.accuracy_kind, self.task)

    @property
    def trainings_planned(self) -> int:
        """Trainings the job does in all: its predictor's during the search, then the front's best at
        its end (``train_final``, more when asked); 0 in a job that trains nothing."""
        if self.accuracy_kind != "predicted":
            return 0
        return int(((self.spec.get("evaluator") or {}).get("train") or {}).get("candidates", 0)) + self.train_final

    @property
    def final_top(self) -> int:
        """Deprecated alias of ``train_final``."""
        return self.train_final

    @property
    def train_top(self) -> int:
        """Deprecated alias of ``train_final``."""
        return self.train_final

    @property
    def calibration(self) -> dict[str, Any]:
        """Deprecated alias of ``predictor`` ("calibration" is the chip model's fit)."""
        return self.predictor

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("created_at", "started_at", "finished_at", "heartbeat_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["tags"] = list(self.tags)
        data["calibration"], data["train_top"] = self.predictor, self.train_final  # deprecated keys, kept for readers
        return data


@dataclass(frozen=True)
class CandidateIn:
    """A result the search loop records: what a candidate is, before the store gives it an id."""

    arch_hash: str
    name: str
    arch: str  # JSON
    status: CandidateStatus  # complete | infeasible | failed (their strings are accepted)
    metrics: dict[str, float]  # METRIC_COLUMNS that are known (hardware always; accuracy when scored)
    deployable: bool
    failure: str | None = None
    violations: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    eval_s: float | None = None
    worker: str | None = None


@dataclass(frozen=True, kw_only=True)
class CandidateRecord(CandidateIn):
    """A candidate as the store holds it: the loop's ``CandidateIn`` with its id, job, first trial and
    front membership. A field of both is declared once, in ``CandidateIn``."""

    id: int
    job_id: int
    trial_number: int
    on_front: bool
    created_at: datetime
    metrics: dict[str, float | None]  # every one of METRIC_COLUMNS (None: not known)
    deployable: bool | None  # None: rows from before it was stored
    # its trainings' rungs, [{"steps", "of", "accuracy"}] (successive halving): () if never trained
    rungs: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["arch"] = json.loads(self.arch)
        data["created_at"] = self.created_at.isoformat()
        return data

    def row(self) -> dict[str, Any]:
        """One flat row (the keys of ``ROW_FIELDS``): what `nas pareto` and the Pareto API return."""
        fields = {**self.metrics, "arch": json.loads(self.arch)}
        return {key: fields[key] if key in fields else getattr(self, key) for key in ROW_FIELDS}


@dataclass(frozen=True)
class TokenRecord:
    id: int
    tenant: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["created_at"] = self.created_at.isoformat()
        data["revoked_at"] = self.revoked_at.isoformat() if self.revoked_at else None
        return data


@dataclass(frozen=True)
class ExportRecord:
    id: int
    job_id: int
    candidate_id: int
    path: str | None  # the zip on the service's disk, once complete (never shown to tenants)
    card: dict[str, Any]  # {} until complete
    created_at: datetime
    status: ExportStatus = ExportStatus.COMPLETE
    request: dict[str, Any] = field(default_factory=dict)  # formats, train_steps, train_batch
    tenant: str | None = None
    error: str | None = None
    owner: str | None = None  # host:pid of the process running it
    heartbeat_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class TrialRecord:
    number: int
    candidate_id: int
    outcome: str  # complete | infeasible | failed | duplicate
    values: list[float] | None
    constraints: dict[str, float] | list[float] | None  # name -> excess (a list in rows from before they were named)


@dataclass(frozen=True)
class Measured:
    """One training result: a candidate's measured accuracy and, where kept, its trained weights;
    with the INT8 accuracy of those weights quantized (and the INT8 model and its recipe) where measured."""

    candidate_id: int
    accuracy: float
    state_dict: bytes | None
    recipe: dict[str, Any]
    predicted: float | None = None  # what the job predicted for it just before (its held-out check)
    predicted_std: float | None = None
    accuracy_int8: float | None = None
    int8_onnx: bytes | None = None  # the INT8 ONNX model accuracy_int8 was measured on
    int8: dict[str, Any] | None = None  # how it was quantized (nas.int8.Int8Recipe.describe)


_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq, "!=": operator.ne}
_BOUND = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(<=|>=|!=|<|>|==?)\s*(-?[\d.]+(?:e-?\d+)?)\s*$", re.IGNORECASE)
FILTERABLE = (*METRIC_COLUMNS, "trial_number", "eval_s")
COUNT_METRICS = ("params", "macs", "trial_number")  # whole numbers: `=` can match them
ROW_FIELDS = ("id", "arch_hash", "name", "trial_number", *METRIC_COLUMNS, "deployable", "eval_s", "worker", "arch")


@dataclass(frozen=True)
class Bound:
    metric: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


def parse_bounds(text: str | list[str] | tuple[str, ...] | None) -> list[Bound]:
    """``'latency_ms<2, energy_mj<=3'`` (or a list of such) -> bounds; errors name the bad part."""
    if not text:
        return []
    parts = [p for chunk in ([text] if isinstance(text, str) else text) for p in chunk.split(",") if p.strip()]
    bounds = []
    for part in parts:
        m = _BOUND.match(part)
        if not m:
            raise ValueError(f"where: cannot read {part.strip()!r}; write METRIC OP NUMBER, e.g. 'latency_ms<2'")
        metric, op, value = m.group(1), m.group(2), float(m.group(3))
        if metric not in FILTERABLE and metric not in METRIC_ALIASES:  # map, miou: the job's own (store.pareto)
            raise ValueError(f"where: unknown metric {metric!r}; known: {', '.join(FILTERABLE)}")
        op = "=" if op == "==" else op
        if op == "=" and metric not in COUNT_METRICS:  # a latency is never exactly 2: it would match nothing
            low, high = sorted((value * 0.95, value * 1.05))
            raise ValueError(
                f"where: {metric}={value:g} asks for exact equality of a measured number, which matches "
                f"only that very float; write a bound, e.g. '{metric}<={value:g}', or a range around it, "
                f"e.g. '{metric}>={low:.4g},{metric}<={high:.4g}'"
            )
        bounds.append(Bound(metric, op, value))
    return bounds
