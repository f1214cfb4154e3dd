"""INT8 end to end: a job that trains measures each trained candidate in INT8 as well (its INT8
accuracy, drop and model stored beside the FP32 ones), the front shows both, and `nas export --int8`
ships the very model the INT8 accuracy was measured on, which runs in onnxruntime from a Python
that cannot import this project, at the stored accuracy."""

import json
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from nas.cli import main as cli
from nas.search import run, submit
from nas.spec import load_spec
from nas.store import Store
from nas.training import measurement_sets

SPEC = {
    "name": "int8",
    "space": "metaformer-tiny",
    "input_shape": [3, 64, 64],
    "evaluator": {
        "proxy": "synflow", "resolution": 16, "batch": 8,
        "train": {"candidates": 1, "final": 1, "recipe": {"epochs": 1, "images": 600, "batch_size": 32,
                                                           "test_images": 500}},
    },
    "budget": {"trials": 4},
    "workers": {"count": 0},
}  # fmt: skip
# The isolated interpreter: no site (so no editable install of this project), only the venv's
# installed packages on its path, started away from the repository.
ISOLATED = """
import importlib.util, sys
sys.path[:] = [p for p in sys.path if p] + [{purelib!r}]
assert importlib.util.find_spec("nas") is None and importlib.util.find_spec("search_spaces") is None
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession("model.int8.onnx", providers=["CPUExecutionProvider"])
x, y = np.load("inputs.npy"), np.load("labels.npy")
logits = np.concatenate([session.run(None, {{"image": x[i:i + 100]}})[0] for i in range(0, len(x), 100)])
print((logits.argmax(1) == y).mean())
"""


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('int8') / 'nas.db'}"
    store = Store(url)
    spec = load_spec(SPEC)
    job = run(store, submit(store, spec).id)
    trained = [c for c in store.candidates(job.id) if c.metrics["measured_accuracy"] is not None]
    return url, store, store.get_job(job.id), spec, trained


def test_every_trained_candidate_is_measured_in_int8_beside_fp32(measured):
    _, store, job, _, trained = measured
    assert trained, "the job trained nothing"
    for c in trained:
        m = c.metrics
        assert 0.0 <= m["measured_accuracy_int8"] <= 1.0
        assert m["accuracy_int8"] == m["measured_accuracy_int8"]
        assert m["int8_drop"] == pytest.approx(m["measured_accuracy"] - m["measured_accuracy_int8"])
        model, recipe = store.int8_model(job.id, c.id)
        assert model[:4] != b"" and recipe["calibration_images"] >= 1 and "scope" in recipe
    # the unmeasured complete candidates carry a predicted drop, so an INT8 accuracy with its spread
    predicted = [
        c for c in store.candidates(job.id) if c.status == "complete" and c.metrics["measured_accuracy"] is None
    ]
    for c in predicted:
        assert c.metrics["predicted_int8_drop"] is not None and c.metrics["accuracy_int8_std"] > 0


def test_the_int8_export_runs_without_the_project_at_the_stored_accuracy(measured, tmp_path, capsys):
    url, store, job, spec, trained = measured
    c = trained[0]
    out = tmp_path / "export"
    assert cli(["export", str(job.id), str(c.id), "-o", str(out), "--int8", "--db", url]) == 0
    assert "INT8: model.int8.onnx" in capsys.readouterr().out
    card = json.loads((out / "model_card.json").read_text())
    assert card["int8"]["accuracy"] == c.metrics["measured_accuracy_int8"]
    assert card["int8"]["quantization"] == store.int8_model(job.id, c.id)[1]
    assert (out / "model.int8.onnx").read_bytes() == store.int8_model(job.id, c.id)[0]
    assert "model.int8.onnx" in (out / "README.md").read_text()
    # the images the job scored on, preprocessed as the card says, handed over as arrays
    _, test = measurement_sets(spec)
    x, y = test.batch(range(len(test)), resolution=spec.evaluator.resolution)
    np.save(out / "inputs.npy", x.numpy())
    np.save(out / "labels.npy", y.numpy())
    script = ISOLATED.format(purelib=sysconfig.get_paths()["purelib"])
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script], cwd=out, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) == pytest.approx(c.metrics["measured_accuracy_int8"], abs=0.005)


def test_an_int8_export_of_a_candidate_never_measured_is_refused(measured, tmp_path, capsys):
    url, store, job, _, _ = measured
    unmeasured = [
        c for c in store.candidates(job.id) if c.status == "complete" and c.metrics["measured_accuracy"] is None
    ]
    if not unmeasured:
        pytest.skip("every complete candidate was measured")
    code = cli(["export", str(job.id), str(unmeasured[0].id), "-o", str(tmp_path / "x"), "--int8",
                "--allow-untrained", "--db", url])  # fmt: skip
    assert code != 0
    assert "int8" in capsys.readouterr().err and not (tmp_path / "x").exists()
