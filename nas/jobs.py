"""Job control: submit a spec, say whether a job may run, cancel it, see whether its process lives,
and rebuild a stored candidate's cost report. What `nas cancel`, `nas jobs`, `nas pareto` and the
service's routes need, without the search loop: this module (and what it imports) never loads
torch or Ray, so those commands answer in a second even on a machine busy with the job itself
(tests/test_search.py checks it). The loop that runs a job is ``nas.search.run``.
"""

from __future__ import annotations

import optuna

from nas import reference
from nas.limits import Limits
from nas.liveness import owner_alive, owner_id  # noqa: F401 - job control's liveness, exported here
from nas.objectives import ACCURACY_KINDS
from nas.plugins import Space, load_object, resolve_space
from nas.pricing import (  # noqa: F401 - stored_report is job control's too
    ChipChoice,
    accelerator_to_json,
    price,
    resolve_accelerator,
    stored_report,
)
from nas.spec import JobSpec, PluginRef
from nas.status import JobStatus
from nas.store import JobRecord, Store, StoreError


class JobStateError(StoreError):
    """The job is not in a state that allows the request (e.g. resuming a job that is running)."""


def submit(
    store: Store, spec: JobSpec, *, tenant: str | None = None, managed: bool = False, limits: Limits | None = None
) -> JobRecord:
    """Validate what the spec names and create the job (status ``queued``); ``managed``: the
    service's supervisor runs it, else the caller does (``nas.search.run``). ``limits``: refuse a
    spec over them (``SpecError``) before anything is priced or created.

    A managed job is only stored: its own process builds its space and plug-ins and prices the
    reference point's random architectures when it first starts (``run``), so the service that
    accepted it neither imports a tenant's plug-in nor spends its CPU on a tenant's space."""
    if limits is not None:
        limits.check(spec)
    if spec.task != "classification":
        from nas.training import check_dense_data  # torch: only for a dense job's own folder

        check_dense_data(spec)
    accelerator = resolve_accelerator(spec)
    point = {} if managed else reference_point(spec, resolve_space(spec), accelerator)
    return store.create_job(
        name=spec.name,
        tags=spec.tags,
        spec=spec.model_dump(mode="json"),
        accelerator=accelerator_to_json(accelerator),
        reference_point=point,
        tenant=tenant,
        managed=managed,
    )


def check_can_run(job: JobRecord, resume: bool) -> None:
    """Raise ``JobStateError`` unless ``job`` may be run now (``resume``: continued)."""
    if job.status == JobStatus.RUNNING and owner_alive(job):
        raise JobStateError(f"job {job.id} is running in {job.owner}; `nas cancel {job.id}` stops it")
    if not resume and job.status != JobStatus.QUEUED:
        raise JobStateError(f"job {job.id} is {job.status}; `nas resume {job.id}` continues it")
    if job.status == JobStatus.COMPLETED and job.budget_trials is not None and job.n_trials >= job.budget_trials:
        raise JobStateError(f"job {job.id} has completed its budget of {job.budget_trials} trials")


def check_can_train(job: JobRecord) -> None:
    """Raise ``JobStateError`` unless the job has a training recipe and no process runs it now
    (``nas train``, ``POST /jobs/{id}/train``)."""
    if job.accuracy_kind != "predicted":
        raise JobStateError(
            f"job {job.id} has no training recipe (its accuracy is {ACCURACY_KINDS[job.accuracy_kind]}); "
            "submit it with evaluator.train to measure candidates"
        )
    if job.status == JobStatus.RUNNING and owner_alive(job):
        raise JobStateError(f"job {job.id} is running; ask again when it has finished")


def cancel(store: Store, job_id: int) -> JobRecord:
    """Ask the process running the job to stop; a job nobody runs is marked cancelled at once."""
    job = store.get_job(job_id)
    if JobStatus(job.status).finished:
        return job
    job = store.request_cancel(job_id)
    if job.status != JobStatus.RUNNING or not owner_alive(job):
        job = store.finish(job_id, JobStatus.CANCELLED)
    return job


def reference_point(spec: JobSpec, space: Space, accelerator) -> dict[str, float | None]:
    """The job's reference point (``nas.reference``), with the random architectures it prices
    when the spec does not bound every hardware objective."""
    floor = None
    if isinstance(spec.evaluator, PluginRef):
        floor = getattr(load_object(spec.evaluator.plugin, field="evaluator.plugin"), "accuracy_floor", None)
    sampled: list[dict[str, float]] = []
    if reference.needs_samples(spec, floor):
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=spec.seed))
        chips = ChipChoice(accelerator, spec.chip_search)
        for _ in range(reference.SAMPLES):
            trial = study.ask()
            arch, chip = space.sample(trial), chips.sample(trial)
            sampled.append(price(space, arch, spec, chips.accelerator(chip), chip).metrics)
            study.tell(trial, 0.0)
    return reference.at_submission(spec, floor, sampled)
