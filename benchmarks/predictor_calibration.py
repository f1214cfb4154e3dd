"""How well a job's accuracy predictor predicts networks it did not train, on three benchmarks.

    python benchmarks/predictor_calibration.py [--draws 20] --out docs/predictor_calibration.md

A job trains k of its candidates and predicts the rest (``nas.search._predictor``). This replays
that on the trained benchmarks of docs/proxy_ranking.md, whose networks all have a known accuracy:
k networks drawn at random are "trained" (their accuracy revealed), the predictor is fitted on them
exactly as a job fits it (same features, standardisation over all candidates, same Gaussian
process) and predicts every other network of the benchmark. Reported over ``--draws`` draws per k:
mean absolute error, Kendall tau against the truth, and how often the truth falls within one and
two predicted standard deviations (about 68 % and 95 % if the spreads are honest), against the
naive prediction (the mean of the k measured). No training happens here: seconds.

On NAS-Bench-201 and NAS-Bench-Macro the predictor has no prior map (as for any dataset but the
benchmark's own) and no architecture encoding (not MetaFormers): the path a user's own space takes.
On ours, the shipped prior map was fitted on these very networks, so that row is in-sample for the
prior; the row without it is not.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from fit_default_proxy import load_benchmarks
from scipy.stats import kendalltau

from nas.proxies._default import feature, load_default
from nas.search._predictor import UNKNOWN_OFFSET, predictor_features
from nas.surrogate import AccuracySurrogate, standardise

KS = (4, 8, 16, 32)


def features(name: str, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(features, accuracy 0-1) of a benchmark's networks, as a job would see them."""
    default = load_default()
    x = np.array(
        [
            predictor_features(
                feature("default", default.combine(r)), r["params"], r["flops"], r["arch"] if name == "ours" else ""
            )
            for r in rows
        ]
    )
    y = np.array([r["truth"] / (100.0 if name != "ours" else 1.0) for r in rows])
    return x, y


def replay(x: np.ndarray, y: np.ndarray, k: int, draws: int, prior: np.ndarray | None, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    centre, scale = standardise(x)
    z = (x - centre) / scale
    out = {m: [] for m in ("mae", "naive_mae", "tau", "within_1sd", "within_2sd", "std")}
    for _ in range(draws):
        trained = rng.choice(len(y), size=k, replace=False)
        rest = np.setdiff1d(np.arange(len(y)), trained)
        if prior is None:
            m_train = m_rest = np.full(1, y[trained].mean())
            m_train, m_rest = np.full(k, m_train[0]), np.full(len(rest), m_rest[0])
            model = AccuracySurrogate.fit(z[trained], y[trained], m_train, offset=UNKNOWN_OFFSET)
        else:
            m_train, m_rest = prior[trained], prior[rest]
            model = AccuracySurrogate.fit(z[trained], y[trained], m_train)
        mean, std = model.predict(z[rest], m_rest)
        err = np.abs(mean - y[rest])
        out["mae"].append(err.mean())
        out["naive_mae"].append(np.abs(y[trained].mean() - y[rest]).mean())
        out["tau"].append(kendalltau(mean, y[rest])[0])
        out["within_1sd"].append((err <= std).mean())
        out["within_2sd"].append((err <= 2 * std).mean())
        out["std"].append(std.mean())
    return {m: float(np.nanmedian(v)) for m, v in out.items()}


def report(draws: int) -> str:
    benchmarks = load_benchmarks()
    default = load_default()
    names = {"ours": "ours (64, MetaFormer)", "nb201": "NAS-Bench-201 (150)", "macro": "NAS-Bench-Macro (100)"}
    lines = [
        "# The accuracy predictor on networks it did not train",
        "",
        "Printed by `benchmarks/predictor_calibration.py` (see its docstring). Medians over"
        f" {draws} random draws of the k trained networks; accuracy as a fraction (0-1).",
        "",
        "| benchmark | prior mean | k trained | MAE | naive MAE | Kendall tau | within 1 std | within 2 std |"
        " mean std |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rows in benchmarks.items():
        x, y = features(name, rows)
        priors: list[tuple[str, np.ndarray | None]] = [("mean of measured", None)]
        if name == "ours":
            priors.append(
                ("shipped map (fitted here: in-sample)", np.array([default.prior_accuracy(s) for s in x[:, 0]]))
            )
        for label, prior in priors:
            for k in KS:
                r = replay(x, y, k, draws, prior)
                lines.append(
                    f"| {names[name]} | {label} | {k} | {r['mae']:.4f} | {r['naive_mae']:.4f} | {r['tau']:.3f} |"
                    f" {r['within_1sd']:.0%} | {r['within_2sd']:.0%} | {r['std']:.4f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    text = report(args.draws)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
