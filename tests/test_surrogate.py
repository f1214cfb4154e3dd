"""The accuracy predictor: a Gaussian process whose means and spreads must hold on points it never saw."""

import dataclasses
import json

import numpy as np
import pytest

from nas.surrogate import AccuracySurrogate, Calibration, _kernel, standardise


def synthetic(n, rng):
    """Accuracy rising with the score, a bump the score misses, and training noise of 0.005."""
    x = rng.normal(size=(n, 3))
    y = 0.80 + 0.03 * x[:, 0] + 0.02 * np.sin(2 * x[:, 1]) + rng.normal(scale=0.005, size=n)
    return x, np.clip(y, 0, 1)


def test_predictions_on_held_out_points_are_accurate_and_their_spread_is_honest():
    rng = np.random.default_rng(0)
    x, y = synthetic(40, rng)
    test_x, test_y = synthetic(300, rng)
    prior = np.full(40, 0.78)  # a prior map that is off by 0.02: the fit must move it
    model = AccuracySurrogate.fit(x, y, prior)
    mean, std = model.predict(test_x, np.full(300, 0.78))
    err = np.abs(mean - test_y)
    assert err.mean() < 0.012  # against 0.027, the spread of the truth itself
    assert err.mean() < 0.5 * np.abs(test_y - test_y.mean()).mean()
    assert 0.85 <= (err <= 2 * std).mean() <= 1.0  # about 95 % within two predicted stds
    assert 0.45 <= (err <= std).mean() <= 0.9


def test_without_measurements_the_prior_is_the_prediction():
    model = AccuracySurrogate.fit(np.zeros((0, 3)), [], np.zeros(0))
    mean, std = model.predict(np.zeros((2, 3)), np.array([0.7, 0.9]))
    assert mean.tolist() == [0.7, 0.9] and np.all(std > 0.04)  # the prior's offset and what it misses


def test_leave_one_out_equals_refitting_without_each_point():
    rng = np.random.default_rng(1)
    x, y = synthetic(12, rng)
    prior = np.full(12, 0.8)
    model = AccuracySurrogate.fit(x, y, prior)
    loo_mean, loo_std = model.loo(prior)
    for i in range(12):
        keep = np.arange(12) != i
        # the same hyperparameters, fitted without point i (fit() would re-estimate them)
        chol = np.linalg.cholesky(_kernel(x[keep], x[keep], model.theta) + model.theta["noise"] ** 2 * np.eye(11))
        alone = AccuracySurrogate(x[keep], y[keep] - 0.8, model.theta, np.linalg.solve(chol.T, np.linalg.solve(chol, y[keep] - 0.8)), chol)  # fmt: skip
        mean, std = alone.predict(x[i : i + 1], np.array([0.8]))
        assert loo_mean[i] == pytest.approx(mean[0], abs=1e-9)
        assert loo_std[i] == pytest.approx(std[0], abs=1e-9)


def test_predictions_stay_accuracies():
    rng = np.random.default_rng(2)
    x, y = synthetic(10, rng)
    model = AccuracySurrogate.fit(x, y, np.full(10, 0.8))
    mean, _ = model.predict(np.full((1, 3), 50.0), np.array([0.99]))  # far outside what it saw
    assert 0.0 <= mean[0] <= 1.0


def test_calibration_figures():
    c = Calibration.of([0.8, 0.7, 0.9], [0.01, 0.01, 0.05], [0.805, 0.75, 0.9])
    assert c.n == 3 and c.mae == pytest.approx(0.055 / 3, abs=1e-5) and c.kendall_tau == pytest.approx(1.0)
    assert c.within_1sd == pytest.approx(2 / 3, abs=1e-5) and c.within_2sd == pytest.approx(2 / 3, abs=1e-5)
    assert Calibration.of([0.8], [0.1], [0.8]) is None
    # two points have no rank correlation: stored as null, since JSON has no NaN (SQLite's JSON
    # functions failed on a job's calibration, the service answered 503)
    two = Calibration.of([0.8, 0.7], [0.01, 0.01], [0.805, 0.75])
    assert two.kendall_tau is None
    json.dumps(dataclasses.asdict(two), allow_nan=False)


def test_standardise_keeps_constant_columns_finite():
    mean, std = standardise(np.array([[1.0, 5.0], [3.0, 5.0]]))
    assert mean.tolist() == [2.0, 5.0] and std.tolist() == [1.0, 1.0]
