"""Detection's training target, loss and box decoding for the dense networks' anchor-free heads.

A detection network (``search_spaces.build_model`` for a detection arch) returns one tensor per
level, ``B x (4 + 1 + K) x h x w``: channels 0:4 the raw distances (left, top, right, bottom) from
the cell's centre to the box's sides, channel 4 the raw centerness logit, channels 5: the raw
class logits. Here (FCOS, Tian et al., ICCV 2019):

- a cell's centre is ``((j + 0.5) * stride, (i + 0.5) * stride)`` in input pixels; a distance is
  ``softplus(raw) * stride`` (positive, smooth at initialisation, no exp to overflow in bfloat16);
- a cell is positive for a box when its centre lies inside the box, within ``radius`` strides of the
  box's centre (centre sampling), and the box's largest distance from it falls in the level's size
  range; a cell claimed by several boxes takes the smallest;
- the loss is torchvision's sigmoid focal loss (classes), GIoU loss (boxes, weighted by the
  centerness target) and binary cross-entropy (centerness), each divided by the positives;
- a detection's score is ``sqrt(sigmoid(class) * sigmoid(centerness))``.

``decode_dense`` is the one definition of the box decoding: ``decode`` (NMS per class, for the
metrics) and the export (``torch.export`` / ONNX, NMS on the host) both use it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms, generalized_box_iou_loss, sigmoid_focal_loss

BOX, CTR, CLS = slice(0, 4), 4, slice(5, None)  # the channels of a level's output
CENTRE_RADIUS = 1.5  # centre sampling, in strides (FCOS' 1.5)
# A level takes the boxes whose largest cell-to-side distance is in (RANGE * previous stride, RANGE *
# its stride]; the first from 0, the last without bound. FCOS uses 8 at 800 px; 2 spreads the 20-80 px
# objects of 96-128 px training images over strides 8, 16 and 32 instead of piling them on the first.
RANGE = 2.0
FOCAL_ALPHA, FOCAL_GAMMA = 0.25, 2.0


def cell_centres(h: int, w: int, stride: int, device: torch.device | None = None) -> torch.Tensor:
    """The (h * w) x 2 centres (x, y) in input pixels of a level's cells, row by row."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * stride
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)


def size_ranges(strides: Sequence[int]) -> list[tuple[float, float]]:
    """Each level's (low, high] range of a box's largest cell-to-side distance, in pixels."""
    bounds = [0.0, *(RANGE * s for s in strides[:-1]), math.inf]
    return list(itertools.pairwise(bounds))


def _check_outputs(outputs: Sequence[torch.Tensor], strides: Sequence[int]) -> int:
    if len(outputs) != len(strides) or not outputs:
        raise ValueError(f"outputs: expected one tensor per stride {tuple(strides)}, got {len(outputs)}")
    channels = {int(o.shape[1]) for o in outputs}  # int: ONNX tracing gives shapes as tensors
    if len(channels) != 1 or any(o.ndim != 4 for o in outputs) or next(iter(channels)) < 6:
        shapes = [tuple(o.shape) for o in outputs]
        raise ValueError(f"outputs: expected B x (4 + 1 + classes) x h x w per level, got {shapes}")
    return next(iter(channels)) - 5


def flatten_levels(outputs: Sequence[torch.Tensor], strides: Sequence[int]) -> tuple[torch.Tensor, ...]:
    """(raw B x N x C, cell centres N x 2, cell strides N) over every level's cells, level by level."""
    _check_outputs(outputs, strides)
    raw = torch.cat([o.flatten(2).transpose(1, 2) for o in outputs], dim=1)
    centres = torch.cat(
        [cell_centres(o.shape[2], o.shape[3], s, o.device) for o, s in zip(outputs, strides, strict=True)]
    )
    cell_strides = torch.cat(
        [
            torch.full((o.shape[2] * o.shape[3],), float(s), device=o.device)
            for o, s in zip(outputs, strides, strict=True)
        ]
    )
    return raw, centres, cell_strides


def _boxes_from(raw_box: torch.Tensor, centres: torch.Tensor, cell_strides: torch.Tensor) -> torch.Tensor:
    """xyxy boxes in pixels from raw (left, top, right, bottom) distances ``... x N x 4``."""
    d = F.softplus(raw_box.float()) * cell_strides.unsqueeze(-1)
    return torch.cat([centres - d[..., :2], centres + d[..., 2:]], dim=-1)


def decode_dense(outputs: Sequence[torch.Tensor], strides: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every cell's box and class scores: (boxes B x N x 4 xyxy input pixels, scores B x N x K in 0-1).

    No data-dependent shapes (N is the cells of every level), so it runs under ``torch.export`` and in
    ONNX; thresholds and NMS come after it (``decode``, or the host of an exported network).
    """
    raw, centres, cell_strides = flatten_levels(outputs, strides)
    boxes = _boxes_from(raw[..., BOX], centres, cell_strides)
    scores = torch.sqrt(torch.sigmoid(raw[..., CLS].float()) * torch.sigmoid(raw[..., CTR : CTR + 1].float()))
    return boxes, scores


def _image_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = (int(v) for v in image_size)
    return h, w


@torch.no_grad()
def decode(
    outputs: Sequence[torch.Tensor],
    strides: Sequence[int],
    image_size: int | Sequence[int],
    *,
    score_thresh: float = 0.05,
    iou_thresh: float = 0.6,
    max_det: int = 100,
    pre_nms: int = 1000,
) -> list[dict[str, torch.Tensor]]:
    """Detections per image: {"boxes" (n x 4 xyxy pixels, clipped to the image), "scores", "labels"
    (0..K-1)}, the ``pre_nms`` best (cell, class) pairs above ``score_thresh``, NMS per class at
    ``iou_thresh`` (``torchvision.ops.batched_nms``), the ``max_det`` best kept."""
    h, w = _image_hw(image_size)
    boxes, scores = decode_dense(outputs, strides)
    limit = torch.tensor([w, h, w, h], dtype=boxes.dtype, device=boxes.device)
    boxes = torch.minimum(boxes.clamp_min(0), limit)
    k = scores.shape[-1]
    results = []
    for img_boxes, img_scores in zip(boxes, scores, strict=True):
        flat = img_scores.reshape(-1)
        keep = torch.nonzero(flat > score_thresh).squeeze(1)
        if len(keep) > pre_nms:
            keep = keep[flat[keep].topk(pre_nms).indices]
        cell, label = keep // k, keep % k
        b, s = img_boxes[cell], flat[keep]
        kept = batched_nms(b, s, label, iou_thresh)[:max_det]
        results.append({"boxes": b[kept], "scores": s[kept], "labels": label[kept]})
    return results


def assign(
    targets: Sequence[dict[str, torch.Tensor]],
    centres: torch.Tensor,
    cell_strides: torch.Tensor,
    strides: Sequence[int],
    *,
    radius: float = CENTRE_RADIUS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FCOS targets for every cell of every image: (labels B x N, -1 for background; boxes B x N x 4
    xyxy pixels, the assigned box, zeros for background)."""
    low = torch.empty_like(cell_strides)
    high = torch.empty_like(cell_strides)
    for s, (lo, hi) in zip(strides, size_ranges(strides), strict=True):
        at = cell_strides == s
        low[at], high[at] = lo, hi
    labels, boxes = [], []
    for target in targets:
        gt = target["boxes"].to(centres.device, torch.float32).reshape(-1, 4)
        gl = target["labels"].to(centres.device).reshape(-1)
        n = len(centres)
        if len(gt) == 0:
            labels.append(torch.full((n,), -1, dtype=torch.long, device=centres.device))
            boxes.append(torch.zeros(n, 4, device=centres.device))
            continue
        x, y = centres[:, 0:1], centres[:, 1:2]  # N x 1 against M boxes
        ltrb = torch.stack([x - gt[:, 0], y - gt[:, 1], gt[:, 2] - x, gt[:, 3] - y], dim=-1)  # N x M x 4
        inside = ltrb.min(-1).values > 0
        cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2
        r = radius * cell_strides.unsqueeze(1)
        near_centre = ((x - cx).abs() < r) & ((y - cy).abs() < r)
        reach = ltrb.max(-1).values
        in_range = (reach > low.unsqueeze(1)) & (reach <= high.unsqueeze(1))
        area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])).expand(n, -1)
        area = torch.where(inside & near_centre & in_range, area, torch.full_like(area, math.inf))
        best_area, best = area.min(1)
        positive = torch.isfinite(best_area)
        labels.append(torch.where(positive, gl[best], torch.full_like(best, -1)))
        boxes.append(torch.where(positive.unsqueeze(1), gt[best], torch.zeros(n, 4, device=centres.device)))
    return torch.stack(labels), torch.stack(boxes)


def centerness(centres: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """FCOS' centerness of cells (``... x 2`` centres) in their boxes (``... x 4`` xyxy), in 0-1."""
    left, top = centres[..., 0] - boxes[..., 0], centres[..., 1] - boxes[..., 1]
    right, bottom = boxes[..., 2] - centres[..., 0], boxes[..., 3] - centres[..., 1]
    lr = torch.stack([left, right], -1).clamp_min(1e-6)
    tb = torch.stack([top, bottom], -1).clamp_min(1e-6)
    ratio = (lr.min(-1).values / lr.max(-1).values) * (tb.min(-1).values / tb.max(-1).values)
    return ratio.sqrt()


def detection_loss(
    outputs: Sequence[torch.Tensor], targets: Sequence[dict[str, torch.Tensor]], strides: Sequence[int]
) -> tuple[torch.Tensor, dict[str, float]]:
    """(total loss, its parts as floats) of a batch's outputs against its targets ({"boxes" xyxy pixels,
    "labels" 0..K-1} per image)."""
    k = _check_outputs(outputs, strides)
    if len(targets) != outputs[0].shape[0]:
        raise ValueError(f"targets: expected one per image ({outputs[0].shape[0]}), got {len(targets)}")
    raw, centres, cell_strides = flatten_levels(outputs, strides)
    raw = raw.float()
    labels, gt_boxes = assign(targets, centres, cell_strides, strides)
    positive = labels >= 0
    n_pos = max(1.0, float(positive.sum()))
    one_hot = torch.zeros_like(raw[..., CLS])
    one_hot[positive] = F.one_hot(labels[positive], k).to(one_hot.dtype)
    cls = sigmoid_focal_loss(raw[..., CLS], one_hot, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA, reduction="sum") / n_pos
    if not bool(positive.any()):  # nothing to regress: keep the graph whole with zero box and centre losses
        zero = raw[..., :5].sum() * 0.0
        return cls + zero, {"cls": cls.item(), "box": 0.0, "ctr": 0.0}
    pos_centres = centres.expand(len(raw), -1, -1)[positive]
    pos_boxes = _boxes_from(raw[..., BOX][positive], pos_centres, cell_strides.expand(len(raw), -1)[positive])
    ctr_target = centerness(pos_centres, gt_boxes[positive])
    giou = generalized_box_iou_loss(pos_boxes, gt_boxes[positive], reduction="none")
    box = (giou * ctr_target).sum() / ctr_target.sum().clamp_min(1e-6)
    ctr = F.binary_cross_entropy_with_logits(raw[..., CTR][positive], ctr_target, reduction="sum") / n_pos
    total = cls + box + ctr
    return total, {"cls": cls.item(), "box": box.item(), "ctr": ctr.item()}
