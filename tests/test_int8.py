"""INT8 post-training quantization (nas.int8) on a real, briefly trained MetaFormer and real
Fashion-MNIST, and the INT8 drop predictor's contract (nas.int8_drop)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from nas.data import load_dataset
from nas.int8 import (
    SCOPES,
    Int8Error,
    Int8Recipe,
    calibration_set,
    coverage,
    onnx_accuracy,
    quantize,
)
from nas.int8_drop import FEATURES, Int8DropError, Int8DropPredictor
from nas.proxies._training import Trainer, TrainRecipe, evaluate
from search_spaces import ArchConfig, build_model
from search_spaces._arch import StageConfig

ROOT = Path(__file__).resolve().parents[1]
RESOLUTION = 32
ARCH = ArchConfig(
    stages=[
        StageConfig(mixer="sepconv", depth=1, dim=16),
        StageConfig(mixer="attention", depth=1, dim=32, head_dim=16),
    ],
    norm="layernorm",
    act="gelu",
)
RECIPE = Int8Recipe(calibration_images=64)


@pytest.fixture(scope="module")
def data():
    train, test = load_dataset(split="train"), load_dataset(split="test")
    return train.subset(range(3000)), test.subset(range(1000))


@pytest.fixture(scope="module")
def trained(data):
    torch.manual_seed(0)
    model = build_model(ARCH, num_classes=10, img_size=RESOLUTION)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: one thread is fastest, and stays fast on a busy machine
    try:
        Trainer(model, data[0], TrainRecipe(steps=150, batch_size=32, resolution=RESOLUTION, lr=3e-3)).advance(150)
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module")
def graphs(trained, data):
    calibration = calibration_set(data[0], RECIPE)
    return {
        scope: quantize(
            trained, calibration, resolution=RESOLUTION, recipe=Int8Recipe(calibration_images=64, scope=scope)
        )
        for scope in SCOPES
    }


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_weights_are_int8_per_output_channel(graphs):
    model = onnx.load_from_string(graphs["matmul"])
    inits = _initializers(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    checked = 0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul", "Gemm") or node.input[1] not in producer:
            continue  # attention's q @ k and its @ v multiply activations, not weights
        dq = producer[node.input[1]]
        if dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            continue
        weight, scale, zero = (inits[name] for name in dq.input[:3])
        axis = next(a.i for a in dq.attribute if a.name == "axis")
        assert weight.dtype == np.int8 and zero.dtype == np.int8, node.name
        assert not zero.any(), f"{node.name}: weights are symmetric (zero point 0)"
        channels = weight.shape[axis]
        assert channels > 1 and scale.shape == (channels,), f"{node.name}: one scale per output channel"
        checked += 1
    ops = {n.op_type for n in model.graph.node}
    assert checked >= 6 and {"Conv", "MatMul", "QuantizeLinear", "DequantizeLinear"} <= ops


def test_all_scope_quantizes_more_than_matmul(graphs):
    counts = {
        scope: sum(n.op_type == "QuantizeLinear" for n in onnx.load_from_string(g).graph.node)
        for scope, g in graphs.items()
    }
    assert counts["all"] > counts["matmul"] > 0
    table = coverage(graphs["all"])
    for op in ("LayerNormalization", "Softmax", "Erf", "Add"):  # GELU is Erf, Mul, Add, Div in opset 17
        assert table[op]["int8_in"] == table[op]["nodes"] > 0, op
    matmul_only = coverage(graphs["matmul"])
    # a matmul's inputs and outputs are INT8 in both scopes (attention's scores and probabilities too);
    # in "matmul" what lies between matmuls computes on FP32: GELU's Erf, the residual adds
    assert matmul_only["Erf"]["int8_in"] == matmul_only["Erf"]["int8_out"] == 0
    assert matmul_only["Softmax"]["int8_out"] == table["Softmax"]["int8_out"] > 0
    assert sum(c["int8_in"] for c in matmul_only.values()) < sum(c["int8_in"] for c in table.values())


def test_accuracy_agrees_with_torch(trained, graphs, data):
    test = data[1]
    fp32 = evaluate(trained, test, resolution=RESOLUTION)
    assert fp32 > 0.5, "the tiny network trained"
    for scope, graph in graphs.items():
        assert abs(onnx_accuracy(graph, test, resolution=RESOLUTION) - fp32) < 0.03, scope


def test_deterministic_and_leaves_no_files(trained, graphs, data):
    before = set(Path(tempfile.gettempdir()).glob("nas-int8-*"))
    again = quantize(trained, calibration_set(data[0], RECIPE), resolution=RESOLUTION, recipe=RECIPE)
    assert again == graphs[RECIPE.scope]
    assert set(Path(tempfile.gettempdir()).glob("nas-int8-*")) == before
    first = onnx_accuracy(again, data[1], resolution=RESOLUTION, batch_size=300)
    assert first == onnx_accuracy(graphs[RECIPE.scope], data[1], resolution=RESOLUTION)
    other = calibration_set(data[0], Int8Recipe(calibration_images=64, seed=1))
    assert not torch.equal(other.images, calibration_set(data[0], RECIPE).images)


def test_bad_recipes_name_the_field(trained, data):
    for kwargs, field in (({"calibration_images": 0}, "calibration_images"), ({"scope": "int4"}, "scope"),
                          ({"seed": -1}, "seed")):  # fmt: skip
        with pytest.raises(Int8Error, match=field):
            Int8Recipe(**kwargs)
    with pytest.raises(Int8Error, match="calibration_images"):
        calibration_set(data[1].subset(range(10)), Int8Recipe(calibration_images=20))
    with pytest.raises(Int8Error, match="keep_fp32"):
        quantize(trained, calibration_set(data[0], RECIPE), resolution=RESOLUTION, recipe=RECIPE, keep_fp32=("x",))
    described = RECIPE.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["op_types"] == list(SCOPES[RECIPE.scope]) and described["method"]["format"] == "QDQ"


def test_drop_predictor_contract():
    archs = [ARCH.to_json(), ArchConfig(stages=[StageConfig(mixer="pooling", depth=2, dim=32)]).to_json()]
    params = [1e5, None]
    predictor = Int8DropPredictor()
    mean, std = predictor.predict(archs, params)
    assert mean.shape == std.shape == (2,) and np.isfinite(mean).all()
    assert (std >= predictor.prior.noise_std).all() and predictor.prior.noise_std > 0
    # a job whose networks all measure a 3-point drop moves its predictions towards it, and is surer
    predictor.fit(archs * 4, params * 4, [0.03] * 8)
    shifted, narrower = predictor.predict(archs, params)
    assert (shifted > mean + 0.01).all() and (narrower <= std + 1e-12).all()
    summary = predictor.summary()
    assert summary["job"]["measured"] == 8 and summary["features"] == list(FEATURES)
    assert summary["prior"]["fitted_on"]["networks"] >= 10
    with pytest.raises(Int8DropError, match="drops"):
        predictor.fit(archs, params, [0.01])


def test_drop_predictor_imports_no_torch():
    code = "import sys, nas.int8_drop; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_one_collapsed_network_does_not_move_every_prediction():
    archs = [ARCH.to_json()] * 9
    predictor = Int8DropPredictor()
    before, _ = predictor.predict(archs[:1], [1e5])
    predictor.fit(archs, [1e5] * 9, [float(before[0])] * 8 + [0.76])  # eight as predicted, one collapse
    after, _ = predictor.predict(archs[:1], [1e5])
    assert abs(float(after[0]) - float(before[0])) < 1e-3
