"""Exports of dense networks: a detector and a segmenter of the space, exported with their heads.
state_dict and ExportedProgram are the network (raw head outputs, what the chip is priced for);
model.onnx adds what the host does after it (box decoding and NMS, or upsampling and argmax), runs
in onnxruntime in a Python that cannot import this project, and agrees with the PyTorch decoding
on an image; the card names the task, its metric and the host's ops that the price leaves out."""

import dataclasses
import io
import json
import subprocess
import sys
import sysconfig

import numpy as np
import pytest
import torch

import search_spaces as ss
from nas.export import ExportError, check_request, export_candidate
from nas.search import run, submit
from nas.spec import JobSpec, load_spec
from nas.store import Store
from nas.tasks import get_task
from nas.tasks.detection import decode, decode_dense
from nas.tasks.segmentation import predict

SPEC = {
    "name": "export-dense",
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],  # priced here
    "evaluator": {"proxy": "synflow", "resolution": 16, "batch": 4, "train": 0},
    "budget": {"trials": 2},
    "workers": {"count": 0},
}
K = 10  # the job's num_classes
TRAINED_AT = 32  # the resolution the stand-in "trained" weights claim
# The isolated interpreter (-I -S): no site, no PYTHONPATH, only the installed packages on its path, away
# from the repository.
ISOLATED = """
import importlib.util, json, sys
sys.path[:] = [p for p in sys.path if p] + [{purelib!r}]
assert importlib.util.find_spec("nas") is None and importlib.util.find_spec("search_spaces") is None
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
out = session.run(None, {{"image": np.load("image.npy")}})
np.savez("out.npz", **{{o.name: v for o, v in zip(session.get_outputs(), out)}})
print(json.dumps({{o.name: [str(v.dtype), list(v.shape)] for o, v in zip(session.get_outputs(), out)}}))
"""


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('dense') / 'nas.db'}")
    record = run(store, submit(store, load_spec(SPEC)).id)
    return store, store.get_job(record.id)


def _arch(task):
    return ss.sample_archs(ss.get_space("metaformer-tiny"), 1, seed=0, task=task)[0]


def _trained(arch, task):
    """Weights a job could have trained: the network's own moved by seeded noise, a detector's class
    predictors (its convolutions to K channels) made sharper so that its scores spread beyond its
    prior, and the recipe stored with them."""
    net = ss.build_model(arch, num_classes=K, img_size=64)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
        for m in net.modules():
            if task == "detection" and isinstance(m, torch.nn.Conv2d) and m.out_channels == K:
                m.weight.mul_(30)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    recipe = {"dataset": "fashion-mnist-scenes", "resolution": TRAINED_AT, "steps": 10, "batch_size": 8}
    return buffer.getvalue(), recipe


@pytest.fixture(scope="module", params=["detection", "segmentation"])
def exported(request, job, tmp_path_factory):
    task = request.param
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    arch = _arch(task)
    assert arch.task == task
    extra = get_task(task).extra[0]  # map50, pixel_accuracy
    metrics = {**c.metrics, "measured_accuracy": 0.25, "accuracy": 0.25, extra: 0.5}
    # the job's training: its last rung is its end, with the metric and what is measured beside it
    rungs = ({"steps": 10, "of": 10, "accuracy": 0.25, extra: 0.5},)
    measured = dataclasses.replace(c, arch=arch.to_json(), metrics=metrics, rungs=rungs)
    out = tmp_path_factory.mktemp(task) / "out"
    done = export_candidate(record, measured, out, weights=_trained(arch, task))
    return task, out, done


def _network(folder):
    """The exported network rebuilt from arch.json and state_dict.pt, as the README says."""
    card = json.loads((folder / "model_card.json").read_text())
    net = ss.build_model(
        ss.ArchConfig.from_json((folder / "arch.json").read_text()),
        num_classes=card["build"]["num_classes"],
        img_size=tuple(card["build"]["input_shape"][1:]),
    )
    net.load_state_dict(torch.load(folder / "state_dict.pt", weights_only=True))
    return card, net.eval()


def _isolated(folder, image):
    np.save(folder / "image.npy", image.numpy())
    script = ISOLATED.format(purelib=sysconfig.get_paths()["purelib"])
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], cwd=folder, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    with np.load(folder / "out.npz") as out:
        return json.loads(done.stdout.strip().splitlines()[-1]), dict(out)


@pytest.mark.slow
def test_each_file_loads_and_is_the_network_with_raw_head_outputs(exported):
    task, out, done = exported
    assert {"arch", "state_dict", "exported_program", "onnx", "model_card"} <= set(done.files)
    card, net = _network(out)
    program = torch.export.load(str(out / "model.pt2")).module()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ours, theirs = net(x), program(x)
    if task == "detection":
        assert isinstance(theirs, list | tuple) and len(theirs) == len(net.strides)
        for level, stride, mine in zip(theirs, net.strides, ours, strict=True):
            assert level.shape == (2, 4 + 1 + K, 64 // stride, 64 // stride)
            torch.testing.assert_close(level, mine, atol=1e-4, rtol=1e-4)
    else:
        assert theirs.shape == (2, K, 64 // net.output_stride, 64 // net.output_stride)
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
    assert card["metrics"]["params"] == sum(p.numel() for p in net.parameters())


@pytest.mark.slow
def test_the_onnx_file_runs_without_the_project_and_agrees_with_the_pytorch_decoding(exported):
    task, out, _ = exported
    _, net = _network(out)
    image = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(7))  # not the traced size
    types, got = _isolated(out, image)
    with torch.no_grad():
        raw = net(image)
    if task == "segmentation":
        assert types == {"class_map": ["int64", [2, 64, 96]]}
        logits = torch.nn.functional.interpolate(raw, size=(64, 96), mode="bilinear", align_corners=False)
        expected = predict(raw, (64, 96)).numpy()
        np.testing.assert_array_equal(expected, logits.argmax(1).numpy())  # predict: upsample, argmax
        top2 = logits.topk(2, dim=1).values
        clear = (top2[:, 0] - top2[:, 1] > 1e-4).numpy()  # where rounding cannot swap two classes
        assert clear.mean() > 0.99 and np.array_equal(got["class_map"][clear], expected[clear])
        return
    assert list(types) == ["boxes", "scores", "classes", "batch_index", "cell_boxes", "cell_scores"]
    n = types["scores"][1][0]
    assert types["boxes"] == ["float32", [n, 4]] and types["classes"] == ["int64", [n]] and n > 0
    assert types["cell_scores"] == ["float32", [2, types["cell_boxes"][1][1], K]]
    boxes, scores = decode_dense(raw, net.strides)
    np.testing.assert_allclose(got["cell_scores"], scores.numpy(), atol=1e-4)
    clipped = torch.minimum(boxes.clamp_min(0), torch.tensor([96.0, 64.0, 96.0, 64.0]))
    np.testing.assert_allclose(got["cell_boxes"], clipped.numpy(), atol=1e-3)
    expected = decode(raw, net.strides, (64, 96))
    for b, e in enumerate(expected):
        mine = got["batch_index"] == b
        assert mine.sum() == len(e["scores"]) > 0
        np.testing.assert_array_equal(got["classes"][mine], e["labels"].numpy())
        np.testing.assert_allclose(got["scores"][mine], e["scores"].numpy(), atol=1e-5)
        np.testing.assert_allclose(got["boxes"][mine], e["boxes"].numpy(), atol=1e-3)
    assert np.all(np.diff(got["batch_index"]) >= 0)


@pytest.mark.slow
def test_the_card_names_the_task_its_metric_and_what_runs_on_the_host(exported):
    task, out, done = exported
    card = done.card
    t = get_task(task)
    assert card["task"] == task and json.loads((out / "model_card.json").read_text())["task"] == task
    assert card["accuracy"]["metric"] == t.metric and card["accuracy"]["label"] == t.label
    assert card["accuracy"]["value"] == 0.25 and card["accuracy"]["beside"] == {t.extra[0]: 0.5}
    assert card["resolutions"] == {"priced": [3, 64, 64], "trained": [3, TRAINED_AT, TRAINED_AT]}
    assert card["host"]["in_price"] is False and card["onnx_without_project"]["ok"]
    assert "cannot import this project" in card["onnx_without_project"]["runs_in"]
    readme = (out / "README.md").read_text()
    assert f"Task: {task}" in readme and t.label in readme and "(channels x height x width px)" in readme
    assert f"trained and measured at 3x{TRAINED_AT}x{TRAINED_AT}" in readme
    ops = "non-maximum suppression" if task == "detection" else "argmax over the classes"
    assert any(ops in op for op in card["host"]["on_host"]) and ops in readme
    assert "in no figure of this card" in readme
    # the README's snippet is what a user pastes: it runs in the export's folder, in a fresh interpreter
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0] + "print(len(session.run(None, {'image': x})))\n"
    ran = subprocess.run([sys.executable, "-c", snippet], cwd=out, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert int(ran.stdout.split()[-1]) == len(card["output"]["onnx"]) - (task == "detection")  # less "order"
    if task == "detection":
        assert card["output"]["onnx"]["boxes"]["format"] == "x1, y1, x2, y2 in input pixels"
        assert card["output"]["exported_program"]["shape"][0] == ["batch", 5 + K, "height / 8", "width / 8"]


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_an_untrained_dense_export_says_its_metric_is_not_measured(job, tmp_path, task):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    dense = dataclasses.replace(c, arch=_arch(task).to_json())
    done = export_candidate(record, dense, tmp_path / "x", formats="onnx", allow_untrained=True)
    a = done.card["accuracy"]
    assert a["kind"] == "not measured" and a["value"] is None and a["metric"] == get_task(task).metric
    assert done.card["weights"].startswith("initialised") and done.card["onnx_without_project"]["ok"]


def test_a_dense_job_is_not_trained_or_quantized_in_the_export(job):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    spec = JobSpec.model_validate(record.spec)
    dense = spec.model_copy(update={"task": "detection"})
    with pytest.raises(ExportError, match=r"train_steps: training in the export is for classifiers"):
        check_request(dense, c, train_steps=5)
    with pytest.raises(ExportError, match=r"int8: INT8 models are measured for classifiers only"):
        check_request(dense, c, int8=True, has_int8=True, trained=True)


def test_the_checker_refuses_a_file_without_the_task_s_outputs(job, tmp_path):
    """The clean-Python check fails (and says why) on an ONNX file that is not a detector's."""
    from nas._dense_export import check_without_project

    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    export_candidate(record, c, tmp_path / "cls", formats="onnx", allow_untrained=True)
    net = ss.build_model(ss.ArchConfig.from_json(c.arch), num_classes=K, img_size=64).eval()
    net.onnx_outputs = {"class_map": {}}  # what a segmenter's file would give
    report = check_without_project(tmp_path / "cls" / "model.onnx", net, "segmentation", K, torch.zeros(1, 3, 64, 64))
    assert not report["ok"] and report["problems"] == ["outputs are ['logits'], expected ['class_map']"]
