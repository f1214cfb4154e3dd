"""Search jobs: submit a spec, run it to its budget on Ray workers, resume it after a crash,
cancel it. Results land in the store (``nas.store``), which the loop treats as the truth.

    from nas.search import submit, run
    job = submit(store, load_spec("job.yaml"))
    run(store, job.id)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.search._executor import Outcome, evaluate
    from nas.search._liveness import cancel, owner_alive, owner_id
    from nas.search._pricing import Priced, price, stored_report
    from nas.search._runner import JobStateError, check_can_run, run, submit
    from nas.search._samplers import make_sampler

# Each public name's module, imported on first use: job control (`nas cancel`, `nas jobs`, `nas pareto`)
# needs only the store, the liveness check and the pricing, and answers in a second; the loop's
# modules load torch and Ray, seconds more on a machine busy with the very job being cancelled.
_MODULE_OF = {
    "Outcome": "_executor",
    "evaluate": "_executor",
    "cancel": "_liveness",
    "owner_alive": "_liveness",
    "owner_id": "_liveness",
    "Priced": "_pricing",
    "price": "_pricing",
    "stored_report": "_pricing",
    "JobStateError": "_runner",
    "check_can_run": "_runner",
    "run": "_runner",
    "submit": "_runner",
    "make_sampler": "_samplers",
}

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


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))
