"""The hypervolume's reference point: one rule, in nas/reference.py."""

import pytest

from nas import reference
from nas.spec import load_spec


def spec(**over):
    return load_spec({"objectives": ["accuracy", "latency_ms", "throughput_fps"], "num_classes": 10, **over})


def test_the_spec_then_the_constraints_then_the_worst_sample_and_chance_for_a_predicted_accuracy():
    s = spec(reference_point={"latency_ms": 9.0}, constraints={"max_latency_ms": 2.0, "min_fps": 100})
    assert not reference.needs_samples(s, None)
    assert reference.at_submission(s, None) == {"accuracy": 0.1, "latency_ms": 9.0, "throughput_fps": 100.0}
    bare = spec()
    assert reference.needs_samples(bare, None)
    sampled = [{"latency_ms": 1.0, "throughput_fps": 50.0}, {"latency_ms": 3.0, "throughput_fps": 20.0}]
    assert reference.at_submission(bare, None, sampled) == {"accuracy": 0.1, "latency_ms": 3.0, "throughput_fps": 20.0}
    bounded = spec(constraints={"min_accuracy": 0.6, "max_latency_ms": 2.0, "min_fps": 100})
    assert reference.at_submission(bounded, None)["accuracy"] == 0.6


def test_a_score_s_reference_waits_for_the_warmup_then_takes_the_worst_scored():
    score = spec(evaluator={"proxy": "synflow", "train": 0}, constraints={"max_latency_ms": 2.0, "min_fps": 100})
    ref = reference.at_submission(score, None)
    assert ref["accuracy"] is None
    assert reference.hypervolume_of([(-1.0, 1.0, -200.0)], ref, score.objectives) is None
    assert reference.after_warmup(ref, reference.WARMUP - 1, lambda o: -5.0) is None
    fixed = reference.after_warmup(ref, reference.WARMUP, lambda o: -5.0)
    assert fixed == {**ref, "accuracy": -5.0}
    # accuracy 1 above -5, latency 1 under 2, fps 200 over 100: a 6 x 1 x 100 box
    assert reference.hypervolume_of([(-1.0, 1.0, -200.0)], fixed, score.objectives) == pytest.approx(600.0)
