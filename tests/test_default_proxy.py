"""The shipped default proxy is the one its own selection picks, and it ranks spaces it was not
fitted on at least as well as counting does (the committed benchmark CSVs, no training here).
``benchmarks/fit_default_proxy.py`` runs as its users run it; no test imports it."""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nas.proxies._default import DEFAULT, load_default

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@pytest.fixture(scope="module")
def selection(tmp_path_factory):
    """The script's printout and the file its ``--write`` writes (into a temporary folder)."""
    out = tmp_path_factory.mktemp("default") / DEFAULT.name
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fit_default_proxy.py"), "--write", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def _figures(line: str) -> dict[str, float]:
    return {b: float(v) for b, v in re.findall(r"(ours|nb201|macro) (-?\d+\.\d+)", line)}


def test_the_shipped_default_is_what_its_selection_writes(selection):
    _, written = selection
    assert written == json.loads(DEFAULT.read_text())  # regenerate with `fit_default_proxy.py --write`


def test_the_default_meets_the_bars_on_every_benchmark(selection):
    text, _ = selection
    lines = text.splitlines()
    assert re.match(r"ours: (\d+) networks", lines[0]) and int(lines[0].split()[1]) >= 16  # with the long truth
    bar = _figures(lines[2])
    rows = {line.split("  ours")[0].strip(): _figures(line) for line in lines[3:] if "  ours " in line}
    (best,) = [line.split("  ours")[0].strip() for line in lines if line.endswith("<- default")]
    default = load_default()
    assert best == "+".join(default.components)
    assert set(bar) == {"ours", "nb201", "macro"}
    for b in bar:
        assert rows[best][b] >= bar[b], b
        assert rows[best][b] == pytest.approx(default.fitted_on["leave_one_benchmark_out_spearman"][b], abs=5e-4)
    singles = [label for label in rows if not label.startswith("ridge")]
    assert rows[best]["ours"] >= max(rows[s]["ours"] for s in singles)
    held_out = text.split("the selection held out")[1].splitlines()[1:]
    nested = {
        m.group(1): float(m.group(2)) for m in (re.match(r"\s+(\w+): .* (-?\d+\.\d+)$", s) for s in held_out) if m
    }
    assert set(nested) == set(bar) and all(nested[b] >= bar[b] for b in bar), nested  # the choice held out too


def test_the_prior_map_gives_accuracies_on_the_benchmark():
    with (RESULTS / "proxy_ranking_proxies.csv").open() as f:
        scores = {r["arch_hash"]: r for r in csv.DictReader(f)}
    with (RESULTS / "proxy_ranking_train.csv").open() as f:
        trained = [r for r in csv.DictReader(f) if r["arch_hash"] in scores]
    default = load_default()
    rows = [{n: float(scores[r["arch_hash"]][n]) for n in default.components} for r in trained]
    predicted = [default.prior_accuracy(default.combine(r)) for r in rows]
    truth = [float(r["truth_acc"]) for r in trained]
    assert len(rows) >= 16 and all(0.5 < p < 1.0 for p in predicted)
    # an in-sample least-squares fit: its residuals average zero, and their spread is what the file says
    residual = [t - p for t, p in zip(truth, predicted, strict=True)]
    assert abs(sum(residual) / len(residual)) < 1e-9
    assert default.accuracy_prior["residual_std"] == pytest.approx(
        (sum(r * r for r in residual) / (len(residual) - 2)) ** 0.5, rel=1e-6
    )
