"""Exports of candidates: the network the job priced (its input shape, free height and width where
the network runs at any size), every format written, checked and in agreement; the card's figures
those of the exported file; untrained exports refused unless asked for; the preprocessing and class
names stated as the weights were trained with; bad requests refused with nothing left behind."""

import dataclasses
import io
import json
import subprocess
import sys
import warnings

import numpy as np
import onnxruntime
import pytest
import torch
import torch.nn.functional as F

from hwmodels import area_split_mm2, load_accelerator
from nas.data import FASHION_MNIST_CLASSES, load_dataset
from nas.export import DEFAULT_FORMATS, FORMATS, ExportError, check_request, export_candidate, parse_formats
from nas.limits import Limits
from nas.search import run, submit
from nas.spec import JobSpec, load_spec
from nas.store import Store
from search_spaces import ArchConfig, build_model
from search_spaces._arch import StageConfig

SPEC = {
    "name": "export",
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],  # priced here; the proxy (and a job's training) runs at 16 px
    "evaluator": {"proxy": "synflow", "resolution": 16, "batch": 4, "train": 0},
    "budget": {"trials": 4},
    "workers": {"count": 0},
}
HARDWARE = ("latency_ms", "throughput_fps", "energy_mj", "power_w", "params", "weight_mib", "macs", "utilisation")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('export') / 'nas.db'}")
    job = run(store, submit(store, load_spec(SPEC)).id)
    return store, store.get_job(job.id)


def _built(folder):
    """The exported network rebuilt from its arch.json and state_dict, as the README says."""
    card = json.loads((folder / "model_card.json").read_text())
    net = build_model(
        ArchConfig.from_json((folder / "arch.json").read_text()),
        num_classes=card["build"]["num_classes"],
        img_size=tuple(card["build"]["input_shape"][1:]),
    )
    net.load_state_dict(torch.load(folder / "state_dict.pt", weights_only=True))
    return card, net.eval()


def _trained_weights(arch, resolution):
    """A state_dict of ``arch`` built at ``resolution``, and the recipe a job stores with it."""
    net = build_model(arch, num_classes=10, img_size=resolution)
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    recipe = {"dataset": "fashion-mnist", "resolution": resolution, "epochs": 1, "images": 64, "batch_size": 8}
    return buffer.getvalue(), recipe


def test_the_default_export_is_the_priced_network_with_a_free_height_and_width(job, tmp_path):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the default formats are today's torch's
        out = export_candidate(record, c, tmp_path / "out", allow_untrained=True)
    assert set(out.files) == {"arch", "model_card", *DEFAULT_FORMATS} and "torchscript" not in out.files
    card, net = _built(tmp_path / "out")
    assert card["files"] == out.files and card["primary_format"] == "exported_program"
    assert card["input"]["shape"] == ["batch", 3, "height", "width"] and card["input"]["exported_at"] == [3, 64, 64]
    assert card["pricing"] == {
        "chip": "metis-like", "input_shape": [3, 64, 64], "units": "channels, height px, width px", "as_on_front": True,
    }  # fmt: skip
    # the card's figures are the exported module's: its parameters counted, its pricing the front's
    assert card["metrics"]["params"] == sum(p.numel() for p in net.parameters())
    assert {k: card["metrics"][k] for k in HARDWARE} == pytest.approx({k: c.metrics[k] for k in HARDWARE})
    assert card["accelerator"] == {
        "requested": "metis-like", "chip": "metis-like", "mapping": "metis-sdk",
        "mode": "throughput", "batch": 1, "area_mm2": area_split_mm2(load_accelerator("metis-like").chip),
    }  # fmt: skip
    assert card["accelerator"]["area_mm2"]["total"] == pytest.approx(c.metrics["area_mm2"])
    assert card["versions"]["torch"] == torch.__version__.split("+")[0]  # the running torch, local tag dropped
    assert all(d < 1e-3 for d in card["agreement_max_abs_diff"].values())
    # the program's input is the priced shape with free dimensions, and it runs at other sizes
    program = torch.export.load(str(tmp_path / "out" / "model.pt2"))
    (image,) = [n for n in program.graph.nodes if n.name in program.graph_signature.user_inputs]
    batch, channels, height, width = image.meta["val"].shape
    assert channels == 3 and all(isinstance(s, torch.SymInt) for s in (batch, height, width))  # free
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["batch", 3, "height", "width"]
    for shape in ((1, 3, 64, 64), (5, 3, 96, 80)):  # a batch and a size neither the trace nor the check used
        x = torch.randn(*shape)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(x), net(x), atol=1e-4, rtol=1e-4)
            np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], net(x).numpy(), atol=1e-4)


def test_torchscript_is_kept_while_torch_ships_it_when_asked_for(job, tmp_path):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    assert "torchscript" in parse_formats("all") and "torchscript" not in parse_formats("default")
    out = export_candidate(record, c, tmp_path / "ts", formats="torchscript,state_dict", allow_untrained=True)
    assert "kept while torch ships it" in (tmp_path / "ts" / "README.md").read_text()
    _, net = _built(tmp_path / "ts")
    with pytest.warns((FutureWarning, DeprecationWarning), match="deprecated"):  # the suite's one such call
        traced = torch.jit.load(str(tmp_path / "ts" / "model.torchscript.pt"))
    x = torch.randn(3, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), net(x), atol=1e-4, rtol=1e-4)
    assert out.card["input"]["shape"] == ["batch", 3, "height", "width"]


def test_weights_that_fix_the_input_size_are_exported_and_priced_at_it(job, tmp_path):
    """A spatial MLP trained at 32 px has other parameters than the one priced at 64 px: it is
    exported at 32 px, its card's figures are that network's, and the front's stay apart."""
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    arch = ArchConfig(stages=[StageConfig(mixer=m, depth=1, dim=16) for m in ("pooling", "spatial_mlp", "sepconv")])
    measured = dataclasses.replace(c, arch=arch.to_json(), metrics={**c.metrics, "measured_accuracy": 0.5})
    out = export_candidate(record, measured, tmp_path / "mlp", weights=_trained_weights(arch, 32))
    card, net = _built(tmp_path / "mlp")
    assert card["input"]["shape"] == ["batch", 3, 32, 32] and "trained at 32x32 px" in card["input"]["size"]
    assert card["pricing"]["input_shape"] == [3, 32, 32] and not card["pricing"]["as_on_front"]
    assert card["metrics"]["params"] == sum(p.numel() for p in net.parameters())
    priced_net = build_model(arch, num_classes=10, img_size=64)  # what the front priced: more tokens to mix
    assert card["metrics"]["params"] != sum(p.numel() for p in priced_net.parameters())
    assert card["front"] == {"input_shape": [3, 64, 64], "metrics": measured.metrics}
    program = torch.export.load(str(tmp_path / "mlp" / "model.pt2")).module()
    with pytest.raises((AssertionError, RuntimeError)):  # fixed at 32 px: a guard of the program fails
        program(torch.randn(2, 3, 64, 64))
    assert out.card["weights"].startswith("trained by the job") and out.card["preprocessing"]["resize"] == [32, 32]


def test_size_free_weights_trained_at_another_size_are_exported_at_the_priced_one(job, tmp_path):
    """Trained at 32 px, priced at 64: exported at 64 with a free size, so the training resolution
    (where the accuracy was measured) still runs."""
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    arch = ArchConfig.from_json(c.arch)
    measured = dataclasses.replace(c, metrics={**c.metrics, "measured_accuracy": 0.5})
    export_candidate(record, measured, tmp_path / "w", formats="state_dict,onnx", weights=_trained_weights(arch, 32))
    card, net = _built(tmp_path / "w")
    assert card["input"]["exported_at"] == [3, 64, 64] and card["pricing"]["as_on_front"]
    assert card["preprocessing"]["resize"] == [32, 32]  # as the weights were trained and measured
    assert card["input"]["at_training_resolution"] == {
        "input_shape": [3, 32, 32],
        "runs": {"state_dict": True, "onnx": True},
    }
    assert "At the training resolution (32x32 px" in (tmp_path / "w" / "README.md").read_text()
    session = onnxruntime.InferenceSession(str(tmp_path / "w" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"image": x.numpy()})[0], net(x).numpy(), atol=1e-4)


def test_a_network_whose_exports_fix_the_size_says_why(job, tmp_path):
    """Window attention runs at any size in PyTorch, but torch.export specialises its padding: the
    export falls back to the priced size for every format and says so."""
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    arch = ArchConfig(
        stages=[StageConfig(mixer="pooling", depth=1, dim=16), StageConfig(mixer="window_attention", depth=2,
                dim=32, head_dim=16, window_size=7)]
    )  # fmt: skip
    windowed = dataclasses.replace(c, arch=arch.to_json())
    out = export_candidate(record, windowed, tmp_path / "win", formats="exported_program", allow_untrained=True)
    assert (
        out.card["input"]["shape"] == ["batch", 3, 64, 64]
        and "exported_program cannot be written with a free" in out.card["input"]["size"]
    )
    assert out.card["input"]["checked_at"] == [[2, 3, 64, 64]]


def test_an_untrained_export_is_refused_unless_asked_for(job, tmp_path):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    with pytest.raises(ExportError) as err:
        export_candidate(record, c, tmp_path / "refused")
    assert err.value.errors[0][0] == "weights"
    assert f"nas train {record.id} --top N" in str(err.value) and "--train-steps" in str(err.value)
    assert "allow_untrained" in str(err.value) and not any(tmp_path.iterdir())  # nothing built or left
    out = export_candidate(record, c, tmp_path / "init", formats="state_dict", allow_untrained=True)
    assert out.card["accuracy"]["kind"] == "not measured" and out.card["accuracy"]["value"] is None
    assert "accuracy" not in out.card["metrics"] and out.card["front"]["metrics"]["accuracy"] == c.metrics["accuracy"]
    assert out.card["weights"].startswith("initialised") and out.card["preprocessing"] is None
    assert "Accuracy: not measured" in (tmp_path / "init" / "README.md").read_text()


def test_a_state_dict_export_s_readme_runs_as_written(job, tmp_path):
    """The README's snippet is what a user pastes: run it in the export's folder, in a fresh
    interpreter, and it loads the weights."""
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    out = export_candidate(record, c, tmp_path / "sd", formats="state_dict", allow_untrained=True)
    readme = (tmp_path / "sd" / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    snippet += "print(sum(p.numel() for p in net.parameters()))\n"
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path / "sd", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) == c.metrics["params"] == out.card["metrics"]["params"]


def test_bad_requests_are_refused_and_leave_nothing(job, tmp_path):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    with pytest.raises(ExportError, match="formats: unknown tflite"):
        parse_formats("onnx,tflite")
    assert parse_formats("onnx,state_dict") == ("state_dict", "onnx") and parse_formats("all") == FORMATS
    assert parse_formats([]) == parse_formats("default") == DEFAULT_FORMATS
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ExportError, match="not an empty folder"):
        export_candidate(record, c, tmp_path / "taken", allow_untrained=True)
    with pytest.raises(ExportError, match="train_steps"):
        export_candidate(record, c, tmp_path / "neg", train_steps=-1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # no temporary folder left


def test_training_first_records_the_held_out_accuracy_and_the_preprocessing(job, tmp_path):
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    out = export_candidate(record, c, tmp_path / "trained", formats="state_dict", train_steps=3, train_batch=8)
    training, card = out.card["training"], out.card
    assert training["steps"] == 3 and training["dataset"] == "fashion-mnist" and training["resolution"] == 64
    assert card["accuracy"] == {
        "kind": "measured", "value": training["held_out_accuracy"],
        "on": "1000 held-out fashion-mnist training images at 64x64 px, after this export's 3 steps",
    }  # fmt: skip
    assert 0.0 <= training["held_out_accuracy"] <= 1.0 and card["weights"].startswith("trained by this export")
    untrained = build_model(ArchConfig.from_json(c.arch), num_classes=10, img_size=64).state_dict()
    trained = torch.load(tmp_path / "trained" / "state_dict.pt", weights_only=True)
    assert any(not torch.equal(trained[k], untrained[k]) for k in untrained if trained[k].is_floating_point())
    # the stated preprocessing, done by hand on raw images, is what training fed the network
    pre = card["preprocessing"]
    assert pre["classes"] == list(FASHION_MNIST_CLASSES) and len(pre["classes"]) == 10 and pre["resize"] == [64, 64]
    data = load_dataset("fashion-mnist", split="test")
    raw = data.images[:4].float() / 255
    assert raw.min() >= 0.0 and raw.max() <= 1.0
    x = F.interpolate(raw, size=pre["resize"], mode="bilinear", antialias=True, align_corners=False)
    x = ((x - torch.tensor(pre["mean"]).view(1, -1, 1, 1)) / torch.tensor(pre["std"]).view(1, -1, 1, 1)).expand(
        -1, pre["channels"], -1, -1)  # fmt: skip
    torch.testing.assert_close(x, data.batch(range(4), resolution=64)[0])
    readme = (tmp_path / "trained" / "README.md").read_text()
    assert "resized to 64x64 px" in readme and "9 Ankle boot" in readme and "0 T-shirt/top" in readme


def test_what_an_export_asks_for_is_checked_before_anything_is_built(job):
    """The service's request runs these checks (cheap: no build, no import of torch) and queues
    only what passes; a training batch is bounded by its pixels, as a job's are."""
    store, record = job
    c = store.pareto(record.id, limit=1)[0]
    spec = JobSpec.model_validate(record.spec)  # 3x64x64 input, a proxy evaluator with a dataset
    limits = Limits(max_batch_pixels=8 * 64 * 64)
    assert check_request(spec, c, formats="onnx", train_steps=10, train_batch=8, limits=limits) == ("onnx",)
    assert check_request(spec, c, train_steps=0, train_batch=9, limits=limits, allow_untrained=True)  # no training
    assert check_request(spec, c, trained=True) == DEFAULT_FORMATS  # the job's weights: nothing to allow
    with pytest.raises(ExportError) as err:
        check_request(spec, c, train_steps=10, train_batch=9, limits=limits)
    assert err.value.errors[0][0] == "train_batch" and "max_batch_pixels" in str(err.value)
    with pytest.raises(ExportError, match=r"weights: candidate \d+ has no trained weights"):
        check_request(spec, c)
    with pytest.raises(ExportError, match="train_steps: the candidate has trained weights"):
        check_request(spec, c, train_steps=1, trained=True)
    with pytest.raises(ExportError, match=r"candidate: .* \(out of memory\); export a complete one"):
        check_request(spec, dataclasses.replace(c, status="failed", failure="out of memory"))
