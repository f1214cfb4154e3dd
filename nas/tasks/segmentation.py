"""Semantic segmentation's loss and prediction for the dense networks' segmentation heads.

A segmentation network returns ``B x K x H/s x W/s`` logits (``model.output_stride`` = s); classes
include the background (class 0) and mask value ``IGNORE`` (255) marks pixels that count nowhere.
Both the loss and the prediction upsample the logits bilinearly to the mask's size first, so the
network is judged at the resolution of its labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from nas.tasks import IGNORE_INDEX

IGNORE = IGNORE_INDEX  # nas.tasks


def _hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = (int(v) for v in size)
    return h, w


def upsample(logits: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """``logits`` (B x K x h x w) bilinearly resized to ``size`` (an int or (H, W))."""
    if logits.ndim != 4:
        raise ValueError(f"logits: expected B x classes x h x w, got shape {tuple(logits.shape)}")
    hw = _hw(size)
    if tuple(logits.shape[-2:]) == hw:
        return logits
    return F.interpolate(logits, size=hw, mode="bilinear", align_corners=False)


def segmentation_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the upsampled logits against ``masks`` (B x H x W class indices, 255 ignored)."""
    if masks.ndim != 3 or masks.shape[0] != logits.shape[0]:
        raise ValueError(f"masks: expected {logits.shape[0]} x H x W class indices, got shape {tuple(masks.shape)}")
    return F.cross_entropy(upsample(logits.float(), masks.shape[-2:]), masks.long(), ignore_index=IGNORE)


@torch.no_grad()
def predict(logits: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """The B x H x W class map (int64) of ``logits`` upsampled to ``size``."""
    return upsample(logits.float(), size).argmax(1)
