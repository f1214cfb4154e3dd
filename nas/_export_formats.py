"""The export's file formats: each writer saves a module in its format at ``shape`` (a free height
and width if ``free``) and returns the file loaded back, as a callable from an input batch to the
module's outputs, so ``nas.export`` can compare the file with the module it came from.

A module's outputs are a tensor (a classifier's logits, a segmenter's class map) or a list or tuple
of them (a detector's levels, or its boxes, scores, classes and image indices); ``max_diff`` compares
either. The ONNX graph's output names (and which of their axes are free) are the module's
``onnx_outputs`` when it has them, else one ``logits`` output with a free batch.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

ONNX_OPSET = 17
CLASSIFIER_OUTPUTS = {"logits": {0: "batch"}}


class OnnxCheckError(ValueError):
    """The written ONNX graph fails ``onnx.checker``."""


def max_diff(a: Any, b: Any) -> float:
    """The largest |difference| between two outputs (tensors, arrays, or lists of them)."""
    import numpy as np

    a, b = _flat(a), _flat(b)
    if a.shape != b.shape:
        return float("inf")  # e.g. a level of another size: no agreement to speak of
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _flat(x: Any) -> Any:
    import numpy as np

    if isinstance(x, list | tuple):
        parts = [_flat(p) for p in x]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(x.detach() if hasattr(x, "detach") else x, dtype=np.float64).ravel()


def write_state_dict(model: Any, path: Path, shape: tuple[int, ...], free: bool) -> Any:
    import copy

    import torch

    torch.save(model.state_dict(), path)
    reloaded = copy.deepcopy(model)
    for p in reloaded.parameters():  # the reloaded weights, not the copied ones, must produce the output
        p.data.zero_()
    reloaded.load_state_dict(torch.load(path, weights_only=True))
    return reloaded


def write_exported_program(model: Any, path: Path, shape: tuple[int, ...], free: bool) -> Any:
    import torch

    example = torch.zeros(2, *shape)  # not 1: torch.export specialises a size-1 dimension
    dims: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=4096)}
    if free:  # AUTO: torch keeps them free where the network allows (e.g. not where a map becomes 1x1)
        dims |= {2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model, (example,), dynamic_shapes=(dims,))
        torch.export.save(program, str(path))
        return torch.export.load(str(path)).module()


def write_onnx(model: Any, path: Path, shape: tuple[int, ...], free: bool) -> Any:
    import onnx
    import onnxruntime as ort
    import torch

    outputs = getattr(model, "onnx_outputs", CLASSIFIER_OUTPUTS)
    example = torch.zeros(1, *shape)
    axes = {0: "batch", 2: "height", 3: "width"} if free else {0: "batch"}
    if not free:  # a fixed size fixes the outputs' height and width too
        outputs = {k: {a: n for a, n in v.items() if n not in ("height", "width")} for k, v in outputs.items()}
    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")  # it is deprecated too; the torch.export-based one is ten times slower here
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,  # the TorchScript-based exporter: no extra dependencies, a plain opset-17 graph
            opset_version=ONNX_OPSET,
            input_names=["image"],
            output_names=list(outputs),
            dynamic_axes={"image": axes, **outputs},
        )
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        raise OnnxCheckError(f"the exported graph fails the ONNX checker: {err}") from err
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = list(outputs)
    if len(names) == 1:
        return lambda x: session.run(names, {"image": x.numpy()})[0]
    return lambda x: tuple(session.run(names, {"image": x.numpy()}))


def write_torchscript(model: Any, path: Path, shape: tuple[int, ...], free: bool) -> Any:
    import torch

    example = torch.zeros(1, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of torch.export; written only when asked for
        traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))
        return torch.jit.load(str(path))


WRITERS = {
    "state_dict": write_state_dict,
    "exported_program": write_exported_program,
    "onnx": write_onnx,
    "torchscript": write_torchscript,
}
