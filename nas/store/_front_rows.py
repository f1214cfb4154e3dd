"""The store's Pareto front, reference point and hypervolume: the front kept current as trials are
recorded, queried with bounds, sorted and paged, and its hypervolume history. The decisions
themselves are pure functions elsewhere (``nas.pareto``: dominance and hypervolume;
``nas.reference``: the reference point); this module loads and saves what they use and return."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from sqlalchemy import asc, desc, func, select, update
from sqlalchemy.orm import Session

from nas.objectives import OBJECTIVES, loss_vector, sign
from nas.pareto import add_to_front, non_dominated
from nas.reference import after_warmup, hypervolume_of
from nas.status import CandidateStatus
from nas.store._accuracy_rows import eligible
from nas.store._convert import _candidate
from nas.store._models import CandidateModel, HypervolumeModel, JobModel
from nas.store._records import _OPS, FILTERABLE, Bound, CandidateRecord, JobRecord, now
from nas.tasks import own_metric

FRONT_CACHE_SIZE = 256  # recomputed fronts kept per Store (a few kB each)


class FrontRows:
    """Mixed into ``Store``: its session, job lookup and front cache (``_fronts``) are the store's."""

    def _update_front(self, s: Session, job: JobModel, row: CandidateModel) -> None:
        objectives = job.spec["objectives"]
        columns = [getattr(CandidateModel, o) for o in objectives]
        front = {
            r[0]: loss_vector(dict(zip(objectives, r[1:], strict=True)), objectives)
            for r in s.execute(
                select(CandidateModel.id, *columns).where(*_on_front(job.id), CandidateModel.id != row.id)
            )
        }
        loss = loss_vector({o: getattr(row, o) for o in objectives}, objectives)
        joins, pushed_off = add_to_front(front, row.id, loss)
        reference_fixed = self._fix_reference(s, job)
        if not joins and not reference_fixed:
            return
        if joins:
            row.on_front = True
            if pushed_off:
                s.execute(update(CandidateModel).where(CandidateModel.id.in_(pushed_off)).values(on_front=False))
            for key in pushed_off:
                front.pop(key)
            front[row.id] = loss
            job.n_front = len(front)
        self._save_hypervolume(s, job, list(front.values()))

    def _save_hypervolume(self, s: Session, job: JobModel, front_losses: list) -> None:
        """The front's hypervolume (``nas.reference.hypervolume_of``) on the job and in its history."""
        value = hypervolume_of(front_losses, job.reference_point or {}, job.spec["objectives"])
        if value is not None:
            job.hypervolume = value
            s.merge(
                HypervolumeModel(
                    job_id=job.id, n_trials=job.n_trials, hypervolume=value, front_size=job.n_front, created_at=now()
                )
            )

    def _fix_reference(self, s: Session, job: JobModel) -> bool:
        """Apply ``nas.reference.after_warmup``: objectives without a reference value get the
        worst of the scored candidates once enough are scored."""

        def worst(o: str) -> float:
            pick = func.max if OBJECTIVES[o] == "minimize" else func.min
            return s.scalar(select(pick(getattr(CandidateModel, o))).where(*_complete(job.id)))

        fixed = after_warmup(job.reference_point, job.n_complete, worst)
        if fixed is not None:
            job.reference_point = fixed  # a new dict: JSON columns track assignment, not mutation
        return fixed is not None

    def pareto(
        self,
        job_id: int,
        *,
        where: Sequence[Bound] = (),
        sort: str | None = None,
        descending: bool | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[CandidateRecord]:
        """The feasible candidates that no other feasible candidate within ``where`` dominates.

        Bounds that only cut the worse side of objectives keep the job's front as it is (anything
        dominating a kept point is kept too), so those queries read the maintained membership. Other
        bounds can promote candidates the job's front dominates: the front is recomputed over the
        candidates inside them.
        """
        with self._session() as s:
            job = self._job(s, job_id)
            objectives = job.spec["objectives"]
            task = job.spec.get("task") or "classification"
            where = [dataclasses.replace(b, metric=own_metric(b.metric, task, "where")) for b in where]
            filters = [_OPS[b.op](getattr(CandidateModel, b.metric), b.value) for b in where]
            if all(_cuts_worse_side(b, objectives) for b in where):
                base = [*_on_front(job_id), *filters]
            else:
                key = (job_id, job.created_at, tuple(where))  # created_at: SQLite may reuse a deleted job's id
                stamp = (job.n_trials, (job.predictor or {}).get("version", 0))
                with self._fronts_lock:
                    seen, ids = self._fronts.get(key, (None, []))
                if seen != stamp:
                    losses = [sign(o) * getattr(CandidateModel, o) for o in objectives]
                    result = s.connection().execute(select(CandidateModel.id, *losses).where(*eligible(job), *filters))
                    rows = np.array(result.cursor.fetchall(), dtype=float).reshape(
                        -1, 1 + len(objectives)
                    )  # plain floats
                    ids = rows[non_dominated(rows[:, 1:]), 0].astype(int).tolist()
                    with self._fronts_lock:
                        self._fronts[key] = (stamp, ids)
                        while len(self._fronts) > FRONT_CACHE_SIZE:
                            self._fronts.popitem(last=False)
                base = [CandidateModel.id.in_(ids)] if ids else [CandidateModel.id.is_(None)]
            sort = own_metric(sort, task, "sort") if sort else objectives[0]
            if sort not in FILTERABLE:
                raise ValueError(f"sort: unknown metric {sort!r}; known: {', '.join(FILTERABLE)}")
            if descending is None:
                descending = OBJECTIVES.get(sort) == "maximize"
            order = desc if descending else asc
            query = (
                select(CandidateModel)
                .where(*base)
                .order_by(order(getattr(CandidateModel, sort)), CandidateModel.id)
                .offset(offset)
                .limit(limit)
            )
            return [_candidate(c) for c in s.scalars(query)]

    def front_stamp(self, job_id: int) -> tuple[str | None, tuple] | None:
        """(the job's tenant, a stamp that changes whenever any Pareto query's answer may): one
        small query, for caches of answers. None for an unknown job."""
        with self._session() as s:
            # the predictor is read whole, not with SQL's JSON functions: rows written before
            # undefined figures were stored as null hold NaN, which SQLite's JSON parser rejects
            row = s.execute(
                select(JobModel.tenant, JobModel.created_at, JobModel.n_trials, JobModel.predictor).where(
                    JobModel.id == job_id
                )
            ).first()
            if row is None:
                return None
            return row[0], (job_id, str(row[1]), row[2], (row[3] or {}).get("version", 0))

    def best_on_front(self, jobs: Sequence[JobRecord]) -> dict[int, CandidateRecord]:
        """Each job's best front member by its first objective (as ``pareto(job, limit=1)`` gives
        it), for many jobs in one query per objective rather than one per job."""
        by_sort: dict[str, list[int]] = {}
        for job in jobs:
            if job.n_front:
                by_sort.setdefault(job.spec["objectives"][0], []).append(job.id)
        best: dict[int, CandidateRecord] = {}
        with self._session() as s:
            for sort, ids in by_sort.items():
                order = desc if OBJECTIVES.get(sort) == "maximize" else asc
                rank = (
                    func.row_number()
                    .over(
                        partition_by=CandidateModel.job_id,
                        order_by=(order(getattr(CandidateModel, sort)), CandidateModel.id),
                    )
                    .label("rank")
                )
                ranked = (
                    select(CandidateModel.id, rank)
                    .where(CandidateModel.job_id.in_(ids), CandidateModel.on_front.is_(True))
                    .subquery()
                )
                firsts = select(CandidateModel).join(ranked, CandidateModel.id == ranked.c.id).where(ranked.c.rank == 1)
                best.update((c.job_id, _candidate(c)) for c in s.scalars(firsts))
        return best

    def hypervolume_history(self, job_id: int) -> list[tuple[int, float, int]]:
        """(trials done, hypervolume, front size) each time the front moved."""
        with self._session() as s:
            self._job(s, job_id)
            rows = s.execute(
                select(HypervolumeModel.n_trials, HypervolumeModel.hypervolume, HypervolumeModel.front_size)
                .where(HypervolumeModel.job_id == job_id)
                .order_by(HypervolumeModel.n_trials)
            )
            return [tuple(r) for r in rows]


def _on_front(job_id: int) -> list:
    return [CandidateModel.job_id == job_id, CandidateModel.on_front.is_(True)]


def _complete(job_id: int) -> list:
    return [CandidateModel.job_id == job_id, CandidateModel.status == CandidateStatus.COMPLETE]


def _cuts_worse_side(bound: Bound, objectives: Sequence[str]) -> bool:
    if bound.metric not in objectives:
        return False
    if OBJECTIVES[bound.metric] == "minimize":
        return bound.op in ("<", "<=")
    return bound.op in (">", ">=")
