"""Exports of candidates: every format written, checked and in agreement; bad requests refused with
nothing left behind; the optional training records a measured accuracy."""

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from hwmodels import area_split_mm2, load_accelerator
from nas.export import ExportError, check_request, export_candidate, parse_formats
from nas.limits import Limits
from nas.search import run, submit
from nas.spec import JobSpec, load_spec
from nas.store import Store
from search_spaces import ArchConfig, build_model

SPEC = {
    "name": "export",
    "space": "metaformer-tiny",
    "input_shape": [3, 32, 32],
    "evaluator": {"proxy": "synflow", "resolution": 16, "batch": 4, "train": 0},
    "budget": {"trials": 4},
    "workers": {"count": 0},
}


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('export') / 'nas.db'}")
    job = run(store, submit(store, load_spec(SPEC)).id)
    return store, store.get_job(job.id)


def test_all_formats_agree_and_the_state_dict_loads_in_our_builder(job, tmp_path):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    out = export_candidate(record, c, tmp_path / "out")
    assert set(out.files) == {"arch", "state_dict", "torchscript", "onnx", "exported_program", "model_card"}
    card = json.loads((tmp_path / "out" / "model_card.json").read_text())
    assert card["candidate"]["id"] == c.id and card["metrics"] == c.metrics and card["training"] is None
    assert card["files"] == out.files  # the card on disk lists every file, itself included
    assert set(card["agreement_max_abs_diff"]) == {"state_dict", "torchscript", "onnx", "exported_program"}
    assert all(d < 1e-3 for d in card["agreement_max_abs_diff"].values())
    assert card["versions"]["torch"] == torch.__version__.split("+")[0]  # the running torch, local tag dropped
    # the chip the figures are for, from the config the job stored (the spec named it)
    assert card["accelerator"] == {
        "requested": "metis-like", "chip": "metis-like", "mapping": "metis-sdk",
        "mode": "throughput", "batch": 1, "area_mm2": area_split_mm2(load_accelerator("metis-like").chip),
    }  # fmt: skip
    assert card["accelerator"]["area_mm2"]["total"] == pytest.approx(c.metrics["area_mm2"])
    net = build_model(ArchConfig.from_json((tmp_path / "out" / "arch.json").read_text()), num_classes=10, img_size=32)
    net.load_state_dict(torch.load(tmp_path / "out" / "state_dict.pt", weights_only=True))
    traced = torch.jit.load(str(tmp_path / "out" / "model.torchscript.pt"))
    program = torch.export.load(str(tmp_path / "out" / "model.pt2")).module()
    x = torch.randn(5, 3, 32, 32)  # a batch size neither the trace nor the check used
    with torch.no_grad():
        torch.testing.assert_close(traced(x), net.eval()(x), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(program(x), net(x), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(program(x[:1]), net(x[:1]), atol=1e-4, rtol=1e-4)  # a batch of one too


def test_a_state_dict_export_s_readme_runs_as_written(job, tmp_path):
    """The README's snippet is what a user pastes: run it in the export's folder, in a fresh
    interpreter, and it loads the weights."""
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    export_candidate(record, c, tmp_path / "sd", formats="state_dict")
    readme = (tmp_path / "sd" / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    snippet += "print(sum(p.numel() for p in net.parameters()))\n"
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path / "sd", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == c.metrics["params"]


def test_bad_requests_are_refused_and_leave_nothing(job, tmp_path):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    with pytest.raises(ExportError, match="formats: unknown tflite"):
        parse_formats("onnx,tflite")
    assert parse_formats("onnx,state_dict") == ("state_dict", "onnx") and parse_formats("all") == parse_formats([])
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ExportError, match="not an empty folder"):
        export_candidate(record, c, tmp_path / "taken")
    with pytest.raises(ExportError, match="train_steps"):
        export_candidate(record, c, tmp_path / "neg", train_steps=-1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no temporary folder left


def test_training_first_records_the_held_out_accuracy(job, tmp_path):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    out = export_candidate(record, c, tmp_path / "trained", formats="state_dict", train_steps=3, train_batch=8)
    training = out.card["training"]
    assert training["steps"] == 3 and training["dataset"] == "fashion-mnist" and training["resolution"] == 32
    assert 0.0 <= training["held_out_accuracy"] <= 1.0 and out.card["weights"] == "trained"
    untrained = build_model(ArchConfig.from_json(c.arch), num_classes=10, img_size=32).state_dict()
    trained = torch.load(tmp_path / "trained" / "state_dict.pt", weights_only=True)
    assert any(not torch.equal(trained[k], untrained[k]) for k in untrained if trained[k].is_floating_point())


def test_what_an_export_asks_for_is_checked_before_anything_is_built(job):
    """The service's request runs these checks (cheap: no build, no import of torch) and queues
    only what passes; a training batch is bounded by its pixels, as a job's are."""
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    spec = JobSpec.model_validate(record.spec)  # 3x32x32 input, a proxy evaluator with a dataset
    limits = Limits(max_batch_pixels=8 * 32 * 32)
    assert check_request(spec, c, formats="onnx", train_steps=10, train_batch=8, limits=limits) == ("onnx",)
    assert check_request(spec, c, train_steps=0, train_batch=9, limits=limits)  # no training: no batch
    with pytest.raises(ExportError) as err:
        check_request(spec, c, train_steps=10, train_batch=9, limits=limits)
    assert err.value.errors[0][0] == "train_batch" and "max_batch_pixels" in str(err.value)
    with pytest.raises(ExportError, match="train_steps: the candidate has trained weights"):
        check_request(spec, c, train_steps=1, trained=True)
    with pytest.raises(ExportError, match=r"candidate: .* \(out of memory\); export a complete one"):
        check_request(spec, dataclasses.replace(c, status="failed", failure="out of memory"))
