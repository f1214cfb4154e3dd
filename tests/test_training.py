"""Short training and successive halving, on real Fashion-MNIST with small models."""

import pytest
import torch
from torch import nn

from nas.data import load_dataset
from nas.proxies import Trainer, TrainRecipe, short_training, successive_halving
from nas.proxies._training import halving_schedule


def cnn(width: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10),
    )  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return load_dataset(split="test")  # 10k images: enough for a few steps, quick to load


RECIPE = TrainRecipe(steps=40, batch_size=64, resolution=16, lr=5e-3, held_out=500)


def test_short_training_learns_and_leaves_the_model_alone(data):
    model = cnn(16)
    before = [p.clone() for p in model.parameters()]
    accuracy = short_training(model, data, RECIPE)
    assert accuracy > 0.4  # ten classes: chance is 0.1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert short_training(model, data, RECIPE) == accuracy  # seeded: batches, init of the copy


def test_training_in_two_parts_is_the_same_run(data):
    # What lets successive halving continue a candidate instead of restarting it.
    one, two = Trainer(cnn(8), data, RECIPE), Trainer(cnn(8), data, RECIPE)
    one.advance(10)
    two.advance(4)
    two.advance(6)
    assert all(torch.equal(a, b) for a, b in zip(one.model.parameters(), two.model.parameters(), strict=True))


def test_successive_halving_continues_the_best_half(data):
    models = {w: cnn(w) for w in (2, 4, 8, 16)}
    results = successive_halving(models, data, budgets=(5, 15), keep=0.5, recipe=RECIPE)
    promoted = {k for k, r in results.items() if r.rung == 1}
    assert len(promoted) == 2 and all(results[k].steps == 15 for k in promoted)
    dropped = set(models) - promoted
    assert all(results[k].steps == 5 for k in dropped)
    # the promoted were the best at the first rung: replay the first rung to check
    first = {k: short_training(m, data, TrainRecipe(**{**RECIPE.__dict__, "steps": 5})) for k, m in models.items()}
    assert promoted == set(sorted(first, key=first.get, reverse=True)[:2])
    assert sorted(results, key=lambda k: results[k].sort_key)[-2:] == sorted(
        promoted, key=lambda k: results[k].accuracy
    )


def test_halving_schedule_and_bad_arguments():
    curves = {"a": {1: 0.5, 2: 0.6}, "b": {1: 0.7, 2: 0.65}, "c": {1: 0.1, 2: 0.9}}
    asked = []
    result = halving_schedule(list(curves), (1, 2), 0.5, lambda k, b: asked.append((k, b)) or curves[k][b])
    assert {k: r.rung for k, r in result.items()} == {"a": 1, "b": 1, "c": 0}  # ceil(3 / 2) = 2 survive
    assert ("c", 2) not in asked
    with pytest.raises(ValueError, match="budgets: must be increasing"):
        halving_schedule(["a"], (2, 1), 0.5, lambda k, b: 0.0)
    with pytest.raises(ValueError, match="keep: must be in"):
        halving_schedule(["a"], (1, 2), 1.0, lambda k, b: 0.0)
    with pytest.raises(ValueError, match="steps: must be >= 1"):
        TrainRecipe(steps=0)


def test_a_job_process_loads_each_split_of_its_data_once(monkeypatch):
    """What a job's process builds (the preflight evaluator, the recipe check, the in-process meter)
    reads the train and the test split once each."""
    from nas import data
    from nas.plugins import make_evaluator
    from nas.spec import load_spec
    from nas.training import AccuracyMeter, training_sets

    reads = []
    real = data._load_fashion_mnist
    monkeypatch.setattr(data, "_load_fashion_mnist", lambda split, *a: reads.append(split) or real(split, *a))
    data._load_kept.cache_clear()
    spec = load_spec({
        "space": "metaformer-tiny", "input_shape": [3, 32, 32], "workers": {"count": 0},
        "evaluator": {"proxy": "default", "resolution": 16, "batch": 16,
                      "train": {"candidates": 2, "final": 1, "recipe": {"epochs": 0.05, "images": 1000}}},
    })  # fmt: skip
    make_evaluator(spec)
    training_sets(spec)
    AccuracyMeter(spec)
    assert sorted(reads) == ["test", "train"]
