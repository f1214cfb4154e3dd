"""The ranking benchmark end to end on 3 architectures for a few steps (the long run is not for CI)."""

import csv
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_proxy_ranking_smoke(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCH / "proxy_ranking.py"), "smoke", "--workdir", str(tmp_path), "--threads", "2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with (tmp_path / "proxy_ranking_train.csv").open() as f:
        trained = list(csv.DictReader(f))
    assert len(trained) == 3 and all(0.0 <= float(r["truth_acc"]) <= 1.0 for r in trained)
    with (tmp_path / "proxy_ranking_proxies.csv").open() as f:
        scored = list(csv.DictReader(f))
    assert [r["arch_hash"] for r in scored] == [r["arch_hash"] for r in trained]
    report = result.stdout
    for row in ("| synflow |", "| zico |", "| params |", "| **default** (jacob_cov) |", "| short training, 4 steps |"):
        assert row in report
    assert "fitted on this space (nested CV) |" in report  # the in-space ridge, for reference
    assert "## The default: chosen by how it ranks spaces it was not fitted on" in report
    assert "NAS-Bench-Macro" in report
