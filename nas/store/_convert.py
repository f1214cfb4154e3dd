"""Rows to records: what the store's queries hand out (plain dataclasses, no session attached)."""

from __future__ import annotations

from nas.store._models import CandidateModel, JobModel
from nas.store._records import METRIC_COLUMNS, CandidateRecord, JobRecord, utc


def _job(m: JobModel) -> JobRecord:
    return JobRecord(
        id=m.id,
        name=m.name,
        tags=tuple(m.tags or ()),
        spec=m.spec,
        accelerator=m.accelerator,
        study_name=m.study_name,
        status=m.status,
        created_at=utc(m.created_at),
        started_at=utc(m.started_at),
        finished_at=utc(m.finished_at),
        heartbeat_at=utc(m.heartbeat_at),
        owner=m.owner,
        cancel_requested=bool(m.cancel_requested),
        error=m.error,
        n_trials=m.n_trials,
        n_complete=m.n_complete,
        n_infeasible=m.n_infeasible,
        n_failed=m.n_failed,
        n_duplicates=m.n_duplicates,
        n_front=m.n_front,
        hypervolume=m.hypervolume,
        reference_point=dict(m.reference_point or {}),
        eval_seconds=m.eval_seconds,
        run_seconds=m.run_seconds,
        tenant=m.tenant,
        managed=bool(m.managed),
        calibration=dict(m.calibration or {}),
        train_top=m.train_top,
    )


def _candidate(m: CandidateModel) -> CandidateRecord:
    return CandidateRecord(
        id=m.id,
        job_id=m.job_id,
        trial_number=m.trial_number,
        arch_hash=m.arch_hash,
        name=m.name,
        arch=m.arch,
        status=m.status,
        failure=m.failure,
        violations=dict(m.violations or {}),
        on_front=bool(m.on_front),
        metrics={c: getattr(m, c) for c in METRIC_COLUMNS},
        deployable=m.deployable,
        scores=dict(m.scores or {}),
        hardware=dict(m.hardware or {}),
        eval_s=m.eval_s,
        worker=m.worker,
        created_at=utc(m.created_at),
    )
