"""The API's request and response bodies: what the OpenAPI schema publishes, with examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nas.service._redact import redact, redact_tree
from nas.store import CandidateRecord, JobRecord

_EXAMPLE_TIME = "2026-11-26T10:00:00+00:00"


class Error(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="what went wrong; for invalid input, one entry per field: loc (its path), msg, type"
    )
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"detail": "job 7 is not in sqlite:///nas.db; `nas jobs` lists the jobs there"}]
        }
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


class Best(BaseModel):
    objective: str
    value: float | None
    candidate_id: int
    name: str


class Job(BaseModel):
    id: int
    name: str
    tags: list[str]
    status: str = Field(description="queued | running | completed | cancelled | failed | interrupted")
    tenant: str | None
    managed: bool = Field(description="the service runs it, and resumes it after a restart")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    error: str | None
    progress: Progress
    objectives: list[str]
    hypervolume: float | None
    reference_point: dict[str, float | None]
    best: Best | None = Field(description="the front's best candidate on the first objective")
    eta_s: float | None = Field(description="seconds to the budget at the rate so far (running jobs)")
    run_seconds: float
    eval_seconds: float
    spec: dict[str, Any]
    accuracy_kind: str = Field(
        description="what `accuracy` is: predicted (top-1, 0-1, under calibration.recipe; measured where"
        " measured_accuracy is set), score (a proxy's ranking score, no units) or evaluator (a plug-in's value)"
    )
    calibration: dict[str, Any] = Field(
        description="the job's accuracy predictor: recipe, candidates measured, leave-one-out and prospective"
        " errors (predicted before training vs measured)"
    )
    train_top: int = Field(description="the front's best measured at the job's end")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1, "name": "edge-classifier", "tags": ["demo"], "status": "running", "tenant": None, "managed": True,
                    "created_at": _EXAMPLE_TIME, "started_at": _EXAMPLE_TIME, "finished_at": None,
                    "heartbeat_at": _EXAMPLE_TIME, "cancel_requested": False, "error": None,
                    "progress": {"trials": 120, "budget_trials": 200, "budget_wall_time_s": 240, "complete": 61,
                                 "infeasible": 52, "failed": 0, "duplicates": 7, "front": 9},
                    "objectives": ["accuracy", "latency_ms", "energy_mj"], "hypervolume": 0.42,
                    "reference_point": {"accuracy": 0.1, "latency_ms": 1.25, "energy_mj": 3.0},
                    "best": {"objective": "accuracy", "value": 0.71, "candidate_id": 57, "name": "p4-pool2x48-att2x96"},
                    "eta_s": 48.0, "run_seconds": 72.0, "eval_seconds": 130.5, "spec": {"name": "edge-classifier"},
                }
            ]
        }
    )  # fmt: skip


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


class Candidate(BaseModel):
    id: int
    job_id: int
    trial_number: int
    arch_hash: str
    name: str
    arch: dict[str, Any] = Field(description="the architecture (stages, mixers, widths); arch.json of an export")
    status: str = Field(description="complete | infeasible | failed")
    failure: str | None
    violations: dict[str, float] = Field(description="constraint -> relative excess over its bound")
    on_front: bool
    metrics: dict[str, float | None]
    deployable: bool | None
    scores: dict[str, float]
    hardware: dict[str, Any]
    eval_s: float | None
    worker: str | None
    created_at: datetime
    layers: list[dict[str, Any]] | None = Field(
        default=None, description="per-layer hardware table (unit, time, energy by kind); on the candidate route"
    )


class CandidatePage(BaseModel):
    items: list[Candidate]
    limit: int
    offset: int


class ParetoPage(BaseModel):
    objectives: list[str]
    items: list[dict[str, Any]] = Field(description="flat rows: id, name, arch_hash, trial_number, metrics, arch")
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
        json_schema_extra={"examples": [{"where": "latency_ms<1.25,energy_mj<3", "formats": "all"}, {"candidate": 57}]},
    )
    candidate: int | str | None = None
    where: str | None = Field(default=None, max_length=2000, description="bounds, e.g. 'latency_ms<1.25,energy_mj<3'")
    sort: str | None = None
    formats: str = Field(
        default="all", max_length=200, description="all, or some of state_dict, torchscript, onnx, exported_program"
    )
    train_steps: int = Field(default=0, ge=0, le=100_000, description="train on the job's dataset first (0: no)")
    train_batch: int = Field(default=32, ge=2, le=1024)


class ExportOut(BaseModel):
    id: int
    job_id: int
    candidate_id: int
    status: str = Field(description="queued | running | complete | failed; the zip is there once complete")
    error: str | None = Field(description="why it failed")
    request: dict[str, Any] = Field(description="formats, train_steps, train_batch")
    url: str = Field(description="where to download the zip once complete (409 before)")
    card_url: str = Field(description="this record: poll it until the status is complete or failed")
    files: dict[str, str] = Field(description="what -> file name in the zip ({} until complete)")
    card: dict[str, Any] = Field(description="the model card ({} until complete)")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


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


class Limits(BaseModel):
    """What one job may ask for here; a spec over a limit is refused (422) and nothing is created."""

    max_workers: int = Field(description="workers x cpus_per_worker per job")
    max_classes: int
    max_input_side: int = Field(description="H and W of input_shape")
    max_input_channels: int
    max_batch: int
    max_trials: int
    max_wall_time_s: float = Field(description="a job's search, and any one evaluation or training in it")
    max_jobs_per_tenant: int = Field(
        description="unfinished jobs (queued, running, interrupted) and exports (queued, running); 429 beyond"
    )
    max_running_per_tenant: int | None = Field(description="of those, run at once; null: every runner slot")
    heartbeat_timeout_s: float = Field(description="a job's process silent this long is stopped, its job failed")
    max_depth: int = Field(description="blocks in one stage of a network (an inline space's, a swept arch's)")
    max_blocks: int = Field(description="blocks in one network, all stages")
    max_width: int = Field(description="channels of any tensor: a stage's dim, and dim x mlp_ratio")
    max_heads: int = Field(description="attention heads of one block (dim / head_dim)")
    max_kernel: int = Field(description="a pooling, convolution, attention window's or patch's side")
    max_batch_pixels: int = Field(description="images x H x W of one batch a job builds (proxy, training, export)")
    max_priced_layers: int = Field(description="layers x chips one sweep or comparison prices")
    max_export_s: float = Field(description="one export's run (build, training, tracing): stopped and failed beyond")


class Health(BaseModel):
    """Without a token (auth on) only ``status``: who may ask says nothing of the server."""

    status: str
    version: str | None = None
    auth: bool | None = None
    jobs_running: list[int] | None = Field(default=None, description="the caller's jobs running now")


def job_out(job: JobRecord, best: Best | None, eta_s: float | None) -> Job:
    budget = job.spec.get("budget", {})
    return Job(
        id=job.id,
        name=job.name,
        tags=list(job.tags),
        status=job.status,
        tenant=job.tenant,
        managed=job.managed,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        cancel_requested=job.cancel_requested,
        error=redact(job.error),  # a traceback's paths, a database's URL: the server's own
        progress=Progress(
            trials=job.n_trials,
            budget_trials=budget.get("trials"),
            budget_wall_time_s=budget.get("wall_time_s"),
            complete=job.n_complete,
            infeasible=job.n_infeasible,
            failed=job.n_failed,
            duplicates=job.n_duplicates,
            front=job.n_front,
        ),
        objectives=list(job.spec.get("objectives", [])),
        hypervolume=job.hypervolume,
        reference_point=job.reference_point,
        best=best,
        eta_s=eta_s,
        run_seconds=job.run_seconds,
        accuracy_kind=job.accuracy_kind,
        calibration=redact_tree(job.calibration),
        train_top=job.final_top,
        eval_seconds=job.eval_seconds,
        spec=redact_tree(job.spec),  # a data folder's server path, say
    )


def candidate_out(c: CandidateRecord, layers: list[dict[str, Any]] | None = None) -> Candidate:
    return Candidate(**c.to_dict(), layers=layers)
