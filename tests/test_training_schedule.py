"""Successive halving of a job's trainings and measuring what decides its front (issue 22, items 6
and 7; docs/training_schedule.md): real jobs on SQLite in one process, real Fashion-MNIST, a tiny
recipe."""

import itertools

import pytest

from nas.search import _predictor, run, submit
from nas.spec import SpecError, load_spec
from nas.store import Store
from nas.training import AccuracyMeter, rung_steps
from search_spaces import ArchConfig

RECIPE = {"epochs": 1, "images": 384, "batch_size": 32, "test_images": 300, "warmup_steps": 2}
SPEC = {
    "name": "halving",
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],
    "evaluator": {"proxy": "default", "resolution": 16, "batch": 16,
                  "train": {"candidates": 5, "final": 1, "recipe": RECIPE, "rungs": [0.25, 0.5, 1]}},
    "budget": {"trials": 12, "wall_time_s": 900},
    "workers": {"count": 0},
}  # fmt: skip


def _job(tmp_path, spec):
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    return store, run(store, submit(store, load_spec(spec)).id)


@pytest.fixture(scope="module")
def meter():
    return AccuracyMeter(load_spec(SPEC))


@pytest.fixture(scope="module")
def arch():
    return ArchConfig.from_json(_a_network())


def _a_network() -> str:
    import optuna

    from nas.plugins import resolve_space

    space = resolve_space(load_spec(SPEC))
    return space.sample(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()).to_json()


def test_rungs_are_one_run_and_a_hopeless_training_stops_at_its_first_rung(meter, arch):
    total = meter.recipe.steps
    assert meter.steps == rung_steps(total, (0.25, 0.5, 1)) and meter.steps[-1] == total
    rungs, weights = meter.through_rungs(arch)  # no bars: through every rung to the end
    assert [r["steps"] for r in rungs] == meter.steps and {r["of"] for r in rungs} == {total}
    assert weights is not None
    accuracy, _ = meter(arch)  # the full training without rungs scores the same network the same
    assert rungs[-1]["accuracy"] == accuracy
    assert all(0 < a["seconds"] <= b["seconds"] for a, b in itertools.pairwise(rungs))
    stopped, none = meter.through_rungs(arch, [rungs[0]["accuracy"] + 0.01, None])
    assert _accuracies(stopped) == _accuracies(rungs[:1]) and none is None  # below its bar: stops, keeps nothing
    passed, kept = meter.through_rungs(arch, [rungs[0]["accuracy"] - 0.01, rungs[1]["accuracy"] + 0.01])
    assert _accuracies(passed) == _accuracies(rungs[:2]) and kept is None


def _accuracies(rungs):
    return [(r["steps"], r["of"], r["accuracy"]) for r in rungs]


def test_rungs_must_increase_to_the_whole_recipe():
    for bad in ([0.5, 0.25, 1], [0.5], [0, 1], [0.5, 1.5]):
        with pytest.raises(SpecError, match="rungs"):
            load_spec({**SPEC, "evaluator": {**SPEC["evaluator"], "train": {"rungs": bad}}})
    assert load_spec({**SPEC, "evaluator": {"proxy": "default"}}).evaluator.train.rungs == (1.0,)


def test_the_baseline_trains_every_candidate_fully(tmp_path):
    train = {**SPEC["evaluator"]["train"], "candidates": 3, "rungs": [1]}
    spec = {**SPEC, "evaluator": {**SPEC["evaluator"], "train": train}, "budget": {"trials": 8, "wall_time_s": 900}}
    store, done = _job(tmp_path, spec)
    trained = [c for c in store.candidates(done.id, status="complete") if c.rungs]
    assert len(trained) >= 3
    for c in trained:
        (only,) = c.rungs
        assert only["steps"] == only["of"] and only["accuracy"] == c.metrics["measured_accuracy"]
        assert store.weights(done.id, c.id) is not None


@pytest.fixture(scope="module")
def halving(tmp_path_factory):
    # no allowance for what training on could gain: every candidate the front dominates at a rung stops
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_predictor, "PRIOR_GAIN", 0.0)
        patch.setattr(_predictor, "LADDERS_TO_LEARN", 10**6)
        patch.setattr(_predictor, "OPTIMISM", -10.0)  # nor any for what the prediction says
        return _job(tmp_path_factory.mktemp("halving"), SPEC)


def test_every_rung_is_stored_and_dominated_candidates_stop_early(halving):
    store, done = halving
    assert done.status == "completed"
    trained = [c for c in store.candidates(done.id, status="complete") if c.rungs]
    stopped = [c for c in trained if c.rungs[-1]["steps"] < c.rungs[-1]["of"]]
    full = [c for c in trained if c.rungs[-1]["steps"] == c.rungs[-1]["of"]]
    assert stopped and full
    steps = rung_steps(load_spec(SPEC).evaluator.train.recipe.steps, (0.25, 0.5, 1))
    for c in full:
        assert [r["steps"] for r in c.rungs] == steps
        assert c.rungs[-1]["accuracy"] == c.metrics["measured_accuracy"]
        assert store.weights(done.id, c.id) is not None
    for c in stopped:  # stays predicted, conditioned on its rung; no weights
        assert c.metrics["measured_accuracy"] is None and c.metrics["accuracy_std"] > 0
        assert store.weights(done.id, c.id) is None
    assert store.get_job(done.id).predictor["stopped_early"] == len(stopped)


def test_the_fronts_top_is_measured_and_cheap_fronts_wholly(halving):
    store, done = halving
    front = store.pareto(done.id, sort="accuracy", descending=True)
    assert front[0].metrics["measured_accuracy"] is not None
    # trainings of a second or two against a 900 s wall: every member was trained (measured, or stopped early)
    assert all(c.rungs for c in front), [(c.id, c.metrics["accuracy"]) for c in front if not c.rungs]
