"""Accuracy in units, end to end in one process: a job trains a share of its candidates with its
recipe, predicts the rest with their spread, measures the front's best, keeps their weights, and
resumes or measures more on demand. Real Fashion-MNIST, real training (a tiny recipe)."""

import io

import pytest
import torch

from nas.export import export_candidate
from nas.proxies._training import evaluate
from nas.search import run, submit
from nas.spec import SpecError, load_spec
from nas.store import Store
from nas.training import measurement_sets
from search_spaces import ArchConfig, build_model

RECIPE = {"epochs": 1, "images": 384, "batch_size": 64, "test_images": 300, "warmup_steps": 2}
SPEC = {
    "name": "calibrated",
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],
    "evaluator": {"proxy": "default", "resolution": 16, "batch": 16,
                  "train": {"candidates": 3, "final": 1, "recipe": RECIPE}},
    "budget": {"trials": 12},
    "workers": {"count": 0},
}  # fmt: skip


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('calibration') / 'nas.db'}")
    done = run(store, submit(store, load_spec(SPEC)).id)
    return store, done


def test_accuracies_are_predicted_with_their_spread_or_measured(job):
    store, done = job
    assert done.status == "completed" and done.accuracy_kind == "predicted"
    scored = store.candidates(done.id, status="complete")
    measured = [c for c in scored if c.metrics["measured_accuracy"] is not None]
    predicted = [c for c in scored if c.metrics["measured_accuracy"] is None]
    assert 3 <= len(measured) <= 3 + 3  # the predictor's 3, then up to 3 rounds of the front's best
    for c in measured:
        assert c.metrics["accuracy"] == c.metrics["measured_accuracy"] and c.metrics["accuracy_std"] is None
        assert 0.0 <= c.metrics["accuracy"] <= 1.0
        assert store.weights(done.id, c.id) is not None
    for c in predicted:
        assert 0.0 <= c.metrics["accuracy"] <= 1.0 and c.metrics["accuracy_std"] > 0
        assert store.weights(done.id, c.id) is None
    # the raw proxy scores stay beside the accuracy
    assert all({"default", "jacob_cov"} <= set(c.scores) for c in scored)
    # three fields, never one rewritten: the proxy's score, the prediction (kept once measured), the measurement
    for c in scored:
        assert c.metrics["proxy_score"] == c.scores["default"]
        assert 0.0 <= c.metrics["predicted_accuracy"] <= 1.0 and c.metrics["predicted_std"] > 0
    for c in predicted:
        assert (c.metrics["accuracy"], c.metrics["accuracy_std"]) == (
            c.metrics["predicted_accuracy"], c.metrics["predicted_std"])  # fmt: skip
    assert done.n_trained == len(measured) and done.train_final == 1


def test_the_fronts_best_are_measured_and_the_front_is_consistent(job):
    store, done = job
    best = store.pareto(done.id, sort="accuracy", descending=True, limit=1)
    assert best and all(c.metrics["measured_accuracy"] is not None for c in best)
    front = {c.id for c in store.pareto(done.id)}
    scored = store.candidates(done.id, status="complete")
    objectives = done.spec["objectives"]
    from nas.objectives import loss_vector
    from nas.pareto import dominates

    loss = {c.id: loss_vector(c.metrics, objectives) for c in scored}
    assert front == {i for i in loss if not any(dominates(loss[j], loss[i]) for j in loss)}
    assert done.reference_point["accuracy"] == pytest.approx(0.1)  # chance, for 10 classes


def test_the_calibration_is_reported_on_measurements_made_after_each_prediction(job):
    store, done = job
    cal = store.get_job(done.id).predictor
    measured = [c for c in store.candidates(done.id, status="complete") if c.metrics["measured_accuracy"] is not None]
    assert cal["measured"] == len(measured) and cal["recipe"]["images"] == 384 and cal["recipe"]["epochs"] == 1
    pairs = [p for p in cal["prospective"] if "measured" in p]
    assert len(pairs) == len(measured)
    by_id = {c.id: c.metrics["measured_accuracy"] for c in measured}
    assert all(by_id[p["candidate"]] == pytest.approx(p["measured"], abs=1e-5) for p in pairs)
    assert cal["leave_one_out"]["n"] == len(measured) and cal["prospective_errors"]["n"] == len(pairs)


def test_an_export_of_a_measured_candidate_ships_the_weights_that_measured_it(job, tmp_path):
    store, done = job
    best = store.pareto(done.id, sort="accuracy", descending=True, limit=1)[0]
    exported = export_candidate(
        done, best, tmp_path / "best", formats="state_dict", weights=store.weights(done.id, best.id)
    )
    card = exported.card
    assert card["accuracy"]["kind"] == "measured"
    # at the priced shape, or (weights whose shapes depend on the input size) at the resolution they were trained at
    priced, trained = list(done.spec["input_shape"]), [done.spec["input_shape"][0], 16, 16]
    assert card["input"]["exported_at"] in (priced, trained)
    assert card["pricing"]["as_on_front"] == (card["input"]["exported_at"] == priced)
    net = build_model(ArchConfig.from_json(best.arch), num_classes=10, img_size=tuple(card["input"]["exported_at"][1:]))
    net.load_state_dict(torch.load(tmp_path / "best" / "state_dict.pt", weights_only=True))
    _, test = measurement_sets(load_spec(SPEC))
    assert evaluate(net, test, resolution=16) == pytest.approx(best.metrics["measured_accuracy"], abs=1e-9)
    state, recipe = store.weights(done.id, best.id)
    assert torch.load(io.BytesIO(state), weights_only=True).keys() == net.state_dict().keys()
    assert recipe["resolution"] == 16


def test_measuring_more_on_demand_continues_the_job(job):
    store, done = job
    before = {c.id for c in store.candidates(done.id, status="complete") if c.metrics["measured_accuracy"] is not None}
    missing = [c.id for c in store.pareto(done.id, sort="accuracy", descending=True, limit=5) if c.id not in before]
    assert missing  # the job measured its best 1: more of the front is only predicted
    store.request_training(done.id, 5)
    assert store.get_job(done.id).status == "queued"
    again = run(store, done.id, resume=True)
    assert again.status == "completed" and again.n_trials == done.n_trials  # no new trials, only training
    top = store.pareto(done.id, sort="accuracy", descending=True, limit=5)
    after = {c.id for c in store.candidates(done.id, status="complete") if c.metrics["measured_accuracy"] is not None}
    assert before < after and all(c.id in after for c in top) and set(missing) <= after
    with pytest.raises(ValueError, match="top: measure between 1 and 100"):
        store.request_training(done.id, 0)


def test_a_job_that_trains_nothing_has_a_score_and_cannot_bound_it():
    spec = load_spec({**SPEC, "evaluator": {"proxy": "default", "train": 0}})
    assert spec.accuracy_kind() == "score"
    with pytest.raises(SpecError, match=r"constraints.min_accuracy: this job's accuracy is a proxy score"):
        load_spec({**SPEC, "evaluator": {"proxy": "default", "train": 0}, "constraints": {"min_accuracy": 0.8}})
    with pytest.raises(SpecError, match=r"evaluator\.train\.recipe\.epochs"):
        load_spec({**SPEC, "evaluator": {"proxy": "default", "train": {"recipe": {"epochs": 0}}}})


def test_a_recipe_the_data_cannot_serve_fails_the_job_at_once(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    job = submit(store, load_spec({**SPEC, "num_classes": 5}))
    with pytest.raises(SpecError, match="num_classes: fashion-mnist has 10 classes, the job's networks 5"):
        run(store, job.id)
    failed = store.get_job(job.id)
    assert failed.status == "failed" and failed.n_trials == 0 and "num_classes" in failed.error


def test_min_accuracy_bounds_the_front(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    spec = load_spec({**SPEC, "budget": {"trials": 6}, "constraints": {"min_accuracy": 0.3}})
    done = run(store, submit(store, spec).id)
    scored = store.candidates(done.id, status="complete")
    front = store.pareto(done.id)
    assert all(c.metrics["accuracy"] >= 0.3 for c in front)
    assert {c.id for c in front} <= {c.id for c in scored if c.metrics["accuracy"] >= 0.3}
