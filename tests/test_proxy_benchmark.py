"""The proxy ranking benchmark prints the figures of the tables it reads: each proxy's Kendall tau,
Spearman rho, recall, count and cost are recomputed here from the CSVs (independently of the
report's code) and compared with the printed table, on the committed results (whose report is
docs/proxy_ranking.md, kept current) and end to end on 3 freshly trained architectures."""

import csv
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from scipy.stats import kendalltau, spearmanr

from nas.proxies import PROXIES

ROOT = Path(__file__).resolve().parents[1]
BENCH, RESULTS = ROOT / "benchmarks", ROOT / "benchmarks" / "results"


def _number(v: str) -> float | None:
    try:
        return float(v)
    except ValueError:
        return None


def _read(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _joined(workdir: Path) -> list[dict]:
    """The trained architectures with their proxy scores, in the order they were drawn."""
    scores = {r["arch_hash"]: r for r in _read(workdir / "proxy_ranking_proxies.csv")}
    rows = [
        {**scores[r["arch_hash"]], **r} for r in _read(workdir / "proxy_ranking_train.csv") if r["arch_hash"] in scores
    ]
    return sorted(rows, key=lambda r: int(r["index"]))


def _table(report: str, header: str) -> dict[str, list[str]]:
    """The markdown table whose header row starts with ``header``: first cell -> the other cells."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 2  # past the header and |---|
    table = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = cells[1:]
    return table


def _printed(cell: str) -> float:
    return math.nan if cell == "n/a" else float(cell)


def _same(cell: str, value: float, digits: int = 3) -> bool:
    """The cell is ``value`` printed to ``digits`` decimals (n/a for NaN)."""
    return cell == "n/a" if math.isnan(value) else cell == f"{value:.{digits}f}"


def _check_ranking_table(report: str, workdir: Path) -> int:
    rows = _joined(workdir)
    truth = [float(r["truth_acc"]) for r in rows]
    long = {r["arch_hash"]: float(r["long_acc"]) for r in _read(RESULTS / "truth_long.csv")}
    step = [float(r["train_step_seconds"]) for r in rows]
    table = _table(report, "| proxy | Kendall tau |")
    for name in PROXIES:
        idx = [i for i, r in enumerate(rows) if _number(r[name]) is not None]
        scores, true = [float(rows[i][name]) for i in idx], [truth[i] for i in idx]
        tau, rho, tau_long, recall, n, secs, ratio = table[name]
        assert _same(tau, kendalltau(scores, true).statistic), (name, tau)
        assert _same(rho, spearmanr(scores, true).statistic), (name, rho)
        with_long = [i for i in idx if rows[i]["arch_hash"] in long]
        expected_long = kendalltau(
            [float(rows[i][name]) for i in with_long], [long[rows[i]["arch_hash"]] for i in with_long]
        )
        assert _same(tau_long, expected_long.statistic), (name, tau_long)
        k = max(1, len(idx) // 8)  # of the true best 1/8, how many the proxy's best 1/4 holds
        best = {idx[j] for j in sorted(range(len(idx)), key=lambda j: true[j])[-k:]}
        picked = {idx[j] for j in sorted(range(len(idx)), key=lambda j: scores[j])[-2 * k :]}
        assert recall == f"{len(best & picked)}/{k}", (name, recall)
        assert int(n) == len(idx)
        seconds = [float(rows[i][f"{name}_seconds"]) for i in idx]
        assert _same(secs, statistics.median_high(seconds)), (name, secs)
        assert _same(ratio, statistics.median_high([seconds[j] / step[i] for j, i in enumerate(idx)]), 1), (name, ratio)
    return len(rows)


def _run(*args: str, timeout: int = 600) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / "proxy_ranking.py"), *args], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_committed_report_prints_the_figures_of_its_tables(tmp_path):
    report = _run("report", "--out", str(tmp_path / "report.md"), "--threads", "1")
    assert (tmp_path / "report.md").read_text() == (ROOT / "docs" / "proxy_ranking.md").read_text()
    n = _check_ranking_table(report, RESULTS)
    assert f"- **Architectures**: {n} sampled" in report
    truth = [float(r["truth_acc"]) for r in _joined(RESULTS)]
    span = f"accuracies span {min(truth):.3f} to {max(truth):.3f} (median {statistics.median_high(truth):.3f})"
    assert span in report

    # the truth against a second training run under another seed
    first = {r["arch_hash"]: float(r["truth_acc"]) for r in _read(RESULTS / "proxy_ranking_train.csv")}
    again = [(first[r["arch_hash"]], float(r["truth_acc"])) for r in _read(RESULTS / "proxy_ranking_truth_seed1.csv")]
    a, b = zip(*again, strict=True)
    tau, rho = kendalltau(a, b).statistic, spearmanr(a, b).statistic
    diff = sum(abs(x - y) for x, y in again) / len(again)
    assert f"the first {len(again)} architectures" in report
    assert f"Kendall tau {tau:.3f} and Spearman rho {rho:.3f}" in report
    assert f"mean |difference| in accuracy is {diff:.4f}" in report

    # our proxies on the public benchmarks' networks, against their trained accuracies and NASLib's scores
    reference = _read(RESULTS / "proxy_reference.csv")
    table = _table(report, "| proxy | rho(ours, NASLib) on NB201 |")
    for name in PROXIES:
        for bench, column in (("nb201", 1), ("macro", 4)):
            pairs = [(_number(r[name]), _number(r["truth"])) for r in reference if r["benchmark"] == bench]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
            expected = spearmanr(*zip(*pairs, strict=True)).statistic if len(pairs) > 2 else math.nan
            assert _same(table[name][column], expected), (name, bench, table[name][column])
        if f"naslib_{name}" in reference[0]:
            nb201 = [r for r in reference if r["benchmark"] == "nb201"]
            pairs = [(_number(r[name]), _number(r[f"naslib_{name}"])) for r in nb201]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
            assert _same(table[name][0], spearmanr(*zip(*pairs, strict=True)).statistic), name
    assert _printed(table["synflow"][0]) > 0.95  # the reference implementation is reproduced


def test_proxy_ranking_smoke(tmp_path):
    """Every stage on 3 architectures for a few steps: the report's figures are those of its CSVs."""
    report = _run("smoke", "--workdir", str(tmp_path), "--threads", "2")
    trained = _read(tmp_path / "proxy_ranking_train.csv")
    assert len(trained) == 3 and all(0.0 <= float(r["truth_acc"]) <= 1.0 for r in trained)
    assert [r["arch_hash"] for r in _read(tmp_path / "proxy_ranking_proxies.csv")] == [r["arch_hash"] for r in trained]
    assert _check_ranking_table(report, tmp_path) == 3
    table = _table(report, "| proxy | Kendall tau |")
    assert {"**default** (jacob_cov)", "short training, 4 steps"} <= set(table)
    assert any(name.endswith("fitted on this space (nested CV)") for name in table)  # the in-space ridge
    assert "## The default: chosen by how it ranks spaces it was not fitted on" in report
    assert "NAS-Bench-Macro" in report


@pytest.mark.parametrize(
    "cell, value, ok", [("0.447", 0.4468, True), ("0.447", 0.4461, False), ("n/a", math.nan, True)]
)
def test_a_wrong_figure_fails_the_comparison(cell, value, ok):
    assert _same(cell, value) is ok
