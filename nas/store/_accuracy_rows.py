"""Accuracy in units: the job's predictor rewrites its predicted accuracies as it learns, training
results land as measured accuracies (beside the prediction) with their weights, each candidate's
``accuracy`` follows them by ``nas.objectives.accuracy_objective``, and the front follows that. A part of
``Store``, which provides ``_session`` and ``_job``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sqlalchemy import select, update

from nas.objectives import accuracy_objective, loss_vector
from nas.pareto import non_dominated
from nas.status import FINISHED, CandidateStatus, JobStatus
from nas.store._models import CandidateModel, JobModel, WeightsModel
from nas.store._records import Measured, NotFoundError, now


class AccuracyRows:
    def update_accuracy(
        self,
        job_id: int,
        predictions: Mapping[int, tuple[float, float]],
        predictor: dict,
        measured: Measured | None = None,
    ) -> None:
        """In one transaction: store a training result (its accuracy replaces the prediction), the
        predictor's new predictions (candidate id -> mean, std) for the candidates not measured,
        its state and held-out errors (``predictor``); then recompute the job's front and hypervolume over them."""
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            if measured is not None:
                row = s.get(CandidateModel, measured.candidate_id)
                if row is None or row.job_id != job_id:
                    raise NotFoundError(f"job {job_id}: no candidate {measured.candidate_id} to measure")
                job.n_trained += row.measured_accuracy is None
                row.measured_accuracy = measured.accuracy  # its prediction stays beside it
                row.accuracy, row.accuracy_std = accuracy_objective(
                    row.proxy_score, row.predicted_accuracy, row.predicted_std, row.measured_accuracy
                )
                if measured.state_dict is not None:
                    s.merge(
                        WeightsModel(
                            candidate_id=row.id, job_id=job_id, recipe=measured.recipe,
                            state_dict=measured.state_dict, created_at=now(),
                        )
                    )  # fmt: skip
            if predictions:
                measured_ids = set(
                    s.scalars(
                        select(CandidateModel.id).where(
                            CandidateModel.job_id == job_id, CandidateModel.measured_accuracy.is_not(None)
                        )
                    )
                )
                s.execute(
                    update(CandidateModel), [_predicted(i, *predictions[i], i in measured_ids) for i in predictions]
                )
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


def _predicted(candidate_id: int, mean: float, std: float, measured: bool) -> dict:
    """A refit's new prediction for a candidate, and its ``accuracy`` if the prediction is what that
    is (``accuracy_objective``: a measured candidate keeps its measurement)."""
    row = {"id": candidate_id, "predicted_accuracy": float(mean), "predicted_std": float(std)}
    if not measured:
        row["accuracy"], row["accuracy_std"] = accuracy_objective(None, float(mean), float(std), None)
    return row


def eligible(job: JobModel) -> list:
    """The candidates a job's front is drawn from: complete, and within its accuracy bound."""
    filters = [CandidateModel.job_id == job.id, CandidateModel.status == CandidateStatus.COMPLETE]
    bound = (job.spec.get("constraints") or {}).get("min_accuracy")
    if bound is not None:
        filters.append(CandidateModel.accuracy >= bound)
    return filters
