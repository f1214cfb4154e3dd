"""What a dense network's export adds: the host's work after the network, as a torch module that
``model.onnx`` holds with the network, and the words its model card uses for that work.

The chip's price is the network's alone (backbone, neck and head, up to the head's raw outputs):
``state_dict.pt`` and ``model.pt2`` are that network. ``model.onnx`` is the network followed by what
a host does with its outputs, so onnxruntime returns what a user wants:

- detection (``Detections``): ``nas.tasks.detection.decode_dense`` (each cell's box and class scores),
  boxes clipped to the image, the score threshold, the ``pre_nms`` best (cell, class) pairs of each
  image, NMS per image and class (``torchvision.ops.batched_nms``, which the TorchScript-based
  exporter writes as ONNX NonMaxSuppression), the ``max_det`` best of each image: what
  ``nas.tasks.detection.decode`` does image by image (the job's mAP is measured through it), here for a
  whole batch at once with no Python loop over images, so the graph keeps a free batch;
- segmentation (``ClassMap``): the logits upsampled bilinearly to the input's size, then the argmax
  over the classes: ``nas.tasks.segmentation.predict``.

The export compares the ONNX file with this module, and runs it once more in an interpreter that
cannot import this project (``check_without_project``, the script ``nas/_onnx_check.py``).
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

# The project's own packages: the check's interpreter refuses to import them, however they are installed.
PROJECT_PACKAGES = ("nas", "search_spaces", "hwmodels", "dashboards")
CHECK_SCRIPT = Path(__file__).with_name("_onnx_check.py")
CHECK_TIMEOUT_S = 300
# The ONNX file's boxes are compared with the module's in units of the image's longer side, so one
# tolerance (``nas.export.AGREEMENT_TOLERANCE``) serves scores (0-1) and boxes alike.
DETECTION_OUTPUTS = ("boxes", "scores", "classes", "batch_index")
SAME = 1e-6  # detections gathered from the very same cells agree to rounding (boxes: relative to the image)


class DenseCheckError(ValueError):
    """``model.onnx`` fails, or disagrees with PyTorch, in onnxruntime without this project."""


def decode_settings() -> dict[str, float]:
    """``nas.tasks.detection.decode``'s thresholds and limits (its keyword defaults), the ones the
    job's mAP was measured with: the ONNX file applies the same."""
    from nas.tasks.detection import decode

    return {
        name: p.default
        for name, p in inspect.signature(decode).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


class Detections(nn.Module):
    """A detection network and its host post-processing: image batch -> (boxes M x 4 float32 xyxy
    input pixels, scores M float32 0-1, classes M int64 0..K-1, batch_index M int64), ordered by image,
    then by score, highest first; then every cell's decoded boxes (B x N x 4, clipped) and class scores
    (B x N x K), before the threshold and NMS, for a host that selects its own."""

    onnx_outputs: ClassVar = {
        **{name: {0: "detections"} for name in DETECTION_OUTPUTS},
        "cell_boxes": {0: "batch", 1: "cells"},
        "cell_scores": {0: "batch", 1: "cells"},
    }

    def __init__(self, network: nn.Module, *, score_thresh: float, iou_thresh: float, max_det: int, pre_nms: int):
        super().__init__()
        self.network = network
        self.score_thresh, self.iou_thresh, self.max_det, self.pre_nms = score_thresh, iou_thresh, max_det, pre_nms

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from nas.tasks.detection import decode_dense

        boxes, scores = decode_dense(self.network(image), self.network.strides)
        # (w, h, w, h) from the input's shape as a tensor: a trace keeps it free, unlike Python ints
        limit = torch._shape_as_tensor(image)[2:].flip(0).repeat(2).to(boxes.dtype)
        boxes = torch.minimum(boxes.clamp_min(0), limit)
        return (*self.select(boxes, scores), boxes, scores)

    def select(self, boxes: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The detections among every cell's (clipped) boxes and scores, as ``decode`` selects them."""
        from torchvision.ops import batched_nms

        k = scores.shape[2]
        # padded so that there are pre_nms pairs at any input size; the padding is under any threshold
        top, pair = F.pad(scores.flatten(1), (0, self.pre_nms), value=-1.0).topk(self.pre_nms, dim=1)
        where = torch.nonzero(top > self.score_thresh)
        image_of, nth = where[:, 0], where[:, 1]
        score, pair = top[image_of, nth], pair[image_of, nth]
        cell, label = pair // k, pair % k
        box = boxes[image_of, cell]
        keep = batched_nms(box, score, image_of * k + label, self.iou_thresh)  # highest score first
        # the max_det best of each image: rank the kept ones within their image
        mine = image_of[keep].unsqueeze(1) == torch.arange(scores.shape[0], device=scores.device).unsqueeze(0)
        rank = (mine.long().cumsum(0) * mine.long()).sum(1)  # 1 for an image's best
        keep = keep[rank <= self.max_det]
        order = (image_of[keep] * keep.shape[0] + torch.arange(keep.shape[0], device=scores.device)).argsort()
        keep = keep[order]  # by image, then by score: the NMS order
        return box[keep], score[keep], label[keep], image_of[keep]

    def agreement(self, got: Any, expected: Any, image: torch.Tensor) -> float:
        """How far the ONNX file's outputs ``got`` are from this module's ``expected`` on ``image``:
        the largest |difference| of the cells' scores (0-1) and boxes (over the image's longer side),
        inf unless ``got``'s detections are what ``select`` makes of ``got``'s own cells. (Comparing the
        detections themselves would fail on near-ties: scores a rounding apart swap places at a cut.)
        Where two candidates have the very same score, NMS may keep either: then only the cells count."""
        side = max(image.shape[2], image.shape[3])
        cells = max(_max_abs(got[5], expected[5]), _max_abs(got[4], expected[4]) / side)
        if self.own_selection(got) is None:
            return cells if self.tied(got[5]) else float("inf")
        return cells

    def own_selection(self, got: Any) -> tuple[torch.Tensor, ...] | None:
        """``select`` of the file's own cells, if its detections are those (the same number, classes,
        images, scores and boxes, in the same order: they are gathered from the same cells), else None."""
        import numpy as np

        with torch.no_grad():
            own = self.select(torch.as_tensor(got[4]), torch.as_tensor(got[5]))
        if not all(np.shape(g) == tuple(o.shape) for g, o in zip(got[:4], own, strict=True)):
            return None
        if not (np.array_equal(got[2], own[2].numpy()) and np.array_equal(got[3], own[3].numpy())):
            return None
        if _max_abs(got[1], own[1]) > SAME or _max_abs(got[0], own[0]) > SAME * max(1.0, float(np.max(got[4]))):
            return None  # another cell of the same class and score: a tie NMS broke the other way
        return own

    def tied(self, cell_scores: Any) -> bool:
        """Whether two candidates of an image (above the threshold) have the very same score."""
        import numpy as np

        for scores in np.asarray(cell_scores):
            kept = scores[scores > self.score_thresh]
            if len(np.unique(kept)) < len(kept):
                return True
        return False


class ClassMap(nn.Module):
    """A segmentation network and its host post-processing: image batch -> class map B x H x W int64."""

    onnx_outputs: ClassVar = {"class_map": {0: "batch", 1: "height", 2: "width"}}

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        # nas.tasks.segmentation.predict, with the input's size as the trace sees it (free), not as ints
        logits = self.network(image).float()
        return F.interpolate(logits, size=image.shape[-2:], mode="bilinear", align_corners=False).argmax(1)

    def agreement(self, got: Any, expected: Any, image: torch.Tensor) -> float:
        """The share of pixels (0-1) whose class differs (near-ties of two logits may round apart)."""
        import numpy as np

        a, b = np.asarray(got), np.asarray(expected)
        return float(np.mean(a != b)) if a.shape == b.shape else float("inf")


def _max_abs(a: Any, b: Any) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def deployed(model: nn.Module, task: str) -> nn.Module:
    """The module ``model.onnx`` holds: the network and the host's post-processing of ``task``."""
    if task == "detection":
        return Detections(model, **decode_settings()).eval()
    if task == "segmentation":
        return ClassMap(model).eval()
    raise ValueError(f"task: {task!r} has no post-processing to export; expected detection or segmentation")


def agreement_text(task: str) -> str:
    """What ``agreement`` measures for ``model.onnx``, in the card's words."""
    if task == "detection":
        return (
            "model.onnx: the largest |difference| from the PyTorch network + decoding of every cell's scores (0-1) and "
            "boxes (over the image's longer side); its detections are what the PyTorch selection (threshold, NMS, "
            "max per image) makes of its own cells (where two candidates have the very same score, NMS may keep "
            "either: `onnx_without_project.tied_scores`, and only the cells are compared)"
        )
    return "model.onnx: the share of pixels (0-1) whose class differs from the PyTorch network + post-processing's"


def outputs_of(task: str, num_classes: int, strides: Any = None, output_stride: Any = None) -> dict[str, Any]:
    """Each file's outputs, as the card states them."""
    if task == "detection":
        levels = ", ".join(f"stride {s}" for s in strides or ())
        network = {
            "name": "levels",
            "shape": [["batch", 4 + 1 + num_classes, f"height / {s}", f"width / {s}"] for s in strides or ()],
            "format": f"a list, one tensor per level ({levels}): channels 0:4 raw distances (left, top, right, "
            f"bottom) from the cell's centre, channel 4 the raw centerness logit, channels 5:{5 + num_classes} "
            "the raw class logits; decode them with nas.tasks.detection.decode",
        }
        onnx = {
            "boxes": {"shape": ["detections", 4], "dtype": "float32", "format": "x1, y1, x2, y2 in input pixels"},
            "scores": {"shape": ["detections"], "dtype": "float32", "format": "0-1, sqrt(class x centerness)"},
            "classes": {"shape": ["detections"], "dtype": "int64", "format": f"0..{num_classes - 1}"},
            "batch_index": {"shape": ["detections"], "dtype": "int64", "format": "the image of the batch"},
            "cell_boxes": {
                "shape": ["batch", "cells", 4],
                "dtype": "float32",
                "format": "every cell's decoded box, clipped, x1, y1, x2, y2 input pixels, level by level",
            },
            "cell_scores": {
                "shape": ["batch", "cells", num_classes],
                "dtype": "float32",
                "format": "every cell's score per class, 0-1, before the threshold and NMS",
            },
            "order": "detections by image, then by score, highest first",
        }
    else:
        network = {
            "name": "logits",
            "shape": ["batch", num_classes, f"height / {output_stride}", f"width / {output_stride}"],
            "format": f"raw class logits at 1/{output_stride} of the input's size; class 0 is the background",
        }
        onnx = {
            "class_map": {
                "shape": ["batch", "height", "width"],
                "dtype": "int64",
                "format": f"a class index (0..{num_classes - 1}, 0 background) per input pixel",
            }
        }
    return {"state_dict": network, "exported_program": network, "torchscript": network, "onnx": onnx}


def host_ops(task: str) -> dict[str, Any]:
    """What runs on the host after the network, and is in no figure of the card (the chip's price is
    the network's: backbone, neck and head, up to the head's raw outputs)."""
    if task == "detection":
        s = decode_settings()
        ops = [
            "box decoding (nas.tasks.detection.decode_dense): per level, each cell's centre ((column + 0.5) x stride, "
            "(row + 0.5) x stride) minus (left, top) and plus (right, bottom) softplus(raw distance) x stride",
            "scores: sqrt(sigmoid(class logit) x sigmoid(centerness logit)) per cell and class",
            "boxes clipped to the image",
            f"score threshold {s['score_thresh']}, then the {s['pre_nms']} best (cell, class) pairs of each image",
            f"non-maximum suppression per image and class at IoU {s['iou_thresh']} (ONNX NonMaxSuppression)",
            f"the {s['max_det']} best detections of each image",
        ]
        decoder = "nas.tasks.detection.decode"
    else:
        ops = [
            "bilinear upsampling of the logits to the input's height and width (align_corners=False)",
            "argmax over the classes per pixel",
        ]
        decoder = "nas.tasks.segmentation.predict"
    return {
        "priced_on_chip": "the network: backbone, neck and head, up to the head's raw outputs",
        "on_host": ops,
        "in_price": False,
        "in_files": {
            "onnx": "model.onnx runs them after the network",
            "exported_program": f"model.pt2 is the network alone: its raw outputs, for {decoder} (or your own)",
        },
    }


# The check's interpreter: no site, no environment, no current folder on its path (-I -S), the standard library and
# the installed packages' folders, and this project's packages refused however they were installed.
_BOOT = """
import importlib.abc, runpy, sys
sys.path[:] = [p for p in sys.path if p] + {paths!r}  # the standard library, then the installed packages
class _NotThisProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(name + ": the check runs without this project")
sys.meta_path.insert(0, _NotThisProject())
sys.argv = [{script!r}, *sys.argv[1:]]
runpy.run_path({script!r}, run_name="__main__")
"""


def check_without_project(
    onnx_path: Path, module: nn.Module, task: str, num_classes: int, image: torch.Tensor
) -> dict[str, Any]:
    """Run ``onnx_path`` on ``image`` with onnxruntime in a fresh interpreter that cannot import this
    project, check its outputs' names, types, shapes and ranges, and compare them with ``module``'s
    (the PyTorch network and post-processing). Returns the check's report (``ok``, ``problems``)."""
    import numpy as np

    with torch.no_grad():
        expected = module(image)
    expected = expected if isinstance(expected, tuple) else (expected,)
    names, tied = list(module.onnx_outputs), False
    if task == "detection":  # the detections PyTorch selects from the file's own cells (Detections.agreement)
        import onnxruntime as ort

        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        here = session.run(names, {"image": image.numpy()})
        own = module.own_selection(here)
        tied = own is None and module.tied(here[5])
        # with tied scores (NMS may keep either), the file's detections as onnxruntime gives them here
        selected = [torch.from_numpy(h) for h in here[:4]] if tied else own
        if selected is None:
            return {"ok": False, "problems": ["its detections are not what PyTorch selects from its own cells"]}
        expected = (*selected, *expected[4:])
    settings = decode_settings() if task == "detection" else {}
    paths = list(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")))
    with tempfile.TemporaryDirectory(prefix="nas-onnx-check-") as work:
        data = Path(work) / "check.npz"
        meta = {"task": task, "outputs": names, "num_classes": num_classes, **settings}
        np.savez(
            data,
            image=image.numpy(),
            meta=np.array(json.dumps(meta)),
            **{f"expected_{n}": e.numpy() for n, e in zip(names, expected, strict=True)},
        )
        boot = _BOOT.format(paths=paths, blocked=PROJECT_PACKAGES, script=str(CHECK_SCRIPT))
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", boot, str(onnx_path.resolve()), str(data)],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
        )
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "problems": [f"the check did not run: {tail[:300]}"]}
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "tied_scores": tied}


def dense_card(
    model: nn.Module,
    task: str,
    num_classes: int,
    input_shape: tuple[int, ...],
    onnx: tuple[Path, nn.Module] | None,
    tolerance: float,
) -> dict[str, Any]:
    """What a dense network's card adds: each file's outputs, what runs on the host (in no figure of
    the card), and ``onnx`` (the file and the module it holds) run in onnxruntime in an interpreter
    that cannot import this project, on a seeded image, checked and compared with the module:
    ``DenseCheckError`` if it fails or is further than ``tolerance`` (``agreement``'s units)."""
    strides, output_stride = getattr(model, "strides", None), getattr(model, "output_stride", None)
    card = {
        "task": task,
        "outputs": outputs_of(task, num_classes, strides, output_stride),
        "host": host_ops(task),
        "agreement": agreement_text(task),
        "onnx_without_project": None,
    }
    if onnx is None:
        return card
    image = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(3))
    report = check_without_project(onnx[0], onnx[1], task, num_classes, image)
    diffs = report.get("max_abs_diff", {})
    side = max(input_shape[1:])
    distances = {
        **{k: v for k, v in diffs.items() if not k.endswith("_px")},
        **{k.removesuffix("_px") + " / side": v / side for k, v in diffs.items() if k.endswith("_px")},
        "pixels_differing": report.get("pixels_differing", 0.0),
    }
    far = [f"{k} {v:.2e} beyond {tolerance}" for k, v in distances.items() if not v <= tolerance]
    if not report["ok"] or far:
        raise DenseCheckError(
            f"{onnx[0].name} fails in onnxruntime without this project: {'; '.join(report.get('problems', []) + far)}"
        )
    card["onnx_without_project"] = report
    return card
