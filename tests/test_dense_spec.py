"""A job spec names its task; a dense task's metric goes by its own name (map, miou) and is stored
as the job's accuracy, its evaluator defaults to the generated scenes, and what the task cannot do
yet is refused with the field and the fix."""

import pytest

from nas.objectives import accuracy_label
from nas.reference import bounds
from nas.spec import JobSpec, SpecError, load_spec
from nas.tasks import TASKS, get_task, task_extras
from search_spaces import sample_archs


def test_a_spec_without_a_task_is_the_classification_job_it_always_was():
    spec = load_spec({})
    assert spec.task == "classification" and spec.evaluator.data == "fashion-mnist"
    assert spec.evaluator.resolution == 32 and spec.objectives[0] == "accuracy"


@pytest.mark.parametrize(("task", "metric"), [("detection", "map"), ("segmentation", "miou")])
def test_a_dense_job_names_its_metric_and_gets_its_own_evaluator_defaults(task, metric):
    spec = load_spec({"task": task, "objectives": [metric, "latency_ms"], "constraints": {f"min_{metric}": 0.2}})
    assert spec.objectives == ("accuracy", "latency_ms") and spec.constraints.min_accuracy == 0.2
    assert spec.evaluator.data == "fashion-mnist-scenes" and spec.evaluator.resolution == 128
    assert JobSpec.model_validate_json(spec.to_json()) == spec  # what the store keeps loads back the same
    assert spec.num_classes == (10 if task == "detection" else 11)  # the scenes' classes, background too
    short = load_spec({"task": task, "evaluator": {"train": 5}, "reference_point": {metric: 0.01}})
    assert short.evaluator.train.candidates == 5 and short.evaluator.train.recipe.images == 2000
    assert short.reference_point == {"accuracy": 0.01}
    # a user's own choices win over the dense defaults
    own = load_spec({"task": task, "evaluator": {"data": "/data/coco-mini", "resolution": 96}})
    assert own.evaluator.data == "/data/coco-mini" and own.evaluator.resolution == 96


@pytest.mark.parametrize(
    ("data", "field", "fix"),
    [
        ({"objectives": ["map"]}, "objectives", "set task: detection"),
        ({"task": "segmentation", "objectives": ["map"]}, "objectives", "metric miou"),
        ({"task": "detection", "constraints": {"min_miou": 0.3}}, "constraints.min_miou", "min_map"),
        ({"task": "detection", "constraints": {"min_map": 0.3, "min_accuracy": 0.2}}, "constraints", "give one"),
        ({"task": "detection", "evaluator": {"data": "fashion-mnist"}}, "evaluator.data", "fashion-mnist-scenes"),
        ({"task": "detection", "objectives": ["map", "accuracy_int8"]}, "objectives", "drop accuracy_int8"),
        ({"task": "segmentation", "constraints": {"max_int8_drop": 0.01}}, "constraints.max_int8_drop", "drop"),
        ({"task": "detection", "space": {"plugin": "pkg.mod:Space"}}, "space", "MetaFormer space"),
        ({"task": "tracking"}, "task", "classification"),
        ({"task": "segmentation", "num_classes": 10}, "num_classes", "set num_classes: 11"),
        ({"evaluator": {"data": "fashion-mnist-scenes"}}, "evaluator.data", "set task: detection"),
    ],
)
def test_what_a_dense_job_cannot_do_names_the_field_and_the_fix(data, field, fix):
    with pytest.raises(SpecError) as err:
        load_spec(data)
    assert f"{field}: " in str(err.value) and fix in str(err.value)


def test_chance_is_the_reference_floor_of_each_task():
    trains = {"evaluator": {"train": {"candidates": 4}}}
    assert bounds(load_spec(trains | {"num_classes": 10}), None)["accuracy"] == pytest.approx(0.1)
    assert bounds(load_spec(trains | {"task": "detection"}), None)["accuracy"] == 0.0
    assert bounds(load_spec(trains | {"task": "segmentation", "num_classes": 11}), None)["accuracy"] == 0.0


def test_labels_say_which_metric_a_job_holds():
    assert accuracy_label("predicted") == "accuracy"  # classification's output stays as it was
    assert accuracy_label("predicted", "detection") == "mAP@[.5:.95]"
    assert accuracy_label("score", "segmentation") == "proxy score"
    assert {t.metric for t in TASKS.values()} == {"accuracy", "map", "miou"}
    with pytest.raises(ValueError, match="known: classification"):
        get_task("pose")


def test_a_trained_candidates_extras_are_its_last_rung_at_the_end():
    done = [
        {"steps": 50, "of": 100, "accuracy": 0.1, "map50": 0.2},
        {"steps": 100, "of": 100, "accuracy": 0.3, "map50": 0.5, "seconds": 9.0},
    ]
    assert task_extras(done) == {"map50": 0.5}
    assert task_extras(done[:1]) == {}  # stopped at a rung: nothing measured at the end
    assert task_extras([]) == {}


def test_queries_name_a_dense_jobs_metric_by_its_own_name_and_no_other_tasks():
    from nas.store import parse_bounds
    from nas.tasks import own_metric

    assert [(b.metric, b.op, b.value) for b in parse_bounds("map>=0.3,latency_ms<2")] == [
        ("map", ">=", 0.3),
        ("latency_ms", "<", 2.0),
    ]  # the store resolves it against the job's task
    assert own_metric("map", "detection", "where") == "accuracy" == own_metric("miou", "segmentation", "sort")
    assert own_metric("latency_ms", "detection", "sort") == "latency_ms"
    with pytest.raises(ValueError, match="sort: miou is the metric of segmentation jobs; this detection job's is map"):
        own_metric("miou", "detection", "sort")
    with pytest.raises(ValueError, match="where: map is the metric of detection"):
        own_metric("map", "classification", "where")


def test_a_dense_jobs_objectives_and_bounds_are_shown_by_its_metric_name():
    from nas.tasks import spec_name

    assert [spec_name(o, "detection") for o in ("accuracy", "latency_ms")] == ["map", "latency_ms"]
    assert spec_name("min_accuracy", "segmentation") == "min_miou"
    assert spec_name("accuracy", "classification") == "accuracy"


@pytest.mark.parametrize(("name", "task"), [("edge-detector", "detection"), ("edge-segmenter", "segmentation")])
def test_the_dense_example_jobs_load_and_their_space_draws_their_task(name, task):
    from pathlib import Path

    from nas.plugins import resolve_space

    spec = load_spec(Path(__file__).resolve().parents[1] / "docs" / "examples" / f"{name}.yaml")
    assert spec.task == task and spec.objectives[0] == "accuracy" and spec.input_shape == (3, 640, 640)
    space = resolve_space(spec)
    assert space.task == task
    assert {a.task for a in sample_archs(space.space, 5, seed=0, task=task)} == {task}
