"""The plug-in protocol, through NAS-Bench-Macro (tests/nasbench_macro.py) and broken plug-ins."""

import random
import sys

import pytest
from nasbench_macro import MacroArch, MacroSpace, load_table
from reference_networks import macro_network

from nas.search import run, submit
from nas.spec import SpecError, load_spec
from nas.store import Store
from search_spaces import trace


def test_macro_ir_equals_tracing_the_whole_network():
    rng = random.Random(0)
    for code in ["00000000", "22222222", *("".join(rng.choice("012") for _ in range(8)) for _ in range(4))]:
        assert MacroSpace().lower(MacroArch(code), (3, 32, 32), 10) == trace(macro_network(code), (3, 32, 32)), code


def test_a_search_on_nas_bench_macro_through_the_protocol(sqlite_url):
    store = Store(sqlite_url)
    spec = load_spec({
        "space": {"plugin": "nasbench_macro:MacroSpace"},
        "input_shape": [3, 32, 32],
        "evaluator": {"plugin": "nasbench_macro:MacroTable"},
        "budget": {"trials": 30},
        "workers": {"count": 0},
    })  # fmt: skip
    job = submit(store, spec)
    assert job.reference_point["accuracy"] == 0.0  # the evaluator's declared floor
    job = run(store, job.id)
    table = load_table()
    cands = store.candidates(job.id)
    assert job.n_trials == 30 and cands
    for c in cands:
        code = c.arch_hash
        assert c.metrics["accuracy"] == pytest.approx(table[code]["mean_acc"])
        assert c.metrics["params"] == table[code]["params"]  # priced from the same network the table trained
    assert store.pareto(job.id)


class NotASpace:
    name = "half"

    def sample(self, trial):
        return None


def test_broken_plugins_are_named(sqlite_url, monkeypatch):
    monkeypatch.setitem(sys.modules, "broken_plugins", sys.modules[__name__])
    store = Store(sqlite_url)
    with pytest.raises(SpecError, match=r"space\.plugin: broken_plugins:NotASpace lacks lower, arch_from_json"):
        submit(store, load_spec({"space": {"plugin": "broken_plugins:NotASpace"}}))
    with pytest.raises(SpecError, match=r"space\.options: broken_plugins:NotASpace rejected them"):
        submit(store, load_spec({"space": {"plugin": "broken_plugins:NotASpace", "options": {"x": 1}}}))
    with pytest.raises(SpecError, match=r"space\.plugin: module 'broken_plugins' has no 'Nope'"):
        submit(store, load_spec({"space": {"plugin": "broken_plugins:Nope"}}))
    with pytest.raises(SpecError, match="a plug-in space needs a plug-in evaluator"):
        from nas.plugins import make_evaluator

        make_evaluator(load_spec({"space": {"plugin": "broken_plugins:NotASpace"}}))
