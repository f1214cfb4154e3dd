"""The search loop. The database is the source of truth; Optuna proposes, Ray only executes.

One trial (docs/trial_walk.md): ask -> sample -> price (lower + estimate, ~1 ms) and judge
(``nas.verdict.judge``) -> infeasible: record and tell with its constraint violations, never built
-> a known architecture: tell its stored result again -> else evaluate on a worker (an
``Executor``) and judge again -> record -> tell. Recording comes before telling, so after a crash a trial
left RUNNING in Optuna is either in the store (tell it what the store holds) or not (fail it and
queue its parameters again): nothing completed is lost or counted twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from threading import Event
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from nas.jobs import JobStateError, check_can_run, reference_point, submit  # noqa: F401 - job control, re-exported
from nas.liveness import HEARTBEAT_S, Pulse, owner_id
from nas.objectives import directions, with_accuracy
from nas.plugins import make_evaluator, resolve_space
from nas.pricing import ChipChoice, Priced, accelerator_from_json, candidate_key, chip_label, price
from nas.search._executor import Executor, Outcome, make_executor
from nas.search._samplers import make_sampler
from nas.search._trial import named, settle, tell
from nas.spec import JobSpec
from nas.status import CandidateStatus, JobStatus
from nas.store import CandidateIn, CandidateRecord, JobRecord, Store, StoreError
from nas.verdict import DUPLICATE, constraint_names, duplicate, judge

if TYPE_CHECKING:
    from nas.search._predictor import AccuracyPredictor

FINAL_ROUNDS = 3  # rounds of measuring the front's best: a measurement can promote an unmeasured one
# the whole final front is measured where its unmeasured members' trainings (the median so far, on
# the job's workers) fit in this share of the search's wall time (docs/training_schedule.md)
WHOLE_FRONT_SHARE = 0.25
STARTUP_S = 300.0  # loading data, starting Ray and its workers, before the search's clock runs
Progress = Callable[[JobRecord], None]
log = logging.getLogger("nas.search")


def run(store: Store, job_id: int, *, progress: Progress | None = None, resume: bool = False) -> JobRecord:
    """Run (or, with ``resume``, continue) the job to its budget, a cancel or an error."""
    job = store.get_job(job_id)
    check_can_run(job, resume)
    spec = JobSpec.model_validate(job.spec)
    owner = owner_id()
    job = store.claim(job_id, owner, previous_owner=job.owner)
    executor = None
    with Pulse(store, job_id, owner) as pulse:
        try:
            if not job.reference_point:  # a managed job's: fixed here, in its own process (``submit``)
                point = reference_point(spec, resolve_space(spec), accelerator_from_json(job.accelerator))
                job = store.fix_reference_point(job_id, point)
            loop = _Loop(store, job, spec, owner, progress, pulse.cancelled)
            pulse.spent = loop.spent
            executor = make_executor(spec, evaluator=loop.preflight_evaluator, space=loop.space)
            status = loop.run(executor)
            pulse.settle()
            return _said(store.finish(job_id, status))
        except BaseException as err:
            pulse.settle()
            # told to stop: Ctrl-C or SIGTERM (`nas run` makes it a KeyboardInterrupt; Ray's driver a SystemExit)
            stopped = isinstance(err, KeyboardInterrupt | SystemExit)
            try:
                ended = store.get_job(job_id).status != "running"  # it recorded its end before the signal came
            except StoreError:
                ended = False
            if ended:
                raise
            if stopped and pulse.cancelled.is_set():  # a cancel stopped a long call
                return store.finish(job_id, JobStatus.CANCELLED)
            reason = JobStatus.INTERRUPTED if stopped else JobStatus.FAILED
            with contextlib.suppress(StoreError):
                store.finish(job_id, reason, error=f"{type(err).__name__}: {err}")
            raise
        finally:
            pulse.settle()
            if executor is not None:
                executor.shutdown()


def _said(job: JobRecord) -> JobRecord:
    """The ended job, its end logged; one with no feasible candidate says which constraints failed
    and what to loosen (``JobRecord.constraint_report``)."""
    report = job.constraint_report or {}
    if job.status == JobStatus.COMPLETED and job.n_front == 0 and report.get("candidates"):
        advice = "; ".join(report.get("advice") or ["no constraint rejected them: see the failed candidates"])
        log.warning("job %d completed with no feasible candidate of %d: %s", job.id, report["candidates"], advice)
    else:
        log.info("job %d %s: %d trials, %d on the front", job.id, job.status, job.n_trials, job.n_front)
    return job


def longest_run_s(spec: JobSpec, cap_s: float) -> float:
    """How long one run of the job may take, as its spec bounds it: the search's wall time (at most
    ``cap_s``; ``cap_s`` where it has none), then the evaluation in flight at its end, the trainings
    in flight and those of the final rounds (each bounded by its timeout), and a start-up allowance."""
    wall = min(spec.budget.wall_time_s or cap_s, cap_s)
    after = spec.budget.trial_timeout_s
    if spec.accuracy_kind() == "predicted":
        after += (FINAL_ROUNDS + 1) * spec.evaluator.train.timeout_s
    return wall + after + STARTUP_S


def _accuracy_predictor(store: Store, job: JobRecord, spec: JobSpec, known: dict) -> AccuracyPredictor:
    """The predictor of a job that trains, and its recipe checked against its data. Imported here:
    they need torch, which a job that trains nothing (a plug-in's table, a sampler benchmark) never
    loads, nor does importing ``nas.search`` (whose job control is ``nas.jobs``)."""
    from nas.search._predictor import AccuracyPredictor
    from nas.training import training_sets

    training_sets(spec)  # a recipe its data cannot serve fails the job now, before any training
    return AccuracyPredictor(store, job, spec, known)


class _Loop:
    def __init__(
        self, store: Store, job: JobRecord, spec: JobSpec, owner: str, progress: Progress | None, cancelled: Event
    ) -> None:
        self.store, self.job, self.spec, self.owner, self.progress = store, job, spec, owner, progress
        self.cancelled = cancelled  # set by the heartbeat (``Pulse``) once a cancel is requested
        self.run_before, self.eval_s, self.started = job.run_seconds, job.eval_seconds, None
        self.space = resolve_space(spec)
        self.accelerator = accelerator_from_json(job.accelerator)
        self.chips = ChipChoice(self.accelerator, spec.chip_search)  # co-design: the chip is searched too
        # co-design: a network seen on another chip keeps its scores (accuracy does not depend on the
        # chip, and a proxy scored twice would disagree with itself); this run's evaluations only
        self.scored: dict[str, Outcome] = {}
        # Build the evaluator here first: a missing dataset or a broken plug-in fails the job at once
        # with its own message, instead of once per worker and trial.
        self.preflight_evaluator = make_evaluator(spec)
        self.constraint_names = constraint_names(spec.constraints)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = self._study()
        self.known: dict[str, CandidateRecord] = store.candidate_index(job.id)
        self.constraints_of = {
            t.candidate_id: named(t.constraints, self.constraint_names)
            for t in store.trials(job.id).values()
            if t.outcome != DUPLICATE
        }
        self.worst_accuracy = min(
            (c.metrics["accuracy"] for c in self.known.values() if c.status == CandidateStatus.COMPLETE), default=None
        )
        self.predictor: AccuracyPredictor | None = None
        if spec.accuracy_kind() == "predicted":
            self.predictor = _accuracy_predictor(store, job, spec, self.known)
        self.training: dict[int, int] = {}  # executor ticket -> candidate id being trained
        self.full_training_s: list[float] = []  # the seconds of each training run to its end
        self.workers = 1  # the executor's slots (run() reads them)

    def _study(self) -> optuna.Study:
        storage = self.store.optuna_storage()
        # a resumed job does not replay its random stream
        sampler = make_sampler(self.spec.sampler, seed=self.spec.seed + self.job.n_trials)
        return optuna.create_study(
            storage=storage,
            sampler=sampler,
            study_name=self.job.study_name,
            directions=directions(self.spec.objectives),
            load_if_exists=True,
        )

    # ---- the loop ---------------------------------------------------------------------------

    def run(self, executor: Executor) -> str:
        spec, job_id = self.spec, self.job.id
        self.workers = executor.capacity  # all idle now
        self._reap()
        job = self.store.get_job(job_id)
        done = job.n_trials
        budget = spec.budget.trials if spec.budget.trials is not None else math.inf
        self.run_before, self.eval_s, self.started = job.run_seconds, job.eval_seconds, time.monotonic()
        wall = spec.budget.wall_time_s if spec.budget.wall_time_s is not None else math.inf
        inflight: dict[int, tuple[optuna.Trial, Any, Priced]] = {}
        waiting: dict[str, list[optuna.Trial]] = {}  # candidate key in flight -> later trials of it
        status = JobStatus.COMPLETED
        while True:
            elapsed, looked = self.spent()[0], time.monotonic()
            if self.cancelled.is_set():
                status = JobStatus.CANCELLED
                break
            pending = len(inflight) + sum(map(len, waiting.values()))
            self._train_due(executor, max(done / budget, elapsed / wall), slots=max(1, self.workers - 1))
            while executor.capacity > 0 and done + pending < budget and elapsed < wall:
                if self._cancel_asked():  # before every dispatch: fast trials must not outrun a cancel
                    break
                trial = self.study.ask()
                arch, chip = self.space.sample(trial), self.chips.sample(trial)
                h = candidate_key(arch.arch_hash, chip)
                if h in self.known:
                    self._tell_duplicate(trial, self.known[h])
                    done += 1
                elif h in waiting:
                    waiting[h].append(trial)
                    pending += 1
                else:
                    priced = price(self.space, arch, spec, self.chips.accelerator(chip), chip)
                    if priced.feasible and arch.arch_hash in self.scored:
                        self._finish(trial, arch, priced, self.scored[arch.arch_hash])
                        done += 1
                    elif priced.feasible:
                        inflight[executor.submit(arch.to_json())] = (trial, arch, priced)
                        waiting[h] = []
                        pending += 1
                    else:
                        self._finish(trial, arch, priced, None)
                        done += 1
                self._report()
                if time.monotonic() - looked >= HEARTBEAT_S:
                    break  # a long run of infeasible or known candidates still looks for a cancel
            if not inflight and (done + pending >= budget or elapsed >= wall):
                break  # the search is spent; trainings still running finish in the final phase
            if not inflight and not self.training:
                continue
            for ticket, outcome in executor.wait(timeout=0.2):
                self.eval_s += outcome.eval_s
                if ticket in self.training:
                    self._trained(ticket, outcome)
                    continue
                trial, arch, priced = inflight.pop(ticket)
                record = self._finish(trial, arch, priced, outcome)
                if outcome.ok and self.chips.search:
                    self.scored[arch.arch_hash] = dataclasses.replace(
                        outcome, eval_s=0.0, worker="scores of the same network"
                    )
                done += 1
                for twin in waiting.pop(candidate_key(arch.arch_hash, priced.chip), []):
                    self._tell_duplicate(twin, record)
                    done += 1
                self._report()
        if status != JobStatus.CANCELLED and self.predictor is not None:
            status = self._final_phase(executor, job_id)
        if status == JobStatus.CANCELLED:
            executor.cancel_all()
            for trial, _, _ in inflight.values():
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            for twins in waiting.values():
                for twin in twins:
                    self.study.tell(twin, state=TrialState.FAIL, skip_if_finished=True)
        run_seconds, eval_seconds = self.spent()
        self.store.heartbeat(job_id, self.owner, run_seconds=run_seconds, eval_seconds=eval_seconds)
        return status

    def _cancel_asked(self) -> bool:
        """Whether a cancel was requested: the heartbeat's flag, or the store read now (one small
        query), so a cancel stops the dispatch of the very next trial, not the next heartbeat's."""
        if not self.cancelled.is_set() and self.store.cancel_requested(self.job.id):
            self.cancelled.set()
        return self.cancelled.is_set()

    def spent(self) -> tuple[float | None, float | None]:
        """The job's run time and its workers' evaluation time so far, over all its runs (for the
        heartbeat: ``Pulse`` records them); None before the search starts."""
        if self.started is None:
            return None, None
        return self.run_before + time.monotonic() - self.started, self.eval_s

    # ---- training: the predictor's candidates and the front's best --------------------------

    def _train_due(self, executor: Executor, progress: float, slots: int) -> None:
        """Send the predictor's next candidate to a worker if one is due and a slot is free."""
        if self.predictor is None:
            return
        while executor.capacity > 0 and len(self.training) < slots:
            pick = self.predictor.next_for_search(progress)
            if pick is None:
                return
            self._send(executor, pick)

    def _send(self, executor: Executor, record: CandidateRecord, full: bool = False) -> None:
        """Train ``record``: through the rungs with its bars (successive halving), or, ``full``, to the end."""
        from nas.training import rung_steps

        train = self.spec.evaluator.train
        steps = rung_steps(train.recipe.steps, train.rungs)
        bars = None if full else self.predictor.bars_for(record, steps)
        self.predictor.sent(record)
        self.training[executor.submit(record.arch, "train", bars=bars)] = record.id

    def _trained(self, ticket: int, outcome: Outcome) -> None:
        candidate_id = self.training.pop(ticket)
        if outcome.ok and "accuracy" in outcome.scores:
            self.full_training_s.append(outcome.eval_s)
            self.predictor.result(
                candidate_id, outcome.scores["accuracy"], outcome.artifact, None, outcome.rungs,
                int8=(outcome.scores.get("accuracy_int8"), outcome.int8_onnx, outcome.int8),
                precision=outcome.precision,
            )  # fmt: skip
        elif outcome.ok:  # stopped at an early rung
            self.predictor.result(candidate_id, None, None, None, outcome.rungs)
        else:
            self.predictor.result(candidate_id, None, None, outcome.failure)
        self._report()

    def _whole_front_is_cheap(self) -> bool:
        """Whether training every unmeasured front member (the median full training so far, spread
        over the workers) fits in ``WHOLE_FRONT_SHARE`` of the search's wall time."""
        wall = self.spec.budget.wall_time_s
        if wall is None or not self.full_training_s:
            return False
        median = sorted(self.full_training_s)[len(self.full_training_s) // 2]
        return median * self.predictor.unmeasured_front() / max(1, self.workers) <= WHOLE_FRONT_SHARE * wall

    def _final_phase(self, executor: Executor, job_id: int) -> str:
        """Finish the trainings in flight and what is left of the predictor's budget, then measure
        the front's best (``JobRecord.train_final``), and the whole front where that is cheap
        (``_whole_front_is_cheap``), in rounds until the top ones are all measured, since a
        measurement can reorder the front."""
        top = self.store.get_job(job_id).train_final
        rounds = 0
        queue: list[tuple[CandidateRecord, bool]] = []
        while True:
            if self.cancelled.is_set():
                return JobStatus.CANCELLED
            self._train_due(executor, 1.0, slots=self.workers)  # what is left of the predictor's budget
            if not queue and not self.training and top > 0 and rounds < FINAL_ROUNDS:
                whole = self._whole_front_is_cheap()
                queue, rounds = self.predictor.final_choice(top, whole_front=whole), rounds + 1
            while queue and executor.capacity > 0:
                self._send(executor, *queue.pop(0))
            if not queue and not self.training:
                return JobStatus.COMPLETED
            for ticket, outcome in executor.wait(timeout=0.5):
                self.eval_s += outcome.eval_s
                self._trained(ticket, outcome)

    def _finish(self, trial: optuna.Trial, arch: Any, priced: Priced, outcome: Outcome | None) -> CandidateRecord:
        """A new candidate's verdict (``nas.verdict.judge``), recorded and told (``_trial.settle``)."""
        metrics = dict(priced.metrics)
        if outcome is not None and outcome.ok:
            metrics.update(self._accuracy_fields(outcome, metrics, arch))
        failure = outcome.failure if outcome is not None and not outcome.ok else None
        verdict = judge(self.spec.constraints, metrics, priced.deployable, scored=outcome is not None, failure=failure)
        if verdict.status == CandidateStatus.COMPLETE:
            worst = self.worst_accuracy
            self.worst_accuracy = metrics["accuracy"] if worst is None else min(worst, metrics["accuracy"])
        key = candidate_key(arch.arch_hash, priced.chip)
        candidate = CandidateIn(
            arch_hash=key,
            name=f"{arch.name}@{chip_label(priced.chip)}" if priced.chip else arch.name,
            arch=arch.to_json(),
            status=verdict.status,
            metrics=metrics,
            deployable=priced.deployable,
            failure=verdict.failure,
            violations=verdict.rejected,
            scores={k: v for k, v in outcome.scores.items() if k != "accuracy"} if outcome else {},
            hardware=priced.hardware,
            eval_s=outcome.eval_s if outcome else None,
            worker=outcome.worker if outcome else None,
        )
        told = verdict.told(metrics, self.spec.objectives, self.worst_accuracy)
        record = settle(self.store, self.study, self.job.id, trial, told, verdict.excess, candidate=candidate)
        self.constraints_of[record.id] = verdict.excess
        self.known[key] = record
        if self.predictor is not None and verdict.status == CandidateStatus.COMPLETE:
            self.predictor.remember(record)
        return record

    def _accuracy_fields(self, outcome: Outcome, metrics: dict, arch: Any) -> dict[str, float | None]:
        """A scored candidate's accuracy fields: the evaluator's value (the proxy's score), and in a
        job that trains, the prediction made from it; ``accuracy`` is what they define
        (``nas.objectives.accuracy_objective``), as the store will derive it."""
        fields: dict[str, float | None] = {"proxy_score": outcome.scores["accuracy"]}
        if self.predictor is not None:
            fields["predicted_accuracy"], fields["predicted_std"] = self.predictor.predict(
                outcome.scores, metrics, arch.to_json()
            )
            fields |= self.predictor.predict_drops([arch.to_json()], [metrics.get("params")])[0]
        return with_accuracy(fields)

    def _tell_duplicate(self, trial: optuna.Trial, original: CandidateRecord) -> None:
        verdict = duplicate(original.status, self.constraints_of.get(original.id))
        told = verdict.told(original.metrics, self.spec.objectives, self.worst_accuracy)
        told_constraints = self.constraints_of.get(original.id)  # what the original was told (None: not known)
        settle(self.store, self.study, self.job.id, trial, told, told_constraints, duplicate_of=original.id)

    def _reap(self) -> None:
        """Settle the trials a dead run left RUNNING: told from the store if they were recorded,
        else failed and their parameters queued again."""
        stored = self.store.trials(self.job.id)
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number in stored:
                s = stored[t.number]
                # a Trial again from the frozen one (private `_trial_id`: tests/test_optuna_pins.py pins it)
                again = optuna.Trial(self.study, t._trial_id)
                tell(self.study, again, s.values, named(s.constraints, self.constraint_names))
            else:
                self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                self.study.enqueue_trial(t.params, user_attrs={"requeued_from": t.number})

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.store.get_job(self.job.id))
