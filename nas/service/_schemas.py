"""The API's request and response bodies: what the OpenAPI schema publishes, with examples."""

from __future__ import annotations

import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from hwmodels import Totals
from nas.limits import Limits as JobLimits
from nas.service._derive import record_model, record_values, row_model
from nas.service._redact import redact, redact_tree
from nas.service._settings import REQUEST_LIMITS, Settings
from nas.status import CandidateStatus, ExportStatus, JobStatus
from nas.store import ROW_FIELDS, CandidateRecord, ExportRecord, JobRecord

_EXAMPLE_TIME = "2026-11-26T10:00:00+00:00"


class Error(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="what went wrong; for invalid input, one entry per field: loc (its path), msg, type"
    )
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"detail": "job 7 is not among your jobs; GET /jobs lists them"}]}
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "auth is on and the request has no valid `Authorization: Bearer` token"},
    404: {"model": Error, "description": "no such job, candidate or export (or another tenant's)"},
    409: {
        "model": Error,
        "description": "the job's or export's state does not allow it (e.g. resuming a running job, downloading a"
        " queued export)",
    },
    413: {"model": Error, "description": "the body is over the service's limit"},
    422: {"model": Error, "description": "invalid input, or over a limit (GET /limits); `detail` names each field"},
    429: {"model": Error, "description": "the tenant is at its quota of unfinished jobs and exports (GET /limits)"},
}


class Progress(BaseModel):
    trials: int
    budget_trials: int | None
    budget_wall_time_s: float | None
    complete: int = Field(description="distinct architectures scored")
    infeasible: int = Field(description="rejected by a hard constraint before being built")
    failed: int
    duplicates: int = Field(description="trials that drew an architecture already evaluated")
    front: int = Field(description="candidates on the Pareto front")
    trainings: int = Field(0, description="candidates trained (measured) so far")
    trainings_planned: int = Field(
        0, description="trainings the job does in all: its predictor's during the search, the front's best at the end"
    )


class Best(BaseModel):
    objective: str
    value: float | None
    candidate_id: int
    name: str


JOB_EXAMPLE = {
    "id": 1, "name": "edge-classifier", "tags": ["demo"], "spec": {"name": "edge-classifier"}, "status": "running",
    "created_at": _EXAMPLE_TIME, "started_at": _EXAMPLE_TIME, "finished_at": None, "heartbeat_at": _EXAMPLE_TIME,
    "cancel_requested": False, "error": None, "hypervolume": 0.42,
    "reference_point": {"accuracy": 0.1, "latency_ms": 1.25, "energy_mj": 3.0}, "eval_seconds": 130.5,
    "run_seconds": 72.0, "tenant": None, "managed": True, "predictor": {}, "train_final": 3,
    "constraint_report": {}, "calibration": {}, "train_top": 3, "accuracy_kind": "predicted",
    "accuracy_label": "accuracy", "task": "classification", "metric": "accuracy",
    "progress": {"trials": 120, "budget_trials": 200, "budget_wall_time_s": 240, "complete": 61, "infeasible": 52,
                 "failed": 0, "duplicates": 7, "front": 9, "trainings": 12, "trainings_planned": 15},
    "objectives": ["accuracy", "latency_ms", "energy_mj"],
    "best": {"objective": "accuracy", "value": 0.71, "candidate_id": 57, "name": "p4-pool2x48-att2x96"},
    "eta_s": 48.0,
}  # fmt: skip
PROGRESS = {  # Progress's fields from the job's counts: shown there, not twice
    "trials": "n_trials", "complete": "n_complete", "infeasible": "n_infeasible", "failed": "n_failed",
    "duplicates": "n_duplicates", "front": "n_front",
}  # fmt: skip

Job = record_model(
    JobRecord,
    "Job",
    doc="A search job: the store's record (nas.store.JobRecord) less what stays on the server, with its progress.",
    hidden={
        "owner": "the host:pid of its process: the server's",
        "study_name": "Optuna's name for it, internal",
        "accelerator": "the resolved chip (kilobytes a job): the spec names it, GET /accelerators describes it",
        "budget_trials": "in progress",
        "final_top": "an older name of train_final, never sent",
        "n_trained": "in progress",
        "trainings_planned": "in progress",
        **{count: "in progress" for count in PROGRESS.values()},
    },
    types={"status": JobStatus},
    descriptions={
        "managed": "the service runs it, and resumes it after a restart",
        "error": "why it failed (server paths and URLs removed)",
        "accuracy_kind": "what `accuracy` is: predicted (the task's metric, 0-1: top-1, mAP or mIoU, under"
        " predictor.recipe; measured where measured_accuracy is set), score (a proxy's ranking score, no units)"
        " or evaluator (a plug-in's value)",
        "task": "what its networks do: classification, detection or segmentation (nas.tasks)",
        "metric": "the name of the task's metric its accuracy fields hold: accuracy (top-1), map (COCO"
        " mAP@[.5:.95]) or miou (mean IoU); a spec, --where and --sort may use it",
        "accuracy_label": "how `accuracy` is shown: the task's metric with its units, or proxy score",
        "predictor": "the job's accuracy predictor: recipe, candidates measured, leave-one-out and prospective"
        " errors (predicted before training vs measured)",
        "calibration": "deprecated: the same as predictor (kept for older clients)",
        "train_top": "deprecated: the same as train_final (kept for older clients)",
        "train_final": "the front's best measured at the job's end: the spec's train.final, or more asked by"
        " POST /jobs/{id}/train",
        "constraint_report": "at the end: which constraints rejected how many candidates, and how far to loosen each",
    },
    views={
        "progress": (Progress, Field(description="trials against the budget, by outcome")),
        "objectives": (list[str], Field(description="the spec's objectives, in order")),
        "best": (Best | None, Field(description="the front's best candidate on the first objective")),
        "eta_s": (float | None, Field(description="seconds to the budget at the rate so far (running jobs)")),
    },
    examples=[JOB_EXAMPLE],
)


class JobPage(BaseModel):
    items: list[Job]
    total: int
    limit: int
    offset: int


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    top: int = Field(ge=1, le=100, description="measure the front's best this many (those not yet measured)")


class HypervolumePoint(BaseModel):
    n_trials: int
    hypervolume: float
    front_size: int


Candidate = record_model(
    CandidateRecord,
    "Candidate",
    doc="One distinct architecture a job drew: the store's record (nas.store.CandidateRecord).",
    types={"arch": dict[str, Any], "status": CandidateStatus},
    descriptions={
        "arch": "the architecture (stages, mixers, widths); arch.json of an export",
        "violations": "constraint -> relative excess over its bound",
    },
    views={
        "layers": (
            list[dict[str, Any]] | None,
            Field(None, description="per-layer hardware table (unit, time, energy by kind); on the candidate route"),
        )
    },
)


class CandidatePage(BaseModel):
    items: list[Candidate]
    limit: int
    offset: int


ParetoRow = row_model(
    CandidateRecord,
    "ParetoRow",
    ROW_FIELDS,
    types={"arch": dict[str, Any], "params": int},  # a count; the other metrics are floats
    rest=float,  # the metrics, each in its unit (nas.objectives.METRICS)
    doc="One front member as a flat row (nas.store.CandidateRecord.row); `fields` picks some of its keys.",
)


class ParetoPage(BaseModel):
    objectives: list[str]
    items: list[ParetoRow] = Field(description="flat rows: id, name, arch_hash, trial_number, metrics, arch")
    limit: int
    offset: int
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "objectives": ["accuracy", "latency_ms", "energy_mj"],
                    "items": [{"id": 57, "name": "p4-pool2x48-att2x96", "accuracy": 0.71, "latency_ms": 0.9,
                               "energy_mj": 2.1}],
                    "limit": 50, "offset": 0,
                }
            ]
        }
    )  # fmt: skip


class ExportRequest(BaseModel):
    """What to export: a candidate by id or hash prefix, else the best on the front under ``where``
    sorted by ``sort`` (default: the first objective)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"where": "latency_ms<1.25,energy_mj<3", "formats": "default"}, {"candidate": 57}]
        },
    )
    candidate: int | str | None = None
    where: str | None = Field(default=None, max_length=2000, description="bounds, e.g. 'latency_ms<1.25,energy_mj<3'")
    sort: str | None = None
    formats: str = Field(
        default="default", max_length=200,
        description="default (state_dict, exported_program, onnx), all (adds torchscript, deprecated by torch), "
        "or some of state_dict, exported_program, onnx, torchscript",
    )  # fmt: skip
    train_steps: int = Field(
        default=0, ge=0, description="train on the job's dataset first (0: no); at most max_train_steps (GET /limits)"
    )
    train_batch: int = Field(default=32, ge=2, description="images a step; with the input, at most max_batch_pixels")
    allow_untrained: bool = Field(
        default=False,
        description="export a candidate the job never trained, with initialised weights (the card says so); "
        "otherwise refused: POST /jobs/{id}/train first, or ask train_steps",
    )
    int8: bool = Field(
        default=False,
        description="also ship model.int8.onnx: the INT8 model (post-training static quantization, QDQ) the job "
        "measured the candidate's INT8 accuracy on, which runs in onnxruntime alone; refused for a candidate the "
        "job has not measured (POST /jobs/{id}/train first)",
    )


ExportOut = record_model(
    ExportRecord,
    "ExportOut",
    doc="An export: the store's record (nas.store.ExportRecord) less what stays on the server, with its URLs.",
    hidden={"path": "the zip's place on the server's disk", "owner": "the host:pid of its process: the server's"},
    types={"status": ExportStatus},
    descriptions={
        "error": "why it failed",
        "request": "formats, train_steps, train_batch",
        "card": "the model card ({} until complete)",
    },
    views={
        "url": (str, Field(description="where to download the zip once complete (409 before)")),
        "card_url": (str, Field(description="this record: poll it until the status is complete or failed")),
        "files": (dict[str, str], Field(description="what -> file name in the zip ({} until complete)")),
    },
)


class Accelerator(BaseModel):
    name: str
    description: str
    cores: int
    clock_mhz: float
    imc_array: str
    default_mapping: str


class Space(BaseModel):
    name: str
    description: str
    size: int | None = Field(description="number of distinct architectures (None: too many to count)")
    definition: dict[str, Any]


_REQUEST_LIMIT_DOCS = {
    "max_body_bytes": "a request's body",
    "max_page": "items on one page of a list (limit)",
    "max_variants": "chip variants one POST /hw/sweep prices",
    "max_accelerators": "accelerators one GET /jobs/{id}/compare re-prices",
    "max_train_steps": "training steps one export may ask for",
}
Limits = record_model(
    JobLimits,
    "Limits",
    doc="What one job may ask for here, and one request: over a limit a request is refused (422) and nothing"
    " is created.",
    hidden={"raise_hint": "how an error says a limit is raised"},
    descriptions={
        "max_workers": "workers x cpus_per_worker per job",
        "max_gpus": "GPUs per job: workers x gpus_per_worker (a count left to Ray: one worker's share); 0: none",
        "max_input_side": "H and W of input_shape",
        "max_wall_time_s": "a job's search, and any one evaluation or training in it",
        "max_jobs_per_tenant": "unfinished jobs (queued, running, interrupted) and exports (queued, running); 429"
        " beyond",
        "max_running_per_tenant": "of those, run at once; null: every runner slot",
        "heartbeat_timeout_s": "a job's process silent this long is stopped, its job failed",
        "max_depth": "blocks in one stage of a network (an inline space's, a swept arch's)",
        "max_blocks": "blocks in one network, all stages",
        "max_width": "channels of any tensor: a stage's dim, and dim x mlp_ratio",
        "max_heads": "attention heads of one block (dim / head_dim)",
        "max_kernel": "a pooling, convolution, attention window's or patch's side",
        "max_batch_pixels": "images x H x W of one batch a job builds (proxy, training, export)",
        "max_priced_layers": "layers x chips one sweep or comparison prices",
        "max_export_s": "one export's run (build, training, tracing): stopped and failed beyond",
    },
    views={  # the service's own, from its settings
        name: (typing.get_type_hints(Settings)[name], Field(description=_REQUEST_LIMIT_DOCS.get(name)))
        for name in REQUEST_LIMITS
    },
)


class Health(BaseModel):
    """Without a token (auth on) only ``status``: who may ask says nothing of the server."""

    status: str
    version: str | None = None
    auth: bool | None = None
    jobs_running: list[int] | None = Field(default=None, description="the caller's jobs running now")


class CompareRow(BaseModel):
    """One candidate priced on one accelerator (``nas.whatif``)."""

    id: int
    name: str
    accuracy: float | None = Field(description="as the job measured or predicted it (the chip does not change it)")
    params: float | None
    latency_ms: float = Field(description="ms per frame at the job's input shape, batch and mode")
    throughput_fps: float
    energy_mj: float = Field(description="mJ per frame")
    power_w: float
    area_mm2: float | None
    bound: str = Field(description="what limits it: compute, memory, ...")
    deployable: bool
    feasible: bool = Field(description="meets the job's constraints on this accelerator")
    violations: dict[str, float] = Field(description="constraint -> relative excess over its bound")
    on_front: bool = Field(description="on the front of the feasible rows on this accelerator")


class ComparedAccelerator(BaseModel):
    accelerator: str
    area_mm2: float | None
    feasible: int = Field(description="rows meeting the job's constraints")
    front: int = Field(description="rows on the front here")
    kept_from_job_front: int = Field(description="of those, on the job's own front")
    best: dict[str, float] = Field(description="metric -> the front's best value here")
    rows: list[CompareRow]


class Comparison(BaseModel):
    job: int
    objectives: list[str]
    candidates: Literal["all", "front"]
    accelerators: list[ComparedAccelerator] = Field(description="the job's own chip first")


SweepRow = create_model(
    "SweepRow",
    __doc__="One chip of the grid: hwmodels.Totals, its area, and its knobs' values as keys too (e.g. ``cores``).",
    __config__=ConfigDict(extra="allow"),
    **{name: (kind, ...) for name, kind in typing.get_type_hints(Totals).items()},
    area_mm2=(float, ...),
)


class Sweep(BaseModel):
    network: str
    base: str
    grid: dict[str, list[float]]
    rows: list[SweepRow]


def job_out(job: JobRecord, best: Best | None, eta_s: float | None) -> Job:
    budget = job.spec.get("budget", {})
    progress = Progress(
        budget_trials=budget.get("trials"),
        budget_wall_time_s=budget.get("wall_time_s"),
        **{name: getattr(job, count) for name, count in PROGRESS.items()},
        trainings=job.n_trained,
        trainings_planned=job.trainings_planned,
    )
    values = record_values(
        Job, job, progress=progress, objectives=list(job.spec.get("objectives", [])), best=best, eta_s=eta_s,
        error=redact(job.error),  # a traceback's paths, a database's URL: the server's own
        predictor=(predictor := redact_tree(job.predictor)), calibration=predictor,  # a data folder's server path,
        spec=redact_tree(job.spec),  # a failed training's traceback: the server's own
    )  # fmt: skip
    return Job.model_validate(values)


def candidate_out(c: CandidateRecord, layers: list[dict[str, Any]] | None = None) -> Candidate:
    return Candidate.model_validate(record_values(Candidate, c, layers=layers))


def export_out(record: ExportRecord) -> ExportOut:
    values = record_values(
        ExportOut, record, error=redact(record.error), card=redact_tree(record.card), url=f"/exports/{record.id}",
        card_url=card_url(record), files=record.card.get("files", {}),
    )  # fmt: skip
    return ExportOut.model_validate(values)


def card_url(record: ExportRecord) -> str:
    return f"/exports/{record.id}/card"
