"""The INT8 drop of a network nobody quantized yet: FP32 minus INT8 top-1 accuracy (0-1), predicted
from what the network contains, with a standard deviation.

    predictor = Int8DropPredictor()                  # the shipped prior (nas/int8_drop.json)
    predictor.fit(arch_jsons, params, drops)         # the job's own measured drops
    mean, std = predictor.predict(arch_jsons, params)

Two parts, as the accuracy predictor (``nas.surrogate``) has:

- a **prior**: a ridge regression from the architecture's features (``FEATURES``: share of blocks per
  mixer family, norm, activation, depth, width, log parameters) to the drop, fitted on the INT8
  study's networks (``benchmarks/int8_study.py prior``; docs/int8.md) under ``nas.int8``'s default
  recipe, shipped as JSON with its held-out errors. Its std is the spread of the study's drops
  around it, never below the measured noise of one INT8 measurement (how far the drop moves when
  only the calibration images change);
- a **per-job offset**: the job's measured drops move the whole prior by a Bayesian mean shift
  (normal prior of ``OFFSET_SD`` on the shift): another dataset or recipe may quantize worse, and
  a few measurements say so; the shift's uncertainty adds to every std.

On the study's task the drops are at the noise level (docs/int8.md), and the model says so: its
mean is near zero and its std is the noise. numpy only: no torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces import ArchConfig

PRIOR_JSON = Path(__file__).with_name("int8_drop.json")
MIXER_FAMILIES = {  # the accuracy predictor's grouping (nas.search._predictor), kept in step
    "conv": ("sepconv", "dwconv", "mbconv"),
    "attention": ("attention", "window_attention"),
    "mlp": ("spatial_mlp",),
    "pool": ("pooling", "identity"),
}
FEATURES = (
    "share_conv", "share_attention", "share_mlp", "share_pool",  # blocks per mixer family / all blocks
    "batchnorm",  # the blocks' norm is BatchNorm (else a LayerNorm or GroupNorm(1))
    "act_gelu", "act_starrelu",  # else ReLU
    "head_mlp",  # the MLP head (else linear)
    "depth", "log_width", "log_params",
)  # fmt: skip
OFFSET_SD = 0.01  # prior spread of a job's own shift of every drop (another dataset or recipe), accuracy 0-1


class Int8DropError(ValueError):
    """Inputs the drop predictor cannot use; the message names the field."""


def drop_features(arch_json: str, params: float | None) -> np.ndarray:
    """``FEATURES`` of one network (raw units); ``params`` None leaves log parameters NaN (the prior
    then reads its training mean there)."""
    arch = ArchConfig.from_json(arch_json)
    depths = [s.depth for s in arch.stages]
    total = sum(depths) or 1
    share = [sum(s.depth for s in arch.stages if s.mixer in fam) / total for fam in MIXER_FAMILIES.values()]
    width = sum(s.dim * s.depth for s in arch.stages) / total
    return np.array(
        [
            *share,
            float(arch.norm == "batchnorm"),
            float(arch.act == "gelu"),
            float(arch.act == "starrelu"),
            float(arch.head == "mlp"),
            float(total),
            math.log(width),
            math.log(params) if params else math.nan,
        ]
    )


@dataclass(frozen=True)
class DropPrior:
    """A ridge regression from standardised ``FEATURES`` to the drop, with its spread."""

    centre: list[float]  # feature means (raw units)
    scale: list[float]  # feature stds
    coef: list[float]  # per standardised feature
    intercept: float
    ridge: float
    residual_std: float  # spread of the fitted networks' drops around the map (held out)
    noise_std: float  # one INT8 measurement's own noise: the floor of every std
    gram_inv: list[list[float]]  # (X'X + ridge I)^-1, for the coefficients' uncertainty
    fitted_on: dict[str, Any] = field(default_factory=dict)
    held_out: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        drops: Sequence[float],
        *,
        ridge: float,
        noise_std: float,
        fitted_on: dict[str, Any] | None = None,
        held_out: dict[str, Any] | None = None,
    ) -> DropPrior:
        """``x``: raw ``FEATURES`` per network (NaN: unknown); ``drops``: their measured drops;
        ``noise_std``: one measurement's noise, the floor of the spread."""
        x, y = np.asarray(x, dtype=float), np.asarray(drops, dtype=float)
        if len(x) != len(y) or len(y) < 3:
            raise Int8DropError(f"drops: need at least 3 networks with features, got {len(y)}")
        centre = np.nanmean(x, 0)
        x = np.where(np.isnan(x), centre, x)
        scale = x.std(0)
        scale[~(scale > 1e-12)] = 1.0
        z = (x - centre) / scale
        intercept = float(y.mean())
        gram_inv = np.linalg.inv(z.T @ z + ridge * np.eye(z.shape[1]))
        coef = gram_inv @ z.T @ (y - intercept)
        # leave-one-out residuals of the ridge fit (closed form, hat matrix) give an honest spread
        hat = np.einsum("ij,jk,ik->i", z, gram_inv, z) + 1.0 / len(y)
        loo = (y - intercept - z @ coef) / np.clip(1.0 - hat, 1e-3, None)
        residual_std = max(float(np.sqrt(np.mean(loo**2))), noise_std)
        return cls(
            centre.tolist(), scale.tolist(), coef.tolist(), intercept, ridge, residual_std, noise_std,
            gram_inv.tolist(), dict(fitted_on or {}), dict(held_out or {}),
        )  # fmt: skip

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        centre = np.asarray(self.centre)
        z = (np.where(np.isnan(x), centre, x) - centre) / np.asarray(self.scale)
        mean = self.intercept + z @ np.asarray(self.coef)
        # the map's own uncertainty (coefficients) on top of the networks' spread around it
        sigma2 = self.residual_std**2
        spread = sigma2 * (np.einsum("ij,jk,ik->i", z, np.asarray(self.gram_inv), z) + 1.0 / max(self.n, 1))
        return mean, np.sqrt(sigma2 + spread)

    @property
    def n(self) -> int:
        return int(self.fitted_on.get("networks", 0))

    def to_json(self) -> str:
        return json.dumps({"features": list(FEATURES), **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> DropPrior:
        data = json.loads(text)
        if data.pop("features", None) != list(FEATURES):
            raise Int8DropError("the prior's features differ from FEATURES: refit it (benchmarks/int8_study.py prior)")
        return cls(**data)


class Int8DropPredictor:
    """Predicted INT8 drop (FP32 - INT8 top-1, 0-1) of a job's networks, with a std: the shipped
    prior, shifted by what the job measured."""

    def __init__(self, prior: DropPrior | None = None) -> None:
        self.prior = prior if prior is not None else DropPrior.from_json(PRIOR_JSON.read_text())
        self.offset, self.offset_std, self.measured = 0.0, OFFSET_SD, 0

    def fit(self, arch_jsons: list[str], params: list[float | None], drops: list[float]) -> None:
        """The job's measured drops (same order as ``arch_jsons`` and ``params``)."""
        if not len(arch_jsons) == len(params) == len(drops):
            raise Int8DropError(
                f"arch_jsons, params, drops: need one each per network, got {len(arch_jsons)}, {len(params)}, {len(drops)}"
            )
        y = np.asarray(drops, dtype=float)
        if not np.isfinite(y).all():
            raise Int8DropError("drops: every measured drop must be a finite number (accuracy units, 0-1)")
        self.measured = len(y)
        if not len(y):
            self.offset, self.offset_std = 0.0, OFFSET_SD
            return
        prior_mean, _ = self.prior.predict(self._features(arch_jsons, params))
        # a shared shift b ~ N(0, OFFSET_SD^2); each measurement = prior mean + b + e, e ~ N(0, residual_std^2);
        # the residuals' median stands for their mean: one collapsed network (docs/int8.md: 76 points)
        # must not move every other network's prediction; it is measured, and shown as measured
        precision = 1.0 / OFFSET_SD**2 + len(y) / self.prior.residual_std**2
        shift = float(np.median(y - prior_mean)) * len(y)
        self.offset = float(shift / self.prior.residual_std**2 / precision)
        self.offset_std = float(math.sqrt(1.0 / precision))

    def predict(self, arch_jsons: Sequence[str], params: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray]:
        """Mean drop and its std per network (accuracy units, 0-1)."""
        if len(arch_jsons) != len(params):
            raise Int8DropError(f"arch_jsons, params: need one each per network, got {len(arch_jsons)}, {len(params)}")
        if not len(arch_jsons):
            return np.zeros(0), np.zeros(0)
        mean, std = self.prior.predict(self._features(arch_jsons, params))
        return mean + self.offset, np.sqrt(std**2 + self.offset_std**2)

    def summary(self) -> dict[str, Any]:
        return {
            "model": "ridge prior from architecture features (nas/int8_drop.json) + the job's Bayesian offset",
            "target": "FP32 - INT8 top-1 accuracy (0-1), INT8 under nas.int8's default recipe",
            "features": list(FEATURES),
            "prior": {
                "fitted_on": self.prior.fitted_on,
                "held_out": self.prior.held_out,
                "residual_std": round(self.prior.residual_std, 5),
                "noise_std": round(self.prior.noise_std, 5),
            },
            "job": {
                "measured": self.measured,
                "offset": round(self.offset, 5),
                "offset_std": round(self.offset_std, 5),
            },
        }

    @staticmethod
    def _features(arch_jsons: Sequence[str], params: Sequence[float | None]) -> np.ndarray:
        return np.stack([drop_features(a, p) for a, p in zip(arch_jsons, params, strict=True)])
