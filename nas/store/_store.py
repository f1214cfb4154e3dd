"""The store: jobs, candidates, trials and hypervolume history in SQL, the search's source of truth.

One process writes a job (the one running it); any number read. Every call runs in one
transaction that commits or rolls back whole, and turns driver errors into ``StoreError``.
SQLite runs in WAL mode so readers never block the writer; PostgreSQL works with the same code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, String, cast, create_engine, desc, event, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nas.objectives import ACCURACY_FIELDS, with_accuracy
from nas.status import CandidateStatus, JobStatus
from nas.store._accuracy_rows import AccuracyRows, eligible_row
from nas.store._convert import _candidate, _job
from nas.store._front_rows import FrontRows
from nas.store._models import CandidateModel, JobModel, TrialModel
from nas.store._records import (
    CANDIDATE_STATUSES,
    JOB_STATUSES,
    METRIC_COLUMNS,
    CandidateIn,
    CandidateRecord,
    JobRecord,
    NotFoundError,
    StoreError,
    TrialRecord,
    now,
)
from nas.store._service_rows import ServiceRows
from nas.verdict import CONSTRAINT_METRIC, DUPLICATE, constraint_report

DB_ENV = "NAS_DB_URL"
DEFAULT_DB = "sqlite:///nas.db"  # in the working directory
MIGRATIONS = Path(__file__).parent / "migrations"
_HASH_PREFIX = re.compile(r"[\w.:-]{1,64}")  # an arch hash (a plug-in space's may be any word) or its prefix
SCHEMA_RACE_ATTEMPTS = 5  # processes opening a fresh database at once: the losers retry


def default_url() -> str:
    return os.environ.get(DB_ENV) or DEFAULT_DB


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60})
        tune_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def tune_sqlite(engine: Engine) -> None:
    """WAL, so readers never block the writer; synchronous=NORMAL, which WAL keeps crash-safe (a
    power cut may lose the last commits, a killed process loses nothing) at a fraction of the
    fsyncs; foreign keys on. Applies to connections opened from now on."""

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    engine.dispose()  # drop pooled connections opened before the listener


def _schema_race(err: SQLAlchemyError) -> bool:
    """Whether creating tables failed because another process created them meanwhile, or (SQLite)
    was creating them: a read that cannot become a write because another connection wrote since
    (SQLITE_BUSY_SNAPSHOT) fails at once, whatever the busy timeout; the next attempt sees its tables."""
    text = str(getattr(err, "orig", None) or err).lower()
    return "already exists" in text or "duplicate key" in text or "database is locked" in text


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


class Store(FrontRows, ServiceRows, AccuracyRows):
    """``Store(url)`` opens (and migrates) the database at ``url``, e.g. ``sqlite:///nas.db`` or
    ``postgresql+psycopg://user:pw@host/db``."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        try:
            self.engine = make_engine(self.url)
            for attempt in range(SCHEMA_RACE_ATTEMPTS):
                try:
                    upgrade(self.engine)
                    break
                except SQLAlchemyError as err:  # another process is creating the schema right now
                    if attempt == SCHEMA_RACE_ATTEMPTS - 1 or not _schema_race(err):
                        raise
                    time.sleep(0.2 * (attempt + 1))
        except SQLAlchemyError as err:
            raise StoreError(f"database {self.safe_url}: cannot open it: {err.__class__.__name__}: {err}") from err
        except ModuleNotFoundError as err:
            raise StoreError(f"database {self.safe_url}: its driver is not installed ({err})") from err
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # recomputed fronts by (job, bounds), valid while the job's trial count and predictor version
        # are the ones they saw: every change to a job's candidates goes through `record`, which
        # counts a trial, or `update_accuracy`, which counts a version
        self._fronts: OrderedDict[tuple, tuple[int, list[int]]] = OrderedDict()
        self._fronts_lock = threading.Lock()

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        from sqlalchemy.engine import make_url

        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # an unparsable URL is reported by create_engine
            return self.url

    def close(self) -> None:
        self.engine.dispose()

    def optuna_storage(self) -> Any:
        """Optuna's RDBStorage on this database (its tables beside ours, SQLite tuned as ours).
        Several processes opening a fresh database at once race to create its tables: the loser
        finds them made and opens them."""
        import optuna

        sqlite = self.url.startswith("sqlite")
        for attempt in range(SCHEMA_RACE_ATTEMPTS):
            try:
                storage = optuna.storages.RDBStorage(
                    self.url, engine_kwargs={"connect_args": {"timeout": 60}} if sqlite else {}
                )
                break
            except SQLAlchemyError as err:
                if attempt == SCHEMA_RACE_ATTEMPTS - 1 or not _schema_race(err):
                    raise StoreError(
                        f"database {self.safe_url}: Optuna's tables: {err.__class__.__name__}: {err}"
                    ) from err
                time.sleep(0.2 * (attempt + 1))
        if sqlite:
            tune_sqlite(storage.engine)  # Optuna writes most of a trial's rows: same settings as the store
        return storage

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except StoreError:
            session.rollback()
            raise
        except SQLAlchemyError as err:
            session.rollback()
            raise StoreError(f"database {self.safe_url}: {err.__class__.__name__}: {err.orig or err}") from err
        finally:
            session.close()

    # ---- jobs -------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        name: str,
        tags: Sequence[str],
        spec: dict[str, Any],
        accelerator: dict[str, Any],
        reference_point: dict,
        tenant: str | None = None,
        managed: bool = False,
    ) -> JobRecord:
        with self._session() as s:
            job = JobModel(
                tenant=tenant,
                managed=managed,
                name=name,
                tags=list(tags),
                spec=spec,
                accelerator=accelerator,
                study_name=f"pending-{os.getpid()}-{now().timestamp()}",
                status=JobStatus.QUEUED,
                created_at=now(),
                cancel_requested=False,
                n_trials=0,
                n_complete=0,
                n_infeasible=0,
                n_failed=0,
                n_duplicates=0,
                n_front=0,
                reference_point=reference_point,
                eval_seconds=0.0,
                run_seconds=0.0,
                train_final=int(((spec.get("evaluator") or {}).get("train") or {}).get("final", 0)),
                n_trained=0,
            )
            s.add(job)
            s.flush()
            job.study_name = f"nas-job-{job.id}"
            return _job(job)

    def get_job(self, job_id: int) -> JobRecord:
        with self._session() as s:
            return _job(self._job(s, job_id))

    def list_jobs(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        tenant: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[JobRecord]:
        """The newest jobs first; ``tenant`` None means every tenant's."""
        with self._session() as s:
            query = select(JobModel).where(*_job_filters(status, tag, tenant))
            return [_job(j) for j in s.scalars(query.order_by(desc(JobModel.id)).offset(offset).limit(limit))]

    def count_jobs(self, *, status: str | None = None, tag: str | None = None, tenant: str | None = None) -> int:
        with self._session() as s:
            return s.scalar(select(func.count(JobModel.id)).where(*_job_filters(status, tag, tenant)))

    def requeue(self, job_id: int) -> JobRecord:
        """Hand the job to the service's runner (``managed``): it starts or resumes it when a slot frees."""
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            job.status, job.managed, job.cancel_requested = JobStatus.QUEUED, True, False
            job.error, job.finished_at = None, None
            return _job(job)

    def fix_reference_point(self, job_id: int, reference_point: dict) -> JobRecord:
        """Set the reference point of a job stored without one (a managed job's process fixes it
        when it first starts); a job that has one keeps it."""
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            if not job.reference_point:
                job.reference_point = reference_point
            return _job(job)

    def claim(self, job_id: int, owner: str, *, previous_owner: str | None = None) -> JobRecord:
        """Mark the job running in ``owner`` (host:pid), if its owner is still ``previous_owner``
        (what the caller saw and judged dead): two processes resuming one job cannot both win."""
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            if job.owner != previous_owner:
                raise StoreError(f"job {job_id} was claimed by {job.owner} meanwhile")
            job.status, job.owner, job.heartbeat_at, job.cancel_requested = JobStatus.RUNNING, owner, now(), False
            job.started_at = job.started_at or now()
            job.finished_at, job.error = None, None
            return _job(job)

    def heartbeat(
        self, job_id: int, owner: str, *, run_seconds: float | None = None, eval_seconds: float | None = None
    ) -> bool:
        """Record that ``owner`` is alive (and the time spent, if given); returns whether a cancel
        was requested."""
        spent = {"run_seconds": run_seconds, "eval_seconds": eval_seconds}
        with self._session() as s:
            s.execute(
                update(JobModel)
                .where(JobModel.id == job_id, JobModel.owner == owner)
                .values(heartbeat_at=now(), **{k: v for k, v in spent.items() if v is not None})
            )
            return bool(s.scalar(select(JobModel.cancel_requested).where(JobModel.id == job_id)))

    def cancel_requested(self, job_id: int) -> bool:
        """Whether a cancel of the job was requested (one small query: the loop asks before each dispatch)."""
        with self._session() as s:
            return bool(s.scalar(select(JobModel.cancel_requested).where(JobModel.id == job_id)))

    def request_cancel(self, job_id: int) -> JobRecord:
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            job.cancel_requested = True
            return _job(job)

    def finish(self, job_id: int, status: str, error: str | None = None) -> JobRecord:
        """Record the job's end, with what its constraints rejected (``nas.verdict.constraint_report``)."""
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            job.status, job.error, job.finished_at, job.owner = status, error, now(), None
            job.constraint_report = self._constraint_report(s, job)
            return _job(job)

    def _constraint_report(self, s: Session, job: JobModel) -> dict[str, Any]:
        """Which constraints rejected how many of the job's scored or rejected candidates."""
        metrics = [getattr(CandidateModel, m) for m in sorted(set(CONSTRAINT_METRIC.values()))]
        rows = s.execute(
            select(CandidateModel.violations, *metrics).where(
                CandidateModel.job_id == job.id,
                CandidateModel.status.in_((CandidateStatus.COMPLETE, CandidateStatus.INFEASIBLE)),
            )
        ).all()
        names = [c.key for c in metrics]
        candidates = [(r[0] or {}, dict(zip(names, r[1:], strict=True))) for r in rows]
        return constraint_report((job.spec or {}).get("constraints") or {}, candidates)

    # ---- trials and candidates --------------------------------------------------------------

    def trials(self, job_id: int) -> dict[int, TrialRecord]:
        with self._session() as s:
            rows = s.scalars(select(TrialModel).where(TrialModel.job_id == job_id))
            return {t.number: TrialRecord(t.number, t.candidate_id, t.outcome, t.values, t.constraints) for t in rows}

    def candidate_index(self, job_id: int) -> dict[str, CandidateRecord]:
        """arch_hash -> candidate: what a new trial of the same network reuses."""
        with self._session() as s:
            return {c.arch_hash: _candidate(c) for c in s.scalars(_candidates(job_id))}

    def record(
        self,
        job_id: int,
        number: int,
        *,
        candidate: CandidateIn | None = None,
        duplicate_of: int | None = None,
        values: list[float] | None,
        constraints: Mapping[str, float] | None,
    ) -> CandidateRecord:
        """Record finished trial ``number``: a new candidate, or a duplicate of an existing one.
        ``values`` and ``constraints`` (name -> relative excess) are what Optuna is told.

        One transaction adds the trial row, the candidate, the job's counters, the front's
        membership and, when the front moved, a hypervolume history point. Returns the candidate as
        written (for a duplicate, the original).
        """
        if (candidate is None) == (duplicate_of is None):
            raise ValueError("record: give exactly one of candidate and duplicate_of")
        with self._session() as s:
            job = self._job(s, job_id, lock=True)
            job.n_trials += 1
            if duplicate_of is not None:
                job.n_duplicates += 1
                s.add(_trial(job_id, number, duplicate_of, DUPLICATE, values, constraints))
                original = s.get(CandidateModel, duplicate_of)
                if original is None or original.job_id != job_id:
                    raise NotFoundError(f"job {job_id}: no candidate {duplicate_of} to be a duplicate of")
                return _candidate(original)
            metrics = _candidate_metrics(candidate.metrics)
            given = {f.name: getattr(candidate, f.name) for f in dataclasses.fields(CandidateIn) if f.name != "metrics"}
            row = CandidateModel(
                job_id=job_id,
                trial_number=number,
                on_front=False,
                created_at=now(),
                **given,
                **{m: metrics.get(m) for m in METRIC_COLUMNS},
            )
            s.add(row)
            try:
                s.flush()
            except IntegrityError as err:
                raise StoreError(f"job {job_id}: candidate {candidate.arch_hash} is already recorded") from err
            s.add(_trial(job_id, number, row.id, candidate.status, values, constraints))
            counter = {
                CandidateStatus.COMPLETE: "n_complete",
                CandidateStatus.INFEASIBLE: "n_infeasible",
                CandidateStatus.FAILED: "n_failed",
            }[CandidateStatus(candidate.status)]
            setattr(job, counter, getattr(job, counter) + 1)
            if eligible_row(job, candidate.status, metrics):
                self._update_front(s, job, row)
            return _candidate(row)

    # ---- queries ----------------------------------------------------------------------------

    def candidate(self, job_id: int, ref: int | str) -> CandidateRecord:
        """A candidate by id, or by its architecture hash (a unique prefix is enough)."""
        with self._session() as s:
            self._job(s, job_id)
            query = select(CandidateModel).where(CandidateModel.job_id == job_id)
            text = str(ref)
            if isinstance(ref, int) or text.isdecimal():
                ident = int(text) if len(text) <= 18 else -1  # past any id: the database's integer would overflow
                rows = list(s.scalars(query.where(CandidateModel.id == ident)))
            elif _HASH_PREFIX.fullmatch(text):
                rows = list(s.scalars(query.where(CandidateModel.arch_hash.startswith(text, autoescape=True)).limit(2)))
            else:
                rows = []
            if len(rows) != 1:
                what = "is ambiguous" if rows else "is not among its candidates"
                raise NotFoundError(f"job {job_id}: candidate {ref!r} {what}; `nas pareto {job_id}` lists them")
            return _candidate(rows[0])

    def candidates(
        self, job_id: int, *, status: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[CandidateRecord]:
        if status is not None and status not in CANDIDATE_STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(CANDIDATE_STATUSES)}")
        with self._session() as s:
            query = _candidates(job_id).order_by(CandidateModel.trial_number).offset(offset).limit(limit)
            if status:
                query = query.where(CandidateModel.status == status)
            return [_candidate(c) for c in s.scalars(query)]

    def delete_job(self, job_id: int) -> None:
        """Delete the job and every row of it: its candidates, trials, hypervolume history, weights
        and exports (the tables' foreign keys cascade), then its Optuna study, which the store names."""
        with self._session() as s:
            job = self._job(s, job_id)
            study_name = job.study_name
            s.delete(job)
        self._delete_study(study_name)

    def _delete_study(self, study_name: str) -> None:
        from sqlalchemy import inspect

        if not inspect(self.engine).has_table("studies"):  # no job of this database ever ran
            return
        import optuna

        with contextlib.suppress(KeyError):  # a job that never ran has no study
            optuna.delete_study(study_name=study_name, storage=self.optuna_storage())

    def _job(self, s: Session, job_id: int, *, lock: bool = False) -> JobModel:
        job = s.get(JobModel, job_id, with_for_update=lock)
        if job is None:
            raise NotFoundError(f"job {job_id} is not in {self.safe_url}; `nas jobs` lists the jobs there")
        return job


def _job_filters(status: str | None, tag: str | None, tenant: str | None) -> list:
    filters = []
    if status is not None:
        if status not in JOB_STATUSES:
            raise ValueError(f"status: {status!r} is not one of {', '.join(JOB_STATUSES)}")
        filters.append(JobModel.status == status)
    if tag is not None:
        # tags are a JSON list: match the tag's JSON string in its text, which SQLite and
        # PostgreSQL store as written (a portable stand-in for json_each / jsonb's ?)
        quoted = json.dumps(tag).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        filters.append(cast(JobModel.tags, String).like(f"%{quoted}%", escape="\\"))
    if tenant is not None:
        filters.append(JobModel.tenant == tenant)
    return filters


def _candidates(job_id: int):
    return select(CandidateModel).where(CandidateModel.job_id == job_id)


def _candidate_metrics(metrics: Mapping[str, float | None]) -> dict[str, float | None]:
    """A new candidate's metrics with its ``accuracy`` derived (``nas.objectives.with_accuracy``); a
    bare ``accuracy`` without the fields it derives from is the evaluator's value, its proxy score."""
    if metrics.get("accuracy") is not None and all(metrics.get(f) is None for f in ACCURACY_FIELDS):
        metrics = {**metrics, "proxy_score": metrics["accuracy"]}
    return with_accuracy(metrics)


def _trial(job_id: int, number: int, candidate_id: int, outcome: str, values, constraints) -> TrialModel:
    return TrialModel(
        job_id=job_id,
        number=number,
        candidate_id=candidate_id,
        outcome=outcome,
        values=values,
        constraints=constraints,
        created_at=now(),
    )
