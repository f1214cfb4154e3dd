"""The public benchmarks' networks, built from their papers' definitions, match the tables; our
data-free synflow reproduces NASLib's synflow ranking on NAS-Bench-201."""

import csv
import json
import random
from pathlib import Path

from reference_networks import macro_network, nb201_network
from scipy.stats import spearmanr

from nas.proxies import score

TABLES = Path(__file__).resolve().parents[1] / "benchmarks" / "data"


def nb201_rows(n: int) -> list[dict]:
    with (TABLES / "naslib_zc_nasbench201.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == "cifar10"]
    return random.Random(1).sample(rows, n)


def test_nb201_parameter_counts_equal_the_table():
    for row in nb201_rows(40):
        params = sum(p.numel() for p in nb201_network(row["nb201_arch_str"]).parameters())
        assert params == round(float(row["params"]) * 1e6), row["nb201_arch_str"]


def test_macro_parameter_counts_equal_the_table():
    table = json.loads((TABLES / "nas-bench-macro_cifar10.json").read_text())
    for code in random.Random(1).sample(sorted(table), 40):
        assert sum(p.numel() for p in macro_network(code).parameters()) == table[code]["params"], code


def test_our_synflow_ranks_nb201_cells_as_naslib_does():
    rows = nb201_rows(30)
    ours = [score(nb201_network(r["nb201_arch_str"]), (1, 3, 32, 32), names=["synflow"])["synflow"] for r in rows]
    assert spearmanr(ours, [float(r["synflow"]) for r in rows]).statistic > 0.95
