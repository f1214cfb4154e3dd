"""Search jobs: submit a spec, run it to its budget on Ray workers, resume it after a crash,
cancel it. Results land in the store (``nas.store``), which the loop treats as the truth.

    from nas.search import submit, run
    job = submit(store, load_spec("job.yaml"))
    run(store, job.id)

Importing this package loads the loop and Optuna (torch loads when a job evaluates or trains,
Ray when it starts its workers). Job control alone (submit, cancel, liveness, ``check_can_run``,
stored cost reports) lives in ``nas.jobs``, which loads neither and never will: commands that only
control jobs import that. Every name below is importable
from here as well. The path of one trial through these modules is docs/trial_walk.md.
"""

from __future__ import annotations

from nas.jobs import JobStateError, cancel, check_can_run, submit
from nas.liveness import owner_alive, owner_id
from nas.pricing import Priced, price, stored_report
from nas.search._executor import Executor, Outcome, evaluate
from nas.search._runner import run
from nas.search._samplers import make_sampler

__all__ = [
    "Executor",
    "JobStateError",
    "Outcome",
    "Priced",
    "cancel",
    "check_can_run",
    "evaluate",
    "make_sampler",
    "owner_alive",
    "owner_id",
    "price",
    "run",
    "stored_report",
    "submit",
]
