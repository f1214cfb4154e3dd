"""Detection and segmentation jobs from submission to the front: the task's networks sampled, priced
whole at the deployment shape, trained on scenes in the COCO / mask format through the real loaders,
their mAP / mIoU measured with what is measured beside it; a bad dataset is refused at submission
(422 over HTTP, naming evaluator.data), with nothing created."""

import json
import shutil

import pytest
from fastapi.testclient import TestClient

from nas.cli.format import front_table
from nas.search import run, submit
from nas.service import create_app
from nas.spec import SpecError, load_spec
from nas.store import Store, parse_bounds
from nas.tasks import get_task, task_extras
from nas.tasks.scenes import make_scenes


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    return make_scenes(tmp_path_factory.mktemp("data") / "scenes", train=100, val=16, size=64, seed=0)


def dense_spec(task: str, scenes, **overrides) -> dict:
    metric = get_task(task).metric
    return {
        "name": f"tiny-{task}",
        "task": task,
        "space": "metaformer-tiny",
        "input_shape": [3, 320, 320],
        "num_classes": 10 if task == "detection" else 11,
        "objectives": [metric, "latency_ms"],
        "evaluator": {
            "data": str(scenes),
            "resolution": 64,
            "batch": 16,
            "train": {"candidates": 2, "final": 1, "recipe": {"epochs": 0.5, "images": 100, "batch_size": 16}},
        },
        "budget": {"trials": 4},
        "workers": {"count": 0},
        **overrides,
    }


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_a_dense_job_measures_its_metric_on_the_front(tmp_path, scenes, task):
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    job = run(store, submit(store, load_spec(dense_spec(task, scenes))).id)
    info = get_task(task)
    assert job.status == "completed" and job.task == task and job.metric == info.metric
    assert job.accuracy_label == info.label and job.predictor["recipe"]["task"] == task
    candidates = store.candidates(job.id)
    assert all(c.arch.count('"task_head"') == 1 and json.loads(c.arch)["task_head"]["task"] == task
               for c in candidates)  # fmt: skip
    measured = [c for c in candidates if c.metrics["measured_accuracy"] is not None]
    assert len(measured) >= 2
    for c in measured:
        assert 0.0 <= c.metrics["measured_accuracy"] <= 1.0
        extras = task_extras(c.rungs)
        assert set(extras) == set(info.extra) and all(0.0 <= v <= 1.0 for v in extras.values())
        assert c.metrics["accuracy_int8"] is None  # INT8 is measured on classifiers only, and never made up
    by_name = store.pareto(job.id, where=parse_bounds(f"{info.metric}>=0"), sort=info.metric)
    assert [c.id for c in by_name] == [c.id for c in store.pareto(job.id, sort="accuracy")]  # its metric by its name
    table = front_table([c.row() for c in store.pareto(job.id)], job.accuracy_kind, job.task)
    assert info.label in table.splitlines()[0] and "INT8" not in table


def test_a_bad_dataset_is_refused_at_submission_naming_the_field(tmp_path, scenes):
    broken = shutil.copytree(scenes, tmp_path / "broken")
    coco_file = broken / "train" / "annotations.json"
    coco = json.loads(coco_file.read_text())
    coco["annotations"][3]["category_id"] = 99
    coco_file.write_text(json.dumps(coco))
    store = Store(f"sqlite:///{tmp_path / 'nas.db'}")
    with pytest.raises(SpecError) as err:
        submit(store, load_spec(dense_spec("detection", broken)))
    assert err.value.errors[0][0] == "evaluator.data" and "annotations[3].category_id" in str(err.value)
    assert store.list_jobs() == []

    swapped = shutil.copytree(scenes, tmp_path / "swapped")  # val lists its categories in another order
    val_file = swapped / "val" / "annotations.json"
    val = json.loads(val_file.read_text())
    val["categories"] = val["categories"][::-1]
    val_file.write_text(json.dumps(val))
    with pytest.raises(SpecError, match="the val split's classes"):
        submit(store, load_spec(dense_spec("detection", swapped)))
    with pytest.raises(SpecError, match=r"num_classes: .* has 10 classes"):
        submit(store, load_spec(dense_spec("detection", scenes, num_classes=12)))
    assert store.list_jobs() == []

    app = create_app(store, run_jobs=False, data_dir=tmp_path / "service", data_roots=(tmp_path,))
    with TestClient(app) as client:
        bad = client.post("/jobs", json=dense_spec("detection", broken))
        assert bad.status_code == 422, bad.text
        detail = bad.json()["detail"][0]
        assert detail["loc"] == ["body", "evaluator", "data"] and "category_id" in detail["msg"]
        assert client.get("/jobs").json()["items"] == []
        good = client.post("/jobs", json=dense_spec("segmentation", shutil.copytree(scenes, tmp_path / "good")))
        assert good.status_code == 201, good.text
        job = client.get(f"/jobs/{good.json()['id']}").json()
        assert job["task"] == "segmentation" and job["metric"] == "miou" and job["accuracy_label"] == "mIoU"
