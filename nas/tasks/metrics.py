"""The dense tasks' metrics: COCO box mAP from faster-coco-eval, and mIoU from a confusion matrix.

Detection is scored by faster-coco-eval (``COCOeval_faster``, iouType "bbox"): a maintained
re-implementation of pycocotools' COCOeval whose numbers match pycocotools' (COCO's own rules: IoU
thresholds 0.50:0.05:0.95, 101-point interpolated precision, at most 100 detections per image by
score, categories without ground truth left out of the mean) with its matching in C++. The COCO
objects are built in memory from the predictions and targets; nothing is written to disk.

Segmentation: a confusion matrix over the non-ignored pixels; IoU_c = TP / (TP + FP + FN), and
mIoU the mean over the classes that occur in the target or the prediction (a class absent from
both has no IoU and is left out, as torchmetrics' and mmseg's nan-mean do); pixel accuracy the
share of non-ignored pixels labelled right.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
import torch

from nas.tasks import IGNORE_INDEX

MAX_DETECTIONS = 100  # per image, COCO's maxDets for AP


def detection_map(predictions: Sequence[dict], targets: Sequence[dict], num_classes: int) -> dict[str, float]:
    """COCO box mAP@[.5:.95] and mAP@.5, 0-1. ``predictions``: per image {"boxes" (n, 4) xyxy,
    "scores" (n,), "labels" (n,) in 0..num_classes-1}; ``targets``: per image {"boxes", "labels"},
    same images in the same order, boxes in the same pixels."""
    from faster_coco_eval import COCO, COCOeval_faster

    if len(predictions) != len(targets):
        raise ValueError(f"predictions: {len(predictions)} images, targets {len(targets)}; give one of each per image")
    if num_classes < 1:
        raise ValueError(f"num_classes: must be >= 1, got {num_classes}")
    gt = {
        "images": [{"id": i + 1} for i in range(len(targets))],
        "categories": [{"id": c + 1, "name": str(c)} for c in range(num_classes)],
        "annotations": [],
    }
    for i, t in enumerate(targets):
        boxes, labels = _boxes(t, "boxes", f"targets[{i}]"), _ints(t, "labels", f"targets[{i}]", num_classes)
        for (x0, y0, x1, y1), c in zip(boxes.tolist(), labels.tolist(), strict=True):
            w, h = x1 - x0, y1 - y0
            gt["annotations"].append({
                "id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": c + 1,
                "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0,
            })  # fmt: skip
    if not gt["annotations"]:
        raise ValueError("targets: no ground-truth boxes in any image; mAP is undefined")
    dets = []
    for i, p in enumerate(predictions):
        where = f"predictions[{i}]"
        boxes, labels = _boxes(p, "boxes", where), _ints(p, "labels", where, num_classes)
        scores = torch.as_tensor(p["scores"], dtype=torch.float64).reshape(-1).tolist()
        if not len(scores) == len(labels) == len(boxes):
            raise ValueError(f"{where}: boxes, scores and labels differ in length")
        for (x0, y0, x1, y1), s, c in zip(boxes.tolist(), scores, labels.tolist(), strict=True):
            dets.append({"image_id": i + 1, "category_id": c + 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": s})
    with contextlib.redirect_stdout(io.StringIO()):  # the summary table is printed, not wanted here
        coco_gt = COCO(gt)
        coco_dt = coco_gt.loadRes(dets)
        ev = COCOeval_faster(coco_gt, coco_dt, iouType="bbox")
        ev.params.maxDets = [1, 10, MAX_DETECTIONS]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # stats[0]: AP@[.5:.95], stats[1]: AP@.5, both area "all" at maxDets 100.
    return {"map": max(float(ev.stats[0]), 0.0), "map50": max(float(ev.stats[1]), 0.0)}


def _boxes(d: dict, key: str, where: str) -> torch.Tensor:
    boxes = torch.as_tensor(d[key], dtype=torch.float64).reshape(-1, 4)
    if not torch.isfinite(boxes).all():
        raise ValueError(f"{where}.{key}: boxes must be finite")
    return boxes


def _ints(d: dict, key: str, where: str, num_classes: int) -> torch.Tensor:
    labels = torch.as_tensor(d[key]).reshape(-1).long()
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{where}.{key}: labels must be in 0..{num_classes - 1}")
    return labels


class SegmentationMeter:
    """Accumulates a confusion matrix over batches of class maps; ``compute`` gives mIoU and pixel
    accuracy (0-1). Target pixels equal to ``ignore_index`` count nowhere."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        if num_classes < 1:
            raise ValueError(f"num_classes: must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # rows target, columns prediction

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """``pred``: class map (B x H x W or H x W, integers); ``target``: the same shape."""
        pred, target = torch.as_tensor(pred), torch.as_tensor(target)
        if pred.shape != target.shape:
            raise ValueError(
                f"pred: shape {tuple(pred.shape)} differs from target's {tuple(target.shape)}; "
                "give class maps at the target's size (argmax the logits, resize them first)"
            )
        if pred.is_floating_point():
            raise ValueError("pred: must be a class map (integers), not logits or scores")
        pred, target = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
        keep = target != self.ignore_index
        pred, target = pred[keep], target[keep]
        k = self.num_classes
        if len(target) and (target.min() < 0 or target.max() >= k):
            raise ValueError(f"target: values must be in 0..{k - 1} or {self.ignore_index} (ignore)")
        if len(pred) and (pred.min() < 0 or pred.max() >= k):
            raise ValueError(f"pred: values must be in 0..{k - 1}")
        self.confusion += torch.bincount(target * k + pred, minlength=k * k).reshape(k, k)

    def iou(self) -> np.ndarray:
        """Per-class IoU, nan for a class in neither the targets nor the predictions."""
        c = self.confusion.double()
        tp = c.diag()
        union = c.sum(0) + c.sum(1) - tp
        return torch.where(union > 0, tp / union.clamp_min(1), torch.nan).numpy()

    def compute(self) -> dict[str, float]:
        total = int(self.confusion.sum())
        if total == 0:
            raise ValueError("no pixels counted (none given, or all ignored); mIoU is undefined")
        return {
            "miou": float(np.nanmean(self.iou())),
            "pixel_accuracy": float(self.confusion.diag().sum()) / total,
        }

    def reset(self) -> None:
        self.confusion.zero_()


__all__ = ["MAX_DETECTIONS", "SegmentationMeter", "detection_map"]
