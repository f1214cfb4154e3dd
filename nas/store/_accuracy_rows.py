"""Accuracy in units: the job's predictor rewrites its predicted accuracies as it learns, training
results land as measured accuracies (beside the prediction) with their weights, each candidate's
``accuracy`` follows them by ``nas.objectives.accuracy_objective``, and the front follows that. A part of
``Store``, which provides ``_session`` and ``_job``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select, update

from nas.objectives import ACCURACY_FIELDS, DERIVED_FIELDS, INT8_FIELDS, PREDICTED_FIELDS, loss_vector, with_accuracy
from nas.pareto import non_dominated
from nas.status import FINISHED, CandidateStatus, JobStatus
from nas.store._models import CandidateModel, JobModel, WeightsModel
from nas.store._records import Measured, NotFoundError, now
from nas.verdict import front_bounds, meets_front_bounds

PREDICTED = PREDICTED_FIELDS


class AccuracyRows:
    def update_accuracy(
        self,
        job_id: int,
        predictions: Mapping[int, Mapping[str, float]],
        predictor: dict,
        measured: Measured | None = None,
        rungs: Mapping[int, Sequence[Mapping[str, Any]]] | None = None,
    ) -> None:
        """In one transaction: store a training result (its accuracy beside the prediction, its INT8
        accuracy, weights and INT8 model), the predictor's new predictions (candidate id -> the
        ``PREDICTED`` fields it sets, e.g. ``predicted_accuracy`` and ``predicted_std``), the rungs
        of trainings (candidate id -> every rung so far), its state and held-out errors
        (``predictor``); every derived field follows (``nas.objectives.with_accuracy``), then the
        job's front and hypervolume."""
        unknown = {k for fields in predictions.values() for k in fields} - set(PREDICTED)
        if unknown:
            raise ValueError(
                f"predictions: {', '.join(sorted(unknown))} is not a predicted field ({', '.join(PREDICTED)})"
            )
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            if measured is not None:
                row = s.get(CandidateModel, measured.candidate_id)
                if row is None or row.job_id != job_id:
                    raise NotFoundError(f"job {job_id}: no candidate {measured.candidate_id} to measure")
                job.n_trained += row.measured_accuracy is None
                row.measured_accuracy = measured.accuracy  # its prediction stays beside it
                row.measured_accuracy_int8 = measured.accuracy_int8
                _derive(row)
                if measured.state_dict is not None:
                    s.merge(
                        WeightsModel(
                            candidate_id=row.id, job_id=job_id, recipe=measured.recipe,
                            state_dict=measured.state_dict, int8_onnx=measured.int8_onnx,
                            int8=measured.int8, created_at=now(),
                        )
                    )  # fmt: skip
            for candidate_id, ladder in (rungs or {}).items():
                row = s.get(CandidateModel, candidate_id)
                if row is None or row.job_id != job_id:
                    raise NotFoundError(f"job {job_id}: no candidate {candidate_id} to record rungs of")
                row.rungs = [dict(r) for r in ladder]
            if predictions:
                stored = (*ACCURACY_FIELDS, *INT8_FIELDS, *PREDICTED)
                # the job's rows, not an IN list of every id: PostgreSQL binds at most 65,535 parameters
                held = {
                    r[0]: dict(zip(stored, r[1:], strict=True))
                    for r in s.execute(
                        select(CandidateModel.id, *(getattr(CandidateModel, f) for f in stored)).where(
                            CandidateModel.job_id == job_id
                        )
                    )
                    if r[0] in predictions
                }
                missing = set(predictions) - set(held)
                if missing:
                    raise NotFoundError(f"job {job_id}: no candidate {min(missing)} to predict")
                s.execute(update(CandidateModel), [_predicted(i, held[i], predictions[i]) for i in predictions])
            version = int((job.predictor or {}).get("version", 0)) + 1
            job.predictor = {**predictor, "version": version}
            s.flush()
            self._recompute_front(s, job)

    def _recompute_front(self, s, job: JobModel) -> None:
        objectives = job.spec["objectives"]
        columns = [getattr(CandidateModel, o) for o in objectives]
        rows = s.execute(select(CandidateModel.id, *columns).where(*eligible(job))).all()
        ids = [r[0] for r in rows]
        losses = np.array(
            [loss_vector(dict(zip(objectives, r[1:], strict=True)), objectives) for r in rows], dtype=float
        ).reshape(-1, len(objectives))
        keep = non_dominated(losses) if len(ids) else np.zeros(0, dtype=bool)
        front = {ids[i] for i in np.flatnonzero(keep)}
        s.execute(
            update(CandidateModel)
            .where(CandidateModel.job_id == job.id, CandidateModel.on_front.is_(True))
            .values(on_front=False)
        )
        if front:
            s.execute(update(CandidateModel).where(CandidateModel.id.in_(front)).values(on_front=True))
        job.n_front = len(front)
        self._save_hypervolume(s, job, [tuple(losses[i]) for i in np.flatnonzero(keep)])

    def weights(self, job_id: int, candidate_id: int) -> tuple[bytes, dict] | None:
        """The trained weights of a measured candidate and the recipe they were trained with."""
        with self._session() as s:
            row = s.get(WeightsModel, candidate_id)
            if row is None or row.job_id != job_id:
                return None
            return row.state_dict, dict(row.recipe)

    def int8_model(self, job_id: int, candidate_id: int) -> tuple[bytes, dict] | None:
        """The INT8 ONNX model a measured candidate's INT8 accuracy was measured on, and how it was
        quantized (None: not measured in INT8)."""
        with self._session() as s:
            row = s.get(WeightsModel, candidate_id)
            if row is None or row.job_id != job_id or row.int8_onnx is None:
                return None
            return row.int8_onnx, dict(row.int8 or {})

    def has_int8_model(self, job_id: int, candidate_id: int) -> bool:
        """Whether the candidate has an INT8 model (without loading it)."""
        with self._session() as s:
            found = s.scalar(
                select(WeightsModel.candidate_id).where(
                    WeightsModel.candidate_id == candidate_id,
                    WeightsModel.job_id == job_id,
                    WeightsModel.int8_onnx.is_not(None),
                )
            )
            return found is not None

    def has_weights(self, job_id: int, candidate_id: int) -> bool:
        """Whether the candidate has trained weights (without loading them)."""
        with self._session() as s:
            found = s.scalar(
                select(WeightsModel.candidate_id).where(
                    WeightsModel.candidate_id == candidate_id, WeightsModel.job_id == job_id
                )
            )
            return found is not None

    def request_training(self, job_id: int, top: int) -> None:
        """Ask for the front's ``top`` best to be measured: the job's next run trains those not yet
        measured (a finished job is queued again for it)."""
        if not 1 <= top <= 100:
            raise ValueError(f"top: measure between 1 and 100 of the front's best, got {top}")
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            job.train_final = max(top, job.train_final or 0)
            if job.status in (*FINISHED, JobStatus.INTERRUPTED):
                job.status, job.finished_at, job.error, job.cancel_requested = JobStatus.QUEUED, None, None, False


def _predicted(candidate_id: int, held: Mapping[str, float | None], fields: Mapping[str, float]) -> dict:
    """A refit's new predictions for a candidate, and every field derived from its fields so
    (``with_accuracy``: a measured candidate keeps its measurement as its accuracy)."""
    new = {k: float(v) for k, v in fields.items()}
    derived = with_accuracy({**held, **new})
    return {"id": candidate_id, **new, **{k: derived[k] for k in DERIVED_FIELDS}}


def _derive(row: CandidateModel) -> None:
    """Set a row's derived fields from its own (``nas.objectives.with_accuracy``)."""
    derived = with_accuracy({f: getattr(row, f) for f in (*ACCURACY_FIELDS, *INT8_FIELDS)})
    for name in DERIVED_FIELDS:
        setattr(row, name, derived[name])


def eligible(job: JobModel) -> list:
    """The candidates a job's front is drawn from: complete, and within its scored bounds
    (``nas.verdict.front_bounds``: minimum accuracy, maximum INT8 drop)."""
    filters = [CandidateModel.job_id == job.id, CandidateModel.status == CandidateStatus.COMPLETE]
    # every objective known: an INT8 accuracy is unknown until its drop is predicted or measured
    filters += [getattr(CandidateModel, o).is_not(None) for o in job.spec["objectives"]]
    for metric, op, bound in front_bounds(job.spec.get("constraints") or {}).values():
        column = getattr(CandidateModel, metric)
        filters.append(column >= bound if op == ">=" else column <= bound)
    return filters


def eligible_row(job: JobModel, status: str, metrics: Mapping[str, Any]) -> bool:
    """``eligible``'s rule for one candidate in hand (its row just written): the same three tests."""
    return (
        status == CandidateStatus.COMPLETE
        and all(metrics.get(o) is not None for o in job.spec["objectives"])
        and meets_front_bounds(job.spec.get("constraints") or {}, metrics)
    )
