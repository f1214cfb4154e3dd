"""Dense networks: the space's backbone, a neck over its stage outputs, and a detection or
segmentation head, from torchvision's conv-BN-ReLU blocks and nearest resizing (ops the chip runs).

Output contract (``nas.tasks`` decodes, trains and exports against it):

- detection: a list, one tensor per level (``model.strides``), each ``B x (4 + 1 + K) x h x w``:
  raw box distances (left, top, right, bottom), a raw centerness logit, raw class logits whose
  bias starts at FCOS' prior.
- segmentation: ``B x K x H/s x W/s`` logits, ``s = model.output_stride`` (the finest stage's).

Module names are the contract with the analytical lowering (``_lower_dense.py``): ``neck.lateral.{i}``,
``neck.top_down.{i}``, ``neck.down.{i}``, ``neck.bottom_up.{i}``, ``head.*``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation

from search_spaces._arch import ArchConfig, DetectionHeadConfig, NeckConfig, SegmentationHeadConfig
from search_spaces._builder import MetaFormerTrunk, _init_weights
from search_spaces._geometry import BOX_CHANNELS, bottom_up_geometry, dense_levels

CLASS_PRIOR = 0.01  # FCOS / RetinaNet: every location starts as background with probability 0.99


def conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> Conv2dNormActivation:
    """Conv (no bias) -> BatchNorm -> ReLU; the padding keeps the map (or halves it at stride 2)."""
    return Conv2dNormActivation(cin, cout, kernel, stride=stride, activation_layer=nn.ReLU)


def resize_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


def _tower(width: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*(conv_bn_relu(width, width, 3) for _ in range(depth)))


class FeaturePyramid(nn.Module):
    """``none``: the stage outputs as they are; ``fpn``: 1x1 laterals, top-down nearest upsampling
    and adds, a 3x3 tower per level; ``pan``: FPN, then bottom-up stride-2 convs and adds, a tower
    per level again (PANet / YOLOv5-v8's neck, with adds for concats)."""

    def __init__(self, config: NeckConfig, in_channels: list[int]) -> None:
        super().__init__()
        self.kind = config.kind
        if self.kind == "none":
            self.out_channels = list(in_channels)
            return
        w, d = config.width, config.depth
        self.out_channels = [w] * len(in_channels)
        self.lateral = nn.ModuleList(conv_bn_relu(c, w, 1) for c in in_channels)
        self.top_down = nn.ModuleList(_tower(w, d) for _ in in_channels)
        if self.kind == "pan":
            g = bottom_up_geometry()
            self.down = nn.ModuleList(conv_bn_relu(w, w, g.kernel, g.stride) for _ in in_channels[1:])
            self.bottom_up = nn.ModuleList(_tower(w, d) for _ in in_channels[1:])

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.kind == "none":
            return features
        laterals = [conv(f) for conv, f in zip(self.lateral, features, strict=True)]
        out = [self.top_down[-1](laterals[-1])]
        for i in range(len(laterals) - 2, -1, -1):
            out.insert(0, self.top_down[i](laterals[i] + resize_to(out[0], laterals[i])))
        if self.kind == "pan":
            for i in range(1, len(out)):
                down = self.down[i - 1](out[i - 1])
                if down.shape[-2:] != out[i].shape[-2:]:  # a 2x2 patch downsampling floored an odd map
                    down = resize_to(down, out[i])
                out[i] = self.bottom_up[i - 1](out[i] + down)
        return out


class DetectionHead(nn.Module):
    """Anchor-free and decoupled (YOLOX / YOLOv8): per level (weights not shared, so levels may
    differ in width) a 1x1 stem, a class tower and a box tower; 1x1 predictors."""

    def __init__(self, config: DetectionHeadConfig, in_channels: list[int], num_classes: int) -> None:
        super().__init__()
        w, d = config.width, config.depth
        self.stems = nn.ModuleList(conv_bn_relu(c, w, 1) for c in in_channels)
        self.cls_towers = nn.ModuleList(_tower(w, d) for _ in in_channels)
        self.box_towers = nn.ModuleList(_tower(w, d) for _ in in_channels)
        self.cls_preds = nn.ModuleList(nn.Conv2d(w, num_classes, 1) for _ in in_channels)
        self.box_preds = nn.ModuleList(nn.Conv2d(w, BOX_CHANNELS, 1) for _ in in_channels)

    def reset_prior(self) -> None:
        for conv in self.cls_preds:
            nn.init.constant_(conv.bias, -math.log((1 - CLASS_PRIOR) / CLASS_PRIOR))
        for conv in self.box_preds:
            nn.init.zeros_(conv.bias)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        outputs = []
        for i, f in enumerate(features):
            x = self.stems[i](f)
            box = self.box_preds[i](self.box_towers[i](x))
            cls = self.cls_preds[i](self.cls_towers[i](x))
            outputs.append(torch.cat([box, cls], dim=1))
        return outputs


class SegmentationHead(nn.Module):
    """Class logits at the finest level's stride. ``fpn_fuse``: per level a 3x3 conv-BN-ReLU,
    upsample, sum, a 3x3 conv-BN-ReLU; ``mlp`` (SegFormer): per level a 1x1 projection, upsample,
    concat, a 1x1 conv-BN-ReLU; then a 1x1 classifier."""

    def __init__(self, config: SegmentationHeadConfig, in_channels: list[int], num_classes: int) -> None:
        super().__init__()
        self.kind, w = config.kind, config.width
        if self.kind == "fpn_fuse":
            self.proj = nn.ModuleList(conv_bn_relu(c, w, 3) for c in in_channels)
            self.fuse = conv_bn_relu(w, w, 3)
        else:
            self.proj = nn.ModuleList(nn.Conv2d(c, w, 1) for c in in_channels)
            self.fuse = conv_bn_relu(w * len(in_channels), w, 1)
        self.classifier = nn.Conv2d(w, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        finest = self.proj[0](features[0])
        rest = [resize_to(proj(f), finest) for proj, f in zip(self.proj[1:], features[1:], strict=True)]
        if self.kind == "fpn_fuse":
            x = finest
            for r in rest:
                x = x + r
        else:
            x = torch.cat([finest, *rest], dim=1)
        return self.classifier(self.fuse(x))


class DenseNet(MetaFormerTrunk):
    """A detection or segmentation network of the space: trunk -> neck -> head (see the module's
    output contract). ``arch`` is kept for export and reporting."""

    def __init__(
        self,
        arch: ArchConfig,
        *,
        num_classes: int,
        in_chans: int = 3,
        img_size: int | tuple[int, int] = 224,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if arch.task == "classification":
            raise ValueError("arch: has no neck and task head; build a classifier with build_model")
        if num_classes < 1:
            raise ValueError(f"num_classes: a {arch.task} network needs >= 1 class; got {num_classes}")
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.arch, self.num_classes, self.task = arch, num_classes, arch.task
        self._init_trunk(arch, in_chans=in_chans, img_size=img_size, drop_path_rate=drop_path_rate)
        self.levels = dense_levels(arch)
        level_strides = tuple(arch.stage_strides[i] for i in self.levels)
        self.neck = FeaturePyramid(arch.neck, [arch.stages[i].dim for i in self.levels])
        if arch.task == "detection":
            self.head: nn.Module = DetectionHead(arch.task_head, self.neck.out_channels, num_classes)
            self.strides = level_strides
        else:
            self.head = SegmentationHead(arch.task_head, self.neck.out_channels, num_classes)
            self.output_stride = level_strides[0]
        self.apply(_init_weights)
        if isinstance(self.head, DetectionHead):
            self.head.reset_prior()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        features = self.forward_stages(x)
        return self.head(self.neck([features[i] for i in self.levels]))
