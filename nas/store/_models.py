"""The store's tables. Objective and metric values are columns, not rows: the set is fixed by
``nas.objectives``, and the Pareto queries filter and sort on them at 100k candidates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class BaseModel(DeclarativeBase):
    pass


class JobModel(BaseModel):
    __tablename__ = "nas_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tags: Mapped[list] = mapped_column(JSON, default=list)
    spec: Mapped[dict] = mapped_column(JSON)  # the validated JobSpec
    accelerator: Mapped[dict] = mapped_column(JSON)  # resolved chip + mapping: the job never rereads a YAML
    study_name: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), index=True)  # a nas.status.JobStatus
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner: Mapped[str | None] = mapped_column(String(200))  # host:pid of the process running it
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    n_trials: Mapped[int] = mapped_column(Integer, default=0)
    n_complete: Mapped[int] = mapped_column(Integer, default=0)
    n_infeasible: Mapped[int] = mapped_column(Integer, default=0)
    n_failed: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    n_front: Mapped[int] = mapped_column(Integer, default=0)
    hypervolume: Mapped[float | None] = mapped_column(Float)
    reference_point: Mapped[dict] = mapped_column(JSON, default=dict)  # objective -> value; null: not fixed yet
    predictor: Mapped[dict | None] = mapped_column(JSON, default=dict)  # the accuracy predictor, its held-out errors
    # the front's best measured at the end (train.final, or more asked); set on every row since 0006
    train_final: Mapped[int | None] = mapped_column(Integer, default=0)
    n_trained: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # candidates measured so far
    constraint_report: Mapped[dict | None] = mapped_column(JSON)  # nas.verdict.constraint_report, at its end
    eval_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # worker time spent evaluating
    run_seconds: Mapped[float] = mapped_column(Float, default=0.0)  # wall time run so far, over every resume
    tenant: Mapped[str | None] = mapped_column(String(100), index=True)  # who submitted it (None: no auth)
    managed: Mapped[bool] = mapped_column(Boolean, default=False)  # the service runs it (and resumes it)


class CandidateModel(BaseModel):
    """One distinct architecture of a job (its first trial); duplicates only add trial rows."""

    __tablename__ = "nas_candidates"
    __table_args__ = (
        UniqueConstraint("job_id", "arch_hash"),
        Index("ix_nas_candidates_front", "job_id", "on_front"),
        # covers the metric columns: a Pareto query that recomputes the front scans this narrow
        # index, not the rows with their JSON
        Index(
            "ix_nas_candidates_metrics",
            "job_id", "status", "accuracy", "latency_ms", "throughput_fps", "energy_mj", "params",
            "power_w", "weight_mib", "macs", "utilisation", "trial_number", "eval_s",
        ),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("nas_jobs.id", ondelete="CASCADE"))
    trial_number: Mapped[int] = mapped_column(Integer)
    arch_hash: Mapped[str] = mapped_column(String(64))  # identity: the network's hash (co-design: with its chip)
    name: Mapped[str] = mapped_column(String(500))
    arch: Mapped[str] = mapped_column(Text)  # the architecture's JSON
    status: Mapped[str] = mapped_column(String(20))  # a nas.status.CandidateStatus
    failure: Mapped[str | None] = mapped_column(Text)
    violations: Mapped[dict] = mapped_column(JSON, default=dict)  # constraint -> amount over its bound
    on_front: Mapped[bool] = mapped_column(Boolean, default=False)
    # accuracy's three distinct fields, and the objective they define (nas.objectives.accuracy_objective)
    proxy_score: Mapped[float | None] = mapped_column(Float)  # the evaluator's value: a proxy's score
    predicted_accuracy: Mapped[float | None] = mapped_column(Float)  # the job's predictor's, at its last refit
    predicted_std: Mapped[float | None] = mapped_column(Float)
    measured_accuracy: Mapped[float | None] = mapped_column(Float)  # trained under the job's recipe
    accuracy: Mapped[float | None] = mapped_column(Float)  # the objective: derived, never set on its own
    accuracy_std: Mapped[float | None] = mapped_column(Float)
    # INT8, as the chip computes: measured on the trained network, or its drop predicted (since 0007)
    measured_accuracy_int8: Mapped[float | None] = mapped_column(Float)
    predicted_int8_drop: Mapped[float | None] = mapped_column(Float)
    predicted_int8_drop_std: Mapped[float | None] = mapped_column(Float)
    accuracy_int8: Mapped[float | None] = mapped_column(Float)  # derived (nas.objectives.int8_fields)
    accuracy_int8_std: Mapped[float | None] = mapped_column(Float)
    int8_drop: Mapped[float | None] = mapped_column(Float)  # derived: FP32 minus INT8
    latency_ms: Mapped[float | None] = mapped_column(Float)
    throughput_fps: Mapped[float | None] = mapped_column(Float)
    energy_mj: Mapped[float | None] = mapped_column(Float)
    power_w: Mapped[float | None] = mapped_column(Float)
    params: Mapped[int | None] = mapped_column(Integer)
    weight_mib: Mapped[float | None] = mapped_column(Float)
    macs: Mapped[float | None] = mapped_column(Float)  # float: billions of MACs overflow some INTEGERs
    utilisation: Mapped[float | None] = mapped_column(Float)
    area_mm2: Mapped[float | None] = mapped_column(Float)  # the chip it was priced on (co-design varies it)
    deployable: Mapped[bool | None] = mapped_column(Boolean)
    scores: Mapped[dict] = mapped_column(JSON, default=dict)  # every score the evaluator returned
    hardware: Mapped[dict] = mapped_column(JSON, default=dict)  # the cost report's summary (no per-layer rows)
    eval_s: Mapped[float | None] = mapped_column(Float)
    worker: Mapped[str | None] = mapped_column(String(200))  # the Ray node that evaluated it
    # its trainings' rungs (successive halving): [{"steps", "of", "accuracy"}], the last one where it stopped
    rungs: Mapped[list | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TrialModel(BaseModel):
    """Every finished trial of a job: the budget counts these rows, resume trusts them."""

    __tablename__ = "nas_trials"

    job_id: Mapped[int] = mapped_column(ForeignKey("nas_jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("nas_candidates.id", ondelete="CASCADE"))
    outcome: Mapped[str] = mapped_column(String(20))  # complete | infeasible | failed | duplicate
    values: Mapped[list | None] = mapped_column(JSON)  # what Optuna was told (None: failed)
    constraints: Mapped[list | None] = mapped_column(JSON)  # violation amounts told with it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HypervolumeModel(BaseModel):
    __tablename__ = "nas_hypervolume"

    job_id: Mapped[int] = mapped_column(ForeignKey("nas_jobs.id", ondelete="CASCADE"), primary_key=True)
    n_trials: Mapped[int] = mapped_column(Integer, primary_key=True)
    hypervolume: Mapped[float] = mapped_column(Float)
    front_size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WeightsModel(BaseModel):
    """The trained weights of a measured candidate: what its export ships."""

    __tablename__ = "nas_weights"

    candidate_id: Mapped[int] = mapped_column(ForeignKey("nas_candidates.id", ondelete="CASCADE"), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("nas_jobs.id", ondelete="CASCADE"), index=True)
    recipe: Mapped[dict] = mapped_column(JSON)  # the recipe, dataset and resolution it was trained with
    state_dict: Mapped[bytes] = mapped_column(LargeBinary)  # torch.save of the state_dict
    int8_onnx: Mapped[bytes | None] = mapped_column(LargeBinary)  # the INT8 model its INT8 accuracy was measured on
    int8: Mapped[dict | None] = mapped_column(JSON)  # how it was quantized and calibrated (nas.int8.Int8Recipe)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TokenModel(BaseModel):
    """An API token: only its SHA-256 is kept, the token itself is shown once at creation."""

    __tablename__ = "nas_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(100), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ExportModel(BaseModel):
    """An export of a candidate: asked for over the API, run by the service's supervisor in a
    process of its own; once complete, its zip lies on disk at ``path`` and its model card here."""

    __tablename__ = "nas_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("nas_jobs.id", ondelete="CASCADE"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("nas_candidates.id", ondelete="CASCADE"))
    tenant: Mapped[str | None] = mapped_column(String(100), index=True)  # the job's: whose quota it counts in
    status: Mapped[str] = mapped_column(String(20), index=True)  # see nas.status.ExportStatus
    request: Mapped[dict] = mapped_column(JSON)  # formats, train_steps, train_batch
    path: Mapped[str | None] = mapped_column(Text)  # the zip, once complete
    card: Mapped[dict] = mapped_column(JSON)  # the model card ({} until complete)
    error: Mapped[str | None] = mapped_column(Text)  # why it failed (no server paths: tenants read it)
    owner: Mapped[str | None] = mapped_column(String(200))  # host:pid of the process running it
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
