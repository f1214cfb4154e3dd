"""One trial told: ``settle`` writes the trial to the store and then tells Optuna the values and
constraints its verdict (``nas.verdict.judge``) gives, by name (recording comes before telling:
see nas.search._runner)."""

from __future__ import annotations

from collections.abc import Mapping

import optuna
from optuna.trial import TrialState

from nas.store import CandidateIn, CandidateRecord, Store
from nas.verdict import (  # noqa: F401 - re-exported: their home before nas.verdict
    Excess,
    constraint_excess,
    constraint_names,
    describe_violations,
    told_values,
    violations,
)


def named(constraints: Mapping[str, float] | list[float] | None, names: tuple[str, ...]) -> Excess | None:
    """A stored trial's constraints by name (rows written before they were named hold a list in
    ``constraint_names`` order)."""
    if constraints is None or isinstance(constraints, Mapping):
        return dict(constraints) if constraints is not None else None
    return dict(zip(names, constraints, strict=True))


def tell(study: optuna.Study, trial: optuna.Trial, told: list[float] | None, constraints: Mapping | None) -> None:
    if told is None:
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        return
    for name, value in (constraints or {}).items():
        trial.set_constraint(name, value)
    study.tell(trial, told, skip_if_finished=True)


def settle(
    store: Store,
    study: optuna.Study,
    job_id: int,
    trial: optuna.Trial,
    told: list[float] | None,
    constraints: Excess | None,
    *,
    candidate: CandidateIn | None = None,
    duplicate_of: int | None = None,
) -> CandidateRecord:
    """Write the trial (a new candidate, or a duplicate of one), then tell Optuna; returns the
    candidate as the store holds it."""
    record = store.record(
        job_id, trial.number, candidate=candidate, duplicate_of=duplicate_of, values=told, constraints=constraints
    )
    tell(study, trial, told, constraints)
    return record
