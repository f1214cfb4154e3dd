"""The samplers a job can name, configured for this search (categorical, conditional spaces;
parallel workers). Hard constraints reach them as each trial's ``set_constraint`` values, which
every constrained Optuna sampler reads. docs/search_efficiency.md measures them against each other."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna

# the names are nas.spec.SAMPLERS (a test checks both agree); the spec rejects any other
FACTORIES: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    # multivariate + group model the conditional space jointly; constant_liar keeps parallel
    # workers from being handed the same point while their results are pending.
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
    "nsga3": lambda seed: optuna.samplers.NSGAIIISampler(seed=seed),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


def make_sampler(name: str, *, seed: int) -> optuna.samplers.BaseSampler:
    if name not in FACTORIES:
        raise ValueError(f"sampler: unknown {name!r}; one of {', '.join(FACTORIES)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # TPE's `group`
        return FACTORIES[name](seed)
