"""The search loop in the job's own process (`workers.count: 0`) on SQLite/PostgreSQL and Optuna's
RDBStorage: budgets, duplicates, infeasible candidates, resume. Ray workers: test_search_ray.py."""

import collections

import optuna
import pytest
from optuna.trial import TrialState
from search_plugins import evaluations

from nas.plugins import MetaFormerSpace
from nas.pricing import resolve_accelerator
from nas.search import JobStateError, cancel, price, run, submit
from nas.spec import SpecError, load_spec
from nas.store import Store
from search_spaces import get_space, sample_archs

SHAPE = [3, 64, 64]


def toy_spec(log=None, options=None, **over):
    """A job on the tiny space scored by ``search_plugins.ToyEvaluator``; dict overrides merge."""
    toy_options = {"log": str(log) if log else None, **(options or {})}
    spec = {
        "name": "toy",
        "space": "metaformer-tiny",
        "input_shape": SHAPE,
        "evaluator": {"plugin": "search_plugins:ToyEvaluator", "options": toy_options},
        "budget": {"trials": 40},
        "workers": {"count": 0},
    }
    for key, value in over.items():
        merge = isinstance(value, dict) and key in spec and key != "evaluator"
        spec[key] = {**spec[key], **value} if merge else value
    return load_spec(spec)


def median_latency():
    spec = load_spec({"space": "metaformer-tiny", "input_shape": SHAPE})
    space, acc = MetaFormerSpace(get_space("metaformer-tiny")), resolve_accelerator(spec)
    lat = sorted(price(space, a, spec, acc).metrics["latency_ms"] for a in sample_archs(space.space, 60, seed=1))
    return lat[len(lat) // 2]


def check_consistent(store, job_id, budget):
    """What every finished job must satisfy, whatever happened to it."""
    job = store.get_job(job_id)
    trials, cands = store.trials(job_id), store.candidates(job_id)
    assert job.n_trials == len(trials) == budget
    assert job.n_complete + job.n_infeasible + job.n_failed == len(cands)
    assert job.n_duplicates == sum(t.outcome == "duplicate" for t in trials.values())
    assert len({c.arch_hash for c in cands}) == len(cands)
    study = optuna.load_study(study_name=job.study_name, storage=store.url)
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert TrialState.RUNNING not in states.values()
    for number, t in trials.items():  # the store and Optuna agree on every recorded trial
        assert states[number] == (TrialState.FAIL if t.values is None else TrialState.COMPLETE)
    return job, trials, cands, study


def test_a_job_runs_to_budget_and_never_pays_twice(sqlite_url, tmp_path):
    store, log = Store(sqlite_url), tmp_path / "evals.log"
    bound = median_latency()
    spec = toy_spec(log, constraints={"max_latency_ms": bound}, sampler="tpe")
    job = run(store, submit(store, spec).id)
    assert job.status == "completed"
    job, trials, cands, study = check_consistent(store, job.id, 40)
    evaluated = evaluations(log)
    by_status = collections.defaultdict(set)
    for c in cands:
        by_status[c.status].add(c.arch_hash)
    assert len(evaluated) == len(set(evaluated))  # no architecture scored twice
    assert set(evaluated) == by_status["complete"] | by_status["failed"]  # infeasible ones never built
    assert by_status["infeasible"] and by_status["complete"]
    for c in cands:
        if c.status == "infeasible":
            assert (
                c.metrics["latency_ms"] > bound and c.violations["max_latency_ms"] > 0 and c.metrics["accuracy"] is None
            )
        else:
            assert c.metrics["latency_ms"] <= bound and not c.violations
    optuna_trials = {t.number: t for t in study.trials}
    for number, t in trials.items():
        if t.outcome == "infeasible":
            assert optuna_trials[number].constraints["max_latency_ms"] > 0
    front = store.pareto(job.id)
    assert front and all(c.status == "complete" for c in front)


def test_every_sampler_runs_a_constrained_job(sqlite_url):
    store = Store(sqlite_url)
    for sampler in ("nsga2", "nsga3", "gp", "random"):
        spec = toy_spec(None, sampler=sampler, budget={"trials": 14}, constraints={"max_latency_ms": median_latency()})
        job = run(store, submit(store, spec).id)
        assert job.status == "completed" and job.n_trials == 14, sampler


def test_submit_names_a_broken_plugin(sqlite_url):
    store = Store(sqlite_url)
    bad = load_spec({"space": "metaformer-tiny", "evaluator": {"plugin": "no_such_module:Eval"}})
    with pytest.raises(SpecError, match=r"evaluator\.plugin: cannot import module 'no_such_module'"):
        submit(store, bad)
    with pytest.raises(SpecError, match="space: unknown search space 'nope'"):
        submit(store, load_spec({"space": "nope"}))
    with pytest.raises(SpecError, match="accelerator: "):
        submit(store, load_spec({"accelerator": "nope"}))
    assert store.list_jobs() == []  # nothing half-created


def test_a_completed_job_cannot_run_again(sqlite_url):
    store = Store(sqlite_url)
    job = run(store, submit(store, toy_spec(budget={"trials": 3})).id)
    with pytest.raises(JobStateError, match="completed its budget"):
        run(store, job.id, resume=True)
    with pytest.raises(JobStateError, match="`nas resume"):
        run(store, job.id)


def test_a_job_cancelled_before_it_runs_can_be_resumed(sqlite_url):
    store = Store(sqlite_url)
    job = submit(store, toy_spec(budget={"trials": 5}))
    assert cancel(store, job.id).status == "cancelled"
    assert run(store, job.id, resume=True).n_trials == 5


@pytest.mark.postgres
def test_a_job_on_postgresql(postgres_url):
    store = Store(postgres_url)
    job = run(store, submit(store, toy_spec(budget={"trials": 25})).id)
    job, *_ = check_consistent(store, job.id, 25)
    assert job.hypervolume is not None and store.hypervolume_history(job.id)


def test_the_constraints_optuna_hears_are_the_stored_ones_by_name(tmp_path):
    """One seam writes a trial and tells Optuna: the same constraint values, under their names."""
    from nas.verdict import constraint_names

    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    spec = toy_spec(budget={"trials": 25}, constraints={"max_latency_ms": 0.2, "max_params": 900_000})
    job = run(store, submit(store, spec).id)
    assert constraint_names(spec.constraints) == ("max_latency_ms", "max_params", "deployable_only")
    stored = store.trials(job.id)
    study = optuna.load_study(study_name=job.study_name, storage=store.url)
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.constraints == stored[t.number].constraints
        assert list(stored[t.number].constraints) == ["max_latency_ms", "max_params", "deployable_only"]
    infeasible = store.candidates(job.id, status="infeasible")
    assert infeasible and all(c.failure.startswith("violates: ") for c in infeasible)


def test_job_control_loads_neither_torch_nor_ray():
    """`nas cancel`, `nas jobs`, `nas pareto` import nas.jobs: it must stay light (no lazy hooks)."""
    import subprocess
    import sys

    code = (
        "import sys, nas.jobs\n"
        "from nas.jobs import cancel, check_can_run, owner_alive, stored_report, submit\n"
        "print(sorted(m for m in ('torch', 'ray', 'nas.search') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    import nas.search  # the loop's package: every public name importable from it, plainly

    for name in nas.search.__all__:
        assert getattr(nas.search, name) is not None


def test_a_cancel_stops_the_dispatch_of_the_next_trial(sqlite_url):
    """Fast trials: a cancel asked after the third trial stops the fourth, not a heartbeat later."""
    store = Store(sqlite_url)
    job = submit(store, toy_spec(budget={"trials": 200}))

    def ask_at_three(seen):
        if seen.n_trials == 3 and not seen.cancel_requested:
            store.request_cancel(seen.id)

    done = run(store, job.id, progress=ask_at_three)
    assert done.status == "cancelled"
    assert done.n_trials == 3


def test_one_function_decides_the_verdict():
    """Priced, scored, failed, duplicate: ``nas.verdict.judge`` decides each, and pricing asks it."""
    from nas.verdict import duplicate, judge

    spec = toy_spec(constraints={"max_latency_ms": 1.0, "min_accuracy": 0.5})
    c = spec.constraints
    hw = {"latency_ms": 2.0, "params": 1, "throughput_fps": 1.0, "energy_mj": 1.0, "weight_mib": 1.0}
    over = judge(c, hw, True)
    assert over.status == "infeasible" and over.rejected == {"max_latency_ms": 1.0} and "latency" in over.failure
    ok = {**hw, "latency_ms": 0.5}
    assert judge(c, ok, True).status is None  # feasible: to be evaluated
    assert judge(c, ok, True, failure="boom").status == "failed"
    low = judge(c, {**ok, "accuracy": 0.25}, True, scored=True)
    assert low.status == "complete" and low.violations == {"min_accuracy": 1.0} and not low.rejected
    assert low.told({**ok, "accuracy": 0.25}, ("accuracy", "latency_ms"), None) == [0.25, 0.5]
    assert over.told(hw, ("accuracy", "latency_ms"), 0.1) == [0.1, 2.0]  # infeasible: the worst accuracy seen
    assert duplicate("failed", {}).told(hw, ("accuracy",), None) is None


def test_a_job_with_no_feasible_candidate_says_what_to_loosen(sqlite_url, caplog):
    store = Store(sqlite_url)
    bound = median_latency() / 50  # no network of the space is this fast
    with caplog.at_level("WARNING", logger="nas.search"):
        job = run(store, submit(store, toy_spec(budget={"trials": 12}, constraints={"max_latency_ms": bound})).id)
    assert job.status == "completed" and job.n_front == 0
    report = job.constraint_report
    rejected = store.candidates(job.id, status="infeasible")
    fastest = min(c.metrics["latency_ms"] for c in rejected if set(c.violations) == {"max_latency_ms"})
    entry = report["constraints"]["max_latency_ms"]
    assert report["feasible"] == 0 and entry["violated"] == len(rejected) == report["candidates"]
    assert entry["bound"] == bound and entry["admit_at"] == entry["best"] == fastest
    line = f"max_latency_ms: {len(rejected)} of {len(rejected)} candidates over, the best at {fastest:.4g} ms"
    assert report["advice"][0].startswith(line) and f"loosen to {fastest:.4g}" in report["advice"][0]
    assert line in caplog.text
    admitted = run(store, submit(store, toy_spec(budget={"trials": 12}, constraints={"max_latency_ms": fastest})).id)
    assert admitted.constraint_report["feasible"] >= 1  # the advice holds: that bound admits a candidate


def test_the_trial_walk_names_at_most_12_files_that_define_what_it_names():
    """docs/trial_walk.md: each step names a file and a name defined in it; at most 12 files."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    steps = re.findall(r"^\d+\. `([^`]+)` `([A-Za-z_]+)`:", (root / "docs/trial_walk.md").read_text(), re.M)
    files = [path for path, _ in steps]
    assert len(steps) >= 8 and len(set(files)) == len(files) <= 12
    for path, name in steps:
        text = (root / path).read_text()
        assert re.search(rf"^\s*(def|class) {name}\b", text, re.M), f"{path} defines no {name}"


def test_both_executors_implement_the_protocol_the_loop_calls():
    from nas.plugins import make_evaluator, resolve_space
    from nas.search import Executor
    from nas.search._executor import RayExecutor, make_executor

    spec = toy_spec()
    inline = make_executor(spec, evaluator=make_evaluator(spec), space=resolve_space(spec))
    assert isinstance(inline, Executor)
    members = [m for m in vars(Executor) if not m.startswith("_")]
    assert set(members) == {"capacity", "submit", "wait", "cancel_all", "shutdown"}
    assert all(callable(getattr(RayExecutor, m)) or isinstance(getattr(RayExecutor, m), property) for m in members)
