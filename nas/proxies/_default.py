"""The default proxy: a linear ranker over zero-cost proxy features, chosen by how it ranks trained
networks of spaces it was not fitted on, and shipped as ``default_proxy.json`` with a map from its
score to accuracy (the prior of the jobs' accuracy predictor, ``nas.surrogate``).

``benchmarks/fit_default_proxy.py`` regenerates the file; its leave-one-benchmark-out figures are
in ``docs/proxy_ranking.md``. Proxies whose scores span orders
of magnitude enter as logarithms, so a change of input resolution (which scales FLOPs) shifts a
feature by a constant and leaves the ranking of a batch of candidates unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

DEFAULT = Path(__file__).with_name("default_proxy.json")
# Positive scores spanning orders of magnitude; the others are already logarithms or log-dets.
LOG_SCALED = frozenset({"params", "flops", "snip", "grad_norm", "fisher"})
# Negative sums of positive terms spanning orders of magnitude (jacob_cov's 1/eigenvalue terms).
NEG_LOG_SCALED = frozenset({"jacob_cov"})


def feature(name: str, value: float) -> float:
    """A proxy score as the ranker sees it: monotone in the score, on a scale a linear model can use."""
    if name in LOG_SCALED:
        return math.log(max(value, 1e-30))
    if name in NEG_LOG_SCALED:
        return -math.log(max(-value, 1e-30))
    return value


@dataclass(frozen=True)
class DefaultProxy:
    components: list[str]
    mean: list[float]
    std: list[float]
    weights: list[float]
    alpha: float = 1.0
    fitted_on: dict = field(default_factory=dict)  # provenance: benchmarks, held-out figures
    accuracy_prior: dict | None = None  # intercept + slope * score -> accuracy, residual_std, fitted_on

    def combine(self, values: Mapping[str, float]) -> float:
        x = np.array([feature(n, values[n]) for n in self.components])
        return float(((x - np.array(self.mean)) / np.array(self.std)) @ np.array(self.weights))

    def prior_accuracy(self, score: float) -> float | None:
        """The accuracy the shipped map gives a score (None: the file carries no map)."""
        p = self.accuracy_prior
        return None if p is None else p["intercept"] + p["slope"] * score

    @classmethod
    def fit(
        cls, components: Sequence[str], rows: Sequence[Mapping[str, float]], target: Sequence[float], alpha: float
    ) -> DefaultProxy:
        """Ridge regression of the standardised ``target`` ranks on the standardised features."""
        x = np.array([[feature(n, row[n]) for n in components] for row in rows], dtype=float)
        mean, std = x.mean(0), x.std(0)
        std[std == 0] = 1.0
        z = (x - mean) / std
        ranks = np.argsort(np.argsort(np.asarray(target, dtype=float))).astype(float)
        t = (ranks - ranks.mean()) / (ranks.std() or 1.0)
        weights = np.linalg.solve(z.T @ z + alpha * np.eye(len(components)), z.T @ t)
        return cls(list(components), mean.tolist(), std.tolist(), weights.tolist(), alpha)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


@cache
def load_default(path: Path = DEFAULT) -> DefaultProxy:
    return DefaultProxy(**json.loads(path.read_text()))
