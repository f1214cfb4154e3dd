"""The samplers a job can name, configured for this search (categorical, conditional spaces;
parallel workers). Hard constraints reach them as each trial's ``set_constraint`` values, which
every constrained Optuna sampler reads. docs/search_efficiency.md measures them against each other."""

from __future__ import annotations

import warnings

import optuna


def make_sampler(name: str, *, seed: int) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # TPE's `group`
        return _make(name, seed)


def _make(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        # multivariate + group model the conditional space jointly; constant_liar keeps parallel
        # workers from being handed the same point while their results are pending.
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "nsga3":
        return optuna.samplers.NSGAIIISampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler: unknown {name!r}")
