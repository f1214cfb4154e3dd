"""Run a dense network's exported ``model.onnx`` as a user without this project would, and check it.

It imports numpy and onnxruntime only, never this project: the export runs it as a script in a
fresh interpreter that refuses to import the project (``nas._dense_export.check_without_project``).

    python _onnx_check.py model.onnx check.npz   # prints one JSON line: {"ok": ..., "problems": [...], ...}

``check.npz`` holds ``image`` (B x C x H x W float32), ``meta`` (JSON: task, outputs, num_classes and,
for detection, score_thresh and max_det) and ``expected_<output>``: what the PyTorch network and its
post-processing return on the image (a detector's detections: what PyTorch selects from the file's
own cells, so that scores a rounding apart cannot swap places at a cut). It checks the outputs' names, types, shapes and ranges, then
how far they are from the expected ones (the export holds them to its tolerance).
"""

from __future__ import annotations

import json
import platform
import sys

import numpy as np
import onnxruntime as ort

TYPES = {
    "detection": {"boxes": ("float32", 2), "scores": ("float32", 1), "classes": ("int64", 1), "batch_index": ("int64", 1),
                  "cell_boxes": ("float32", 3), "cell_scores": ("float32", 3)},
    "segmentation": {"class_map": ("int64", 3)},
}  # fmt: skip


def check(onnx_path: str, data: dict) -> dict:
    meta = json.loads(str(data["meta"]))
    image = data["image"]
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    report = {
        "runs_in": f"onnxruntime {ort.__version__} (CPUExecutionProvider), Python {platform.python_version()}, "
        "in an interpreter that cannot import this project",
        "input": {"name": session.get_inputs()[0].name, "shape": list(image.shape)},
        "problems": [],
    }
    problems = report["problems"]
    if names != meta["outputs"]:
        problems.append(f"outputs are {names}, expected {meta['outputs']}")
        return {**report, "ok": False}
    got = dict(zip(names, session.run(None, {session.get_inputs()[0].name: image}), strict=True))
    report["outputs"] = {n: {"dtype": str(v.dtype), "shape": list(v.shape)} for n, v in got.items()}
    for name, (dtype, ndim) in TYPES[meta["task"]].items():
        if str(got[name].dtype) != dtype or got[name].ndim != ndim:
            problems.append(
                f"{name} is {got[name].dtype} with {got[name].ndim} dimensions, expected {dtype} with {ndim}"
            )
    if problems:
        return {**report, "ok": False}
    expected = {n: data[f"expected_{n}"] for n in names}
    if meta["task"] == "detection":
        _detections(got, expected, image, meta, report)
    else:
        _class_map(got["class_map"], expected["class_map"], image, meta, report)
    return {**report, "ok": not problems}


def _detections(got: dict, expected: dict, image: np.ndarray, meta: dict, report: dict) -> None:
    problems = report["problems"]
    boxes, scores, classes, batch = (got[n] for n in ("boxes", "scores", "classes", "batch_index"))
    n = len(scores)
    b, _, h, w = image.shape
    report["detections"] = int(n)
    if boxes.shape != (n, 4) or len(classes) != n or len(batch) != n:
        problems.append(f"boxes {boxes.shape}, scores {scores.shape}, classes {classes.shape}, batch_index "
                        f"{batch.shape}: expected detections x 4 and three of detections")  # fmt: skip
        return
    if n:
        if not (np.all(boxes >= 0) and np.all(boxes[:, 2] <= w) and np.all(boxes[:, 3] <= h)):
            problems.append(f"boxes outside the {w}x{h} px image")
        if not np.all((boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])):
            problems.append("boxes with x2 < x1 or y2 < y1")
        if not np.all((scores > meta["score_thresh"]) & (scores <= 1)):
            problems.append(f"scores outside ({meta['score_thresh']}, 1]")
        if not np.all((classes >= 0) & (classes < meta["num_classes"])):
            problems.append(f"classes outside 0..{meta['num_classes'] - 1}")
        if not (np.all((batch >= 0) & (batch < b)) and np.all(np.diff(batch) >= 0)):
            problems.append(f"batch_index outside 0..{b - 1} or out of order")
        if np.bincount(batch, minlength=b).max() > meta["max_det"]:
            problems.append(f"more than {meta['max_det']} detections in an image")
    cells, cell_scores = got["cell_boxes"], got["cell_scores"]
    if cells.shape[0] != b or cells.shape[2] != 4 or cell_scores.shape != (*cells.shape[:2], meta["num_classes"]):
        problems.append(f"cell_boxes {list(cells.shape)}, cell_scores {list(cell_scores.shape)}: expected batch x cells x 4 "
                        f"and batch x cells x {meta['num_classes']}")  # fmt: skip
        return
    e = expected
    if len(e["scores"]) != n or not (np.array_equal(classes, e["classes"]) and np.array_equal(batch, e["batch_index"])):
        problems.append(f"{n} detections, PyTorch's {len(e['scores'])}, or their classes or images differ")
        return
    report["max_abs_diff"] = {
        "scores": float(np.max(np.abs(scores - e["scores"]))) if n else 0.0,
        "boxes_px": float(np.max(np.abs(boxes - e["boxes"]))) if n else 0.0,
        "cell_scores": _max_abs(cell_scores, e["cell_scores"]),
        "cell_boxes_px": _max_abs(cells, e["cell_boxes"]),
    }


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0


def _class_map(got: np.ndarray, expected: np.ndarray, image: np.ndarray, meta: dict, report: dict) -> None:
    problems = report["problems"]
    b, _, h, w = image.shape
    if got.shape != (b, h, w):
        problems.append(f"class_map is {list(got.shape)}, expected {[b, h, w]} (batch, height, width of the input)")
        return
    if not np.all((got >= 0) & (got < meta["num_classes"])):
        problems.append(f"classes outside 0..{meta['num_classes'] - 1}")
    report["pixels_differing"] = float(np.mean(got != expected))


if __name__ == "__main__":
    with np.load(sys.argv[2]) as npz:
        print(json.dumps(check(sys.argv[1], dict(npz))))
