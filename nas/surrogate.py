"""A job's accuracy predictor: a Gaussian process from a candidate's proxy scores and architecture
to the accuracy it reaches under the job's training recipe, fitted on the candidates the job
really trained, with a predictive standard deviation.

    model = AccuracySurrogate.fit(features_of_trained, measured, prior_mean=...)
    mean, std = model.predict(features_of_all)

The model (numpy and scipy only, so it runs in the job's driver without torch):

    accuracy(x) = m0(x) + g(x) + noise,    g ~ GP(0, t0^2 + t1^2 s(x) s(x') + sf^2 RBF(u(x), u(x'); l))

- ``m0``: the prior mean, the shipped map from the default proxy's score to accuracy (fitted on
  the ranking benchmark; ``default_proxy.json``) or a constant, so that predictions are accuracies
  before the first training ends;
- ``t0`` lets the job move the whole map (another dataset or recipe), ``t1`` tilt it along the
  proxy score ``s``, ``sf`` and ``l`` learn what the score misses from the standardised features ``u``
  (the score, log parameters, log MACs and the architecture's encoding);
- the noise is the seed-to-seed spread of one training run, plus, for a training stopped at an
  early rung (successive halving), the spread of its extrapolation to the end (``extra_var``).

Hyperparameters are the maximum a posteriori under weak log-normal priors centred on the values
below (with few trained candidates the priors dominate, as they should). ``loo`` gives the
closed-form leave-one-out predictions that the job reports as its held-out calibration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.stats import kendalltau

# name -> (prior centre, lower bound, upper bound); accuracies are fractions (0-1)
HYPERPARAMETERS: dict[str, tuple[float, float, float]] = {
    "t0": (0.05, 1e-3, 0.5),  # offset of the whole map
    "t1": (0.02, 1e-4, 0.3),  # slope along the standardised score
    "sf": (0.02, 1e-4, 0.3),  # what the score misses
    "length": (2.0, 0.2, 20.0),  # in standardised feature units
    "noise": (0.006, 0.002, 0.1),  # seed-to-seed spread (docs/proxy_ranking.md: mean |diff| 0.004)
}
PRIOR_LOG_SD = 1.0  # log-normal priors: one e-fold either way is plausible
MIN_FIT = 6  # fewer trained candidates keep the prior hyperparameters
MAX_INFLATION = 3.0  # at most this much wider than the Gaussian process's own spread
CLIP = 4.0  # standardised features beyond +-4 are clipped: no wild extrapolation from a few points


@dataclass(frozen=True)
class AccuracySurrogate:
    x: np.ndarray  # (n, d) standardised features of the trained candidates; column 0 is the score
    residual: np.ndarray  # (n,) measured - prior mean
    theta: dict[str, float]
    alpha: np.ndarray  # K^-1 residual
    chol: np.ndarray  # Cholesky factor of K (noise included)
    inflation: float = 1.0  # predictive stds are scaled by this (>= 1): see ``fit``

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        measured: Sequence[float],
        prior_mean: np.ndarray,
        *,
        offset: float | None = None,
        extra_var: Sequence[float] | None = None,
    ) -> AccuracySurrogate:
        """``x``: standardised features of the trained candidates (score first); ``prior_mean``: m0
        there; ``offset``: the prior's standard deviation of the whole map's offset (``t0``), wider
        where the prior mean was fitted on other data or another recipe; ``extra_var``: each value's
        variance beyond a full training's noise (0 for a measurement; an extrapolated partial
        training's spread for a stopped one)."""
        x = np.asarray(x, dtype=float).reshape(len(measured), -1) if len(measured) else np.zeros((0, 1))
        x = np.clip(x, -CLIP, CLIP)
        residual = np.asarray(measured, dtype=float) - np.asarray(prior_mean, dtype=float)
        centres = {k: v[0] for k, v in HYPERPARAMETERS.items()}
        if offset is not None:
            centres["t0"] = offset
        theta = dict(centres)
        extra = np.zeros(len(residual)) if extra_var is None else np.asarray(extra_var, dtype=float)
        if len(residual) >= MIN_FIT:
            theta = _map_estimate(x, residual, centres, extra)
        chol = np.linalg.cholesky(_kernel(x, x, theta) + np.diag(theta["noise"] ** 2 + extra))
        alpha = _solve(chol, residual)
        model = cls(x, residual, theta, alpha, chol)
        if len(residual) < MIN_FIT:
            return model
        # the spreads, held out: if the trained candidates' leave-one-out errors are wider than their
        # predicted stds, every std is widened by the ratio (root mean square of the z-scores)
        loo_residual, loo_std = model._loo_residuals()
        z = (residual - loo_residual) / loo_std
        inflation = float(np.clip(np.sqrt(np.mean(z**2)), 1.0, MAX_INFLATION))
        return cls(x, residual, theta, alpha, chol, inflation)

    def predict(self, x: np.ndarray, prior_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the accuracy a training run would measure (noise included)."""
        x = np.asarray(x, dtype=float).reshape(len(prior_mean), -1)
        if not len(x):
            return np.zeros(0), np.zeros(0)
        x = np.clip(x, -CLIP, CLIP)
        prior_var = _kernel_diag(x, self.theta) + self.theta["noise"] ** 2
        if not len(self.x):
            return np.asarray(prior_mean, dtype=float), np.sqrt(prior_var)
        cross = _kernel(x, self.x, self.theta)
        v = np.linalg.solve(self.chol, cross.T)
        mean = np.clip(np.asarray(prior_mean, dtype=float) + cross @ self.alpha, 0.0, 1.0)
        return mean, self.inflation * np.sqrt(np.maximum(prior_var - (v * v).sum(0), 1e-12))

    def loo(self, prior_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each trained candidate's prediction from the others (closed form, same hyperparameters)."""
        if len(self.x) < 2:
            return np.full(len(self.x), np.nan), np.full(len(self.x), np.nan)
        residual, std = self._loo_residuals()
        return np.clip(np.asarray(prior_mean, dtype=float) + residual, 0.0, 1.0), self.inflation * std

    def _loo_residuals(self) -> tuple[np.ndarray, np.ndarray]:
        """Each trained candidate's residual predicted from the others, and its std (uninflated)."""
        d = np.diag(_solve(self.chol, np.eye(len(self.x))))
        return self.residual - self.alpha / d, np.sqrt(1.0 / d)

    def summary(self) -> dict:
        return {
            "hyperparameters": {k: round(v, 6) for k, v in self.theta.items()},
            "std_inflation": round(self.inflation, 4),
            "trained": len(self.x),
        }


@dataclass(frozen=True)
class Calibration:
    """How predictions made without a candidate compare with its measurement."""

    n: int
    mae: float  # mean |predicted - measured|, accuracy (0-1)
    rmse: float
    kendall_tau: float  # predicted vs measured ordering
    within_1sd: float  # fraction of measurements within one predicted std (about 0.68 if calibrated)
    within_2sd: float  # about 0.95 if calibrated
    mean_std: float

    @classmethod
    def of(cls, predicted: Sequence[float], std: Sequence[float], measured: Sequence[float]) -> Calibration | None:
        p, s, m = (np.asarray(v, dtype=float) for v in (predicted, std, measured))
        ok = np.isfinite(p) & np.isfinite(s) & np.isfinite(m)
        p, s, m = p[ok], s[ok], m[ok]
        if len(p) < 2:
            return None
        err = np.abs(p - m)
        tau = kendalltau(p, m)[0] if len(p) > 2 else math.nan
        return cls(
            n=len(p),
            mae=_round(err.mean()),
            rmse=_round(math.sqrt((err**2).mean())),
            kendall_tau=_round(tau),
            within_1sd=_round((err <= s).mean()),
            within_2sd=_round((err <= 2 * s).mean()),
            mean_std=_round(s.mean()),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def standardise(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and stds of a (n, d) feature matrix (std 1 where a column is constant)."""
    features = np.asarray(features, dtype=float)
    mean, std = features.mean(0), features.std(0)
    std[~(std > 1e-12)] = 1.0
    return mean, std


def _round(v: float) -> float | None:
    """Rounded for storage; None where undefined (JSON has no NaN: SQLite's JSON functions and
    PostgreSQL reject it)."""
    return round(float(v), 5) if math.isfinite(v) else None


def _kernel(a: np.ndarray, b: np.ndarray, t: dict[str, float]) -> np.ndarray:
    sq = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return (
        t["t0"] ** 2 + t["t1"] ** 2 * np.outer(a[:, 0], b[:, 0]) + t["sf"] ** 2 * np.exp(-0.5 * sq / t["length"] ** 2)
    )


def _kernel_diag(a: np.ndarray, t: dict[str, float]) -> np.ndarray:
    return t["t0"] ** 2 + t["t1"] ** 2 * a[:, 0] ** 2 + t["sf"] ** 2


def _solve(chol: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.solve(chol.T, np.linalg.solve(chol, b))


def _neg_log_posterior(
    log_theta: np.ndarray, x: np.ndarray, y: np.ndarray, centres: np.ndarray, extra: np.ndarray
) -> float:
    t = dict(zip(HYPERPARAMETERS, np.exp(log_theta), strict=True))
    k = _kernel(x, x, t) + np.diag(t["noise"] ** 2 + extra)
    try:
        chol = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        return 1e10
    alpha = _solve(chol, y)
    nll = 0.5 * y @ alpha + np.log(np.diag(chol)).sum()
    return float(nll + 0.5 * (((log_theta - centres) / PRIOR_LOG_SD) ** 2).sum())


def _map_estimate(x: np.ndarray, y: np.ndarray, centres: dict[str, float], extra: np.ndarray) -> dict[str, float]:
    bounds = [(math.log(lo), math.log(hi)) for _, lo, hi in HYPERPARAMETERS.values()]
    start = np.log(list(centres.values()))
    result = minimize(_neg_log_posterior, start, args=(x, y, start, extra), method="L-BFGS-B", bounds=bounds)
    best = result.x if np.isfinite(result.fun) else start
    return dict(zip(HYPERPARAMETERS, (float(v) for v in np.exp(best)), strict=True))
