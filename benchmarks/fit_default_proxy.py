"""Fit the default proxy (``nas/proxies/default_proxy.json``) on the ranking benchmark's CSVs.

    python benchmarks/fit_default_proxy.py [--write]

The default is a ridge-regression ranker over standardised zero-cost scores. Which scores it uses
(any one, two or three of those that scored every architecture, or all of them) and the ridge
strength are chosen by 5-fold cross-validation on the benchmark. The figure it prints, and the one
``docs/proxy_ranking.md`` reports, is nested: every architecture is ranked by a model whose
selection and fit never saw it. ``--write`` then selects and fits on all rows and writes the file.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nas.proxies import PROXIES
from nas.proxies._default import DEFAULT, DefaultProxy
from nas.proxies._rank import kendall, spearman

RESULTS = Path(__file__).parent / "results"
ALPHAS = (0.1, 1.0, 10.0)
FOLDS = 5


def load_rows(train_csv: Path, proxy_csv: Path) -> list[dict]:
    """Architectures with both a trained accuracy and proxy scores, numeric fields as floats."""
    with proxy_csv.open() as f:
        scores = {r["arch_hash"]: r for r in csv.DictReader(f)}
    rows = []
    with train_csv.open() as f:
        for r in csv.DictReader(f):
            if r["arch_hash"] in scores:
                merged = {**scores[r["arch_hash"]], **r}
                rows.append({k: _number(v) for k, v in merged.items()})
    return sorted(rows, key=lambda r: r["index"])


def _number(v: str):
    try:
        return float(v)
    except ValueError:
        return v


def complete_proxies(rows: Sequence[dict]) -> list[str]:
    """The zero-cost proxies that scored every row (only those can be a component of the default)."""
    return [n for n in PROXIES if all(isinstance(r.get(n), float) for r in rows)]


def candidate_sets(names: Sequence[str]) -> list[tuple[str, ...]]:
    sets = [c for k in (1, 2, 3) for c in itertools.combinations(names, k)]
    return [*sets, tuple(names)] if len(names) > 3 else sets


def folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def out_of_fold(rows, target, components, alpha, k: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Each row's prediction from a ridge ranker fitted on the other folds."""
    pred = np.empty(len(rows))
    for held in folds(len(rows), k, seed):
        if not len(held):
            continue
        fit_idx = np.setdiff1d(np.arange(len(rows)), held)
        model = DefaultProxy.fit(components, [rows[i] for i in fit_idx], [target[i] for i in fit_idx], alpha)
        pred[held] = [model.combine(rows[i]) for i in held]
    return pred


def select(rows, target, names, seed: int = 0) -> tuple[tuple[str, ...], float, float]:
    """The (components, alpha) with the best cross-validated Kendall tau on ``rows``."""
    best = None
    for components in candidate_sets(names):
        for alpha in ALPHAS:
            tau = kendall(out_of_fold(rows, target, components, alpha, seed=seed), target)
            if best is None or tau > best[2]:
                best = (components, alpha, tau)
    return best


def nested_out_of_fold(rows, target, names, seed: int = 0) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Out-of-fold predictions where the selection, too, happened without the held-out fold."""
    pred, chosen = np.empty(len(rows)), []
    for held in folds(len(rows), FOLDS, seed + 1):
        if not len(held):
            continue
        fit_idx = np.setdiff1d(np.arange(len(rows)), held)
        fit_rows, fit_target = [rows[i] for i in fit_idx], [target[i] for i in fit_idx]
        components, alpha, _ = select(fit_rows, fit_target, names, seed)
        model = DefaultProxy.fit(components, fit_rows, fit_target, alpha)
        pred[held] = [model.combine(rows[i]) for i in held]
        chosen.append(components)
    return pred, chosen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-csv", type=Path, default=RESULTS / "proxy_ranking_train.csv")
    parser.add_argument("--proxy-csv", type=Path, default=RESULTS / "proxy_ranking_proxies.csv")
    parser.add_argument("--write", action="store_true", help=f"write {DEFAULT.name} into the package")
    parser.add_argument("--out", type=Path, default=DEFAULT)
    args = parser.parse_args(argv)
    rows = load_rows(args.train_csv, args.proxy_csv)
    target = [r["truth_acc"] for r in rows]
    names = complete_proxies(rows)
    pred, chosen = nested_out_of_fold(rows, target, names)
    tau, rho = kendall(pred, target), spearman(pred, target)
    print(f"{len(rows)} architectures; candidate components: {', '.join(names)}")
    print(f"nested 5-fold out-of-fold ranking: Kendall tau {tau:.3f}, Spearman rho {rho:.3f}")
    print("components chosen per outer fold: " + "; ".join("+".join(c) for c in chosen))
    components, alpha, cv_tau = select(rows, target, names)
    print(f"selected on all rows: {'+'.join(components)} (alpha {alpha}), 5-fold Kendall tau {cv_tau:.3f}")
    if args.write:
        model = DefaultProxy.fit(components, rows, target, alpha)
        provenance = {
            "benchmark": "benchmarks/proxy_ranking.py (docs/proxy_ranking.md)",
            "architectures": len(rows),
            "target": "rank of Fashion-MNIST test accuracy after 3 epochs over 10k images at 32x32",
            "nested_cv_kendall": round(tau, 4),
            "nested_cv_spearman": round(rho, 4),
        }
        model = DefaultProxy(model.components, model.mean, model.std, model.weights, alpha, provenance)
        args.out.write_text(model.to_json())
        print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
