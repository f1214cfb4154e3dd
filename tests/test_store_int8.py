"""The store's INT8 figures: measured and predicted INT8 accuracy and drop, derived by one rule
(``nas.objectives.int8_fields``), the rungs of trainings, the INT8 model kept with the weights, and
fronts ranked or bounded by INT8 (on SQLite and PostgreSQL, as tests/test_store.py)."""

import dataclasses
import math
import random

import pytest
from test_store import candidate, fill, new_job

from nas.store import Store, parse_bounds


def test_int8_fields_follow_measurements_and_predictions_and_rungs_are_kept(db_url):
    from nas.store._records import Measured

    store = Store(db_url)
    job = new_job(store, {"accuracy": 0.0, "latency_ms": 5.0, "energy_mj": 5.0})
    fill(store, job.id, 6, seed=5)
    a, b, c = store.candidates(job.id)[:3]
    predictions = {
        a.id: {"predicted_accuracy": 0.80, "predicted_std": 0.03, "predicted_int8_drop": 0.01,
               "predicted_int8_drop_std": 0.004},
        b.id: {"predicted_accuracy": 0.70, "predicted_std": 0.02},
    }  # fmt: skip
    ladder = [{"steps": 59, "of": 235, "accuracy": 0.61}, {"steps": 118, "of": 235, "accuracy": 0.74}]
    int8 = {"scope": "all", "calibration_images": 256}
    measured = Measured(c.id, 0.85, b"w", {}, accuracy_int8=0.846, int8_onnx=b"onnx", int8=int8)
    store.update_accuracy(job.id, predictions, {}, measured, rungs={b.id: ladder})

    got = {x.id: x for x in store.candidates(job.id)}
    pa, pb, pc = got[a.id].metrics, got[b.id].metrics, got[c.id].metrics
    assert pa["accuracy_int8"] == pytest.approx(0.79) and pa["int8_drop"] == pytest.approx(0.01)
    assert pa["accuracy_int8_std"] == pytest.approx(math.hypot(0.03, 0.004))
    assert pb["accuracy_int8"] is None and pb["int8_drop"] is None  # no drop predicted: no INT8 figure
    assert pc["accuracy_int8"] == 0.846 and pc["int8_drop"] == pytest.approx(0.004) and pc["accuracy_int8_std"] is None
    assert got[b.id].rungs == tuple(ladder) and got[a.id].rungs == ()
    assert store.int8_model(job.id, c.id) == (b"onnx", int8)
    assert store.int8_model(job.id, a.id) is None
    # the INT8 fields filter like any metric: only c's drop is known and below the bound
    assert [r.id for r in store.pareto(job.id, where=parse_bounds("int8_drop<0.005"))] == [c.id]
    with pytest.raises(ValueError, match="predicted_bogus"):
        store.update_accuracy(job.id, {a.id: {"predicted_bogus": 1.0}}, {})


def test_a_front_ranked_or_bounded_by_int8_holds_only_candidates_whose_int8_figure_is_known(db_url):
    store = Store(db_url)
    objectives = ["accuracy_int8", "latency_ms"]
    job = store.create_job(
        name="int8", tags=[], accelerator={"chip": {}}, reference_point={},
        spec={"objectives": objectives, "budget": {"trials": 10}, "constraints": {"max_int8_drop": 0.02}},
    )  # fmt: skip
    rng = random.Random(9)
    int8 = [
        {"measured_accuracy": 0.80, "measured_accuracy_int8": 0.79},  # drop 0.01: within the bound
        {"measured_accuracy": 0.90, "measured_accuracy_int8": 0.85},  # drop 0.05: over it
        {"predicted_accuracy": 0.95, "predicted_std": 0.01},  # no drop known yet: no INT8 figure
        {
            "predicted_accuracy": 0.88,
            "predicted_std": 0.01,
            "predicted_int8_drop": 0.0,
            "predicted_int8_drop_std": 0.01,
        },
    ]
    for i, fields in enumerate(int8):
        c = candidate(i, rng, latency_ms=1.0 + i)
        metrics = {k: v for k, v in c.metrics.items() if k != "accuracy"} | fields
        store.record(job.id, i, candidate=dataclasses.replace(c, metrics=metrics), values=[0, 0], constraints={})
    ids = [c.id for c in store.candidates(job.id)]
    assert {c.id for c in store.pareto(job.id)} == {ids[0], ids[3]}
    # a refit that predicts the third's drop brings it in, under the same rule
    store.update_accuracy(job.id, {ids[2]: {"predicted_int8_drop": 0.01, "predicted_int8_drop_std": 0.005}}, {})
    assert {c.id for c in store.pareto(job.id)} == {ids[0], ids[2]}  # 0.94 at 3 ms dominates 0.88 at 4 ms
