"""INT8 accuracy as the chip computes it: post-training static quantization with ONNX Runtime.

    recipe = Int8Recipe()                                   # 256 seeded training images, scope "all"
    onnx = quantize(model, calibration_set(train, recipe), resolution=32, recipe=recipe)
    accuracy = onnx_accuracy(onnx, test, resolution=32)     # top-1 (0-1), INT8, onnxruntime CPU

The network is exported to ONNX as ``nas.export`` exports it (TorchScript-based exporter, opset
``ONNX_OPSET``, input ``image`` with a free batch, output ``logits``), then quantized by
``onnxruntime.quantization.quantize_static`` in the QDQ format: weights INT8 symmetric per output
channel, activations INT8 (asymmetric, per tensor) with ranges calibrated by MinMax on the
recipe's seeded training images. The result is one self-contained ONNX graph (QuantizeLinear /
DequantizeLinear pairs around the INT8 tensors) that runs in plain onnxruntime; its accuracy is
what ``onnx_accuracy`` measures. ``SCOPES`` names which operations compute in INT8 (docs/int8.md
lists the tensors each scope quantizes, as measured in the installed onnxruntime).

Same model and recipe give the same bytes and the same accuracy: calibration images, their order
and batches are fixed by the recipe, and scoring runs single-threaded.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.export import ONNX_OPSET
from nas.spec import FieldError

if TYPE_CHECKING:
    import torch

    from nas.data import ImageData

# Operation types that compute in INT8, per scope. "matmul": the weight-bearing products only
# (convolutions, matrix products, the linear head): their weights, inputs and outputs are INT8;
# what lies between them (norms, activations, softmax, residual adds) computes on FP32.
# "all": every operation the exported MetaFormer graphs contain that computes on values (norms,
# activations and their decompositions, softmax, residual adds, scales, pooling, reshapes): each
# one's inputs and outputs pass through INT8 (ONNX Runtime wraps the ones it has no integer kernel
# for in QuantizeLinear/DequantizeLinear pairs, so their tensors are rounded to INT8 as the chip
# would store them).
_MATMUL_OPS = ("Conv", "MatMul", "Gemm")
_OTHER_OPS = (
    # normalisation, and what GroupNorm(1) / LayerNorm decompose into
    "LayerNormalization", "BatchNormalization", "InstanceNormalization", "ReduceMean", "Sub", "Pow", "Sqrt",
    # activations (GELU decomposes into Erf, Mul, Add, Div; StarReLU into Relu, Mul, Add)
    "Relu", "Erf", "Sigmoid", "Tanh", "Clip", "Softmax",
    # element-wise arithmetic (residual adds, layer scale, bias)
    "Add", "Mul", "Div",
    # pooling
    "AveragePool", "MaxPool", "GlobalAveragePool",
    # data movement (INT8 in, INT8 out)
    "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Slice", "Concat", "Pad", "Split", "Gather",
)  # fmt: skip
_NORM_OPS = ("LayerNormalization", "BatchNormalization", "InstanceNormalization")
# Operation families, for attribution: ``quantize(..., keep_fp32=("norm",))`` leaves one in FP32.
FAMILIES = ("matmul", "norm", "activation", "attention", "mixer", "residual", "other")
SCOPES: dict[str, tuple[str, ...]] = {"matmul": _MATMUL_OPS, "all": _MATMUL_OPS + _OTHER_OPS}
DEFAULT_SCOPE = "all"
CALIBRATION_BATCH = 64  # images per calibration batch (MinMax ranges do not depend on it)


class Int8Error(FieldError):
    """A quantization request that cannot be honoured; the message names the field and the fix."""


@dataclass(frozen=True)
class Int8Recipe:
    """The provenance of an INT8 accuracy: how the network was quantized."""

    calibration_images: int = 256
    seed: int = 0  # which training images calibrate
    scope: str = DEFAULT_SCOPE

    def __post_init__(self) -> None:
        if not isinstance(self.calibration_images, int) or self.calibration_images < 1:
            raise Int8Error(
                "calibration_images", f"must be an integer >= 1 (256 is the default), got {self.calibration_images!r}"
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise Int8Error("seed", f"must be an integer >= 0, got {self.seed!r}")
        if self.scope not in SCOPES:
            raise Int8Error("scope", f"unknown {self.scope!r}; choose one of {', '.join(SCOPES)}")

    @property
    def op_types(self) -> tuple[str, ...]:
        return SCOPES[self.scope]

    def describe(self) -> dict[str, Any]:
        import onnxruntime

        return {
            "method": {
                "tool": f"onnxruntime.quantization.quantize_static (onnxruntime {onnxruntime.__version__})",
                "format": "QDQ",
                "weights": "int8, symmetric, per output channel",
                "activations": "int8, asymmetric, per tensor",
                "calibration": "MinMax",
                "onnx_opset": ONNX_OPSET,
            },
            "calibration_images": self.calibration_images,
            "seed": self.seed,
            "scope": self.scope,
            "op_types": list(self.op_types),
        }


def calibration_set(train: ImageData, recipe: Int8Recipe) -> ImageData:
    """The recipe's calibration images: ``calibration_images`` drawn from ``train`` under ``seed``."""
    import torch

    if recipe.calibration_images > len(train):
        raise Int8Error(
            "calibration_images",
            f"{recipe.calibration_images} asked for but the training data holds {len(train)} images; ask for fewer",
        )
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(recipe.seed))
    return train.subset(order[: recipe.calibration_images])


def quantize(
    model: torch.nn.Module,
    calibration: ImageData,
    *,
    resolution: int,
    recipe: Int8Recipe,
    keep_fp32: Collection[str] = (),
) -> bytes:
    """``model`` as an INT8 QDQ ONNX graph (bytes): input ``image`` (batch, 3, resolution,
    resolution) with a free batch, output ``logits``; activation ranges from ``calibration``.
    ``keep_fp32`` names operation ``FAMILIES`` left in FP32 (the study's attribution)."""
    return quantize_onnx(fp32_onnx(model, resolution=resolution), calibration, resolution=resolution,
                         recipe=recipe, keep_fp32=keep_fp32)  # fmt: skip


def quantize_onnx(
    fp32: bytes, calibration: ImageData, *, resolution: int, recipe: Int8Recipe, keep_fp32: Collection[str] = ()
) -> bytes:
    """An FP32 ONNX classifier (bytes, input ``image``) as an INT8 QDQ graph: ``quantize`` without the
    export, for a graph already exported (``fp32_onnx``)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    if len(calibration) < 1:
        raise Int8Error("calibration", "holds no images; pass calibration_set(train, recipe)")
    unknown = sorted(set(keep_fp32) - set(FAMILIES))
    if unknown:
        raise Int8Error("keep_fp32", f"unknown {', '.join(unknown)}; choose among {', '.join(FAMILIES)}")
    graph = _constants_as_initializers(onnx.load_from_string(fp32))
    excluded = [n.name for n in graph.graph.node if family(n) in keep_fp32]
    batches = [
        calibration.batch(range(start, min(start + CALIBRATION_BATCH, len(calibration))), resolution=resolution)[0]
        for start in range(0, len(calibration), CALIBRATION_BATCH)
    ]

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._batches, None)
            return None if x is None else {"image": x.numpy()}

    with tempfile.TemporaryDirectory(prefix="nas-int8-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(graph, str(source))
        # onnxruntime logs advice (pre-processing) and notes on rank-1 weights through the root logger
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), _quiet_root_logger():
            warnings.simplefilter("ignore")
            quantize_static(
                str(source),
                str(target),
                _Reader(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(recipe.op_types),
                nodes_to_exclude=excluded,
                per_channel=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                # a norm's scale is a vector: one INT8 scale per channel along its only axis
                extra_options={"QDQOpTypePerChannelSupportToAxis": dict.fromkeys(_NORM_OPS, 0)},
            )
        quantized = onnx.load(str(target))
    return quantized.SerializeToString()


def family(node: Any) -> str:
    """Which operation family an exported node belongs to (``FAMILIES``), from its op type and the
    module path the TorchScript exporter writes into its name (``/stages/.../norm1/...``)."""
    op, path = node.op_type, node.name.lower()
    if op in _MATMUL_OPS:
        return "matmul"
    if "/act/" in path or op in ("Erf", "Relu", "Sigmoid", "Tanh", "Clip"):
        return "activation"
    if op in _NORM_OPS or re.search(r"/(norm\w*|bn\d*)/", path):
        return "norm"
    if op == "Softmax" or "/attn/" in path:
        return "attention"
    if "/mixer/" in path:  # the token mixer's own arithmetic: pooling's pool(x) - x, window partitioning
        return "mixer"
    if re.search(r"/(ls\d|rs\d)/", path) or re.search(r"/blocks\.\d+/(add|mul|sub)", path):
        return "residual"
    return "other"


def coverage(onnx: bytes) -> dict[str, dict[str, int]]:
    """What a QDQ graph computes in INT8, per op type of its compute nodes: ``nodes``, ``int8_in``
    (nodes whose first input is dequantized from INT8) and ``int8_out`` (nodes whose output is
    quantized to INT8). A QuantizeLinear that feeds the next INT8 op lies between them."""
    import onnx as onnx_lib

    graph = onnx_lib.load_from_string(onnx).graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    table: dict[str, dict[str, int]] = {}
    for n in graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant", "Identity"):
            continue
        row = table.setdefault(n.op_type, {"nodes": 0, "int8_in": 0, "int8_out": 0})
        row["nodes"] += 1
        first = producer.get(n.input[0]) if n.input else None
        row["int8_in"] += int(first is not None and first.op_type == "DequantizeLinear")
        row["int8_out"] += int(any(c.op_type == "QuantizeLinear" for c in consumers.get(n.output[0], [])))
    return dict(sorted(table.items()))


def _constants_as_initializers(model: Any) -> Any:
    """Constant nodes (the exporter's literals: a no-bias norm's zero bias, GELU's 1/sqrt(2)) as
    initializers, so the quantizer treats them as the weights they are."""
    from onnx import numpy_helper

    keep = []
    for n in model.graph.node:
        attrs = {a.name: a for a in n.attribute}
        if n.op_type == "Constant" and "value" in attrs:
            tensor = numpy_helper.to_array(attrs["value"].t)
            model.graph.initializer.append(numpy_helper.from_array(tensor, n.output[0]))
        else:
            keep.append(n)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def fp32_onnx(model: torch.nn.Module, *, resolution: int) -> bytes:
    """``model`` (in eval mode) as an FP32 ONNX graph, exported as ``nas.export`` exports it, with a
    free batch only (calibration ranges hold for the priced input size)."""
    import torch

    was_training = model.training
    model.eval()
    first = next(model.parameters(), None)  # a model trained on a GPU exports from there
    device = first.device if first is not None else torch.device("cpu")
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(None), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated; see nas.export
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, resolution, resolution, device=device),),
                buffer,
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=["image"],
                output_names=["logits"],
                dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
            )
    finally:
        model.train(was_training)
    return buffer.getvalue()


def session(onnx: bytes) -> Any:
    """A single-threaded onnxruntime CPU session for an ONNX graph (bytes): reproducible scores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])


def onnx_accuracy(onnx: bytes, data: ImageData, *, resolution: int, batch_size: int = 500) -> float:
    """Top-1 accuracy (0-1) of an ONNX classifier (input ``image``, output ``logits``) on all of
    ``data``, run by onnxruntime on the CPU."""
    logits = onnx_logits(onnx, data, resolution=resolution, batch_size=batch_size)
    return float((logits.argmax(-1) == data.labels.numpy()).mean())


def onnx_logits(onnx: bytes, data: ImageData, *, resolution: int, batch_size: int = 500) -> np.ndarray:
    """The logits (N, classes) of an ONNX classifier on all of ``data``, in ``session``."""
    import torch

    if len(data) < 1:
        raise Int8Error("data", "holds no images to score")
    run = session(onnx)
    out = []
    for start in range(0, len(data), batch_size):
        x, _ = data.batch(torch.arange(start, min(start + batch_size, len(data))), resolution=resolution)
        out.append(run.run(["logits"], {"image": x.numpy()})[0])
    return np.concatenate(out)
