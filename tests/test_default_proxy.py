"""The shipped default proxy is the one its own selection picks, and it ranks spaces it was not
fitted on at least as well as counting does (the committed benchmark CSVs, no training here)."""

import sys
from pathlib import Path

import pytest

from nas.proxies._default import load_default

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture
def fitting(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import fit_default_proxy

    yield fit_default_proxy
    sys.modules.pop("fit_default_proxy", None)


def test_the_shipped_default_is_the_selection_and_meets_the_bars(fitting):
    benchmarks = fitting.ranking_benchmarks()
    assert len(benchmarks["ours"]) >= 16  # the networks with the long truth
    best, table = fitting.choose(benchmarks)
    default = load_default()
    assert best == "+".join(default.components)  # regenerate with `fit_default_proxy.py --write`
    bar = fitting.baselines(benchmarks)
    for name in benchmarks:
        assert table[best][name][0] >= bar[name], name
    singles = [label for label in table if not label.startswith("ridge")]
    assert table[best]["ours"][0] >= max(table[s]["ours"][0] for s in singles)
    for name, (label, rho, _) in fitting.nested_choice(benchmarks).items():  # the choice held out too
        assert rho >= bar[name], (name, label)
    assert default.fitted_on["leave_one_benchmark_out_spearman"] == {
        b: pytest.approx(table[best][b][0], abs=1e-4) for b in benchmarks
    }


def test_the_prior_map_gives_accuracies_on_the_benchmark(fitting):
    default = load_default()
    rows = fitting.load_benchmarks()["ours"]
    predicted = [default.prior_accuracy(default.combine(r)) for r in rows]
    truth = [r["truth_acc"] for r in rows]
    assert all(0.5 < p < 1.0 for p in predicted)
    # an in-sample least-squares fit: its residual spread is what the file says
    residual = [t - p for t, p in zip(truth, predicted, strict=True)]
    assert abs(sum(residual) / len(residual)) < 1e-9
    assert default.accuracy_prior["residual_std"] == pytest.approx(
        (sum(r * r for r in residual) / (len(residual) - 2)) ** 0.5, rel=1e-6
    )
