"""Search jobs: submit a spec, run it to its budget on Ray workers, resume it after a crash,
cancel it. Results land in the store (``nas.store``), which the loop treats as the truth.

    from nas.search import submit, run
    job = submit(store, load_spec("job.yaml"))
    run(store, job.id)
"""

from nas.search._executor import Outcome, evaluate
from nas.search._liveness import owner_alive, owner_id
from nas.search._pricing import Priced, price, stored_report
from nas.search._runner import JobStateError, cancel, check_can_run, run, submit
from nas.search._samplers import make_sampler

__all__ = [
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
