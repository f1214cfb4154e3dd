"""Analytical lowering of a dense network's neck and head (``_dense.py``), record for record what
``trace`` sees of the built modules: conv -> batchnorm -> relu blocks, nearest resizes, adds and
concats (RESHAPE copies)."""

from __future__ import annotations

from hwmodels import OpKind
from search_spaces._arch import ArchConfig, DetectionHeadConfig, NeckConfig, SegmentationHeadConfig
from search_spaces._geometry import BOX_CHANNELS, ConvGeometry, bottom_up_geometry, dense_levels
from search_spaces._lower import _Emitter

Feature = tuple[int, tuple[int, int]]  # channels, (H, W)
_POINTWISE, _SPATIAL = ConvGeometry(1, 1, 0), ConvGeometry(3, 1, 1)


def lower_dense(e: _Emitter, arch: ArchConfig, stages: list[Feature], num_classes: int) -> None:
    if num_classes < 1:
        raise ValueError(f"num_classes: a {arch.task} network needs >= 1 class; got {num_classes}")
    features = _neck(e, arch.neck, [stages[i] for i in dense_levels(arch)])
    if isinstance(arch.task_head, DetectionHeadConfig):
        _detection_head(e, arch.task_head, features, num_classes)
    else:
        _segmentation_head(e, arch.task_head, features, num_classes)


def _conv_bn_relu(e: _Emitter, name: str, cin: int, cout: int, size: tuple[int, int], g: ConvGeometry) -> Feature:
    size = e.conv(f"{name}.0", cin, cout, size, g, bias=False)
    e.norm(f"{name}.1", "batchnorm", (cout, *size), cout)
    e.act(f"{name}.2", "relu", (cout, *size))
    return cout, size


def _tower(e: _Emitter, name: str, f: Feature, depth: int) -> Feature:
    for j in range(depth):
        f = _conv_bn_relu(e, f"{name}.{j}", f[0], f[0], f[1], _SPATIAL)
    return f


def _resize(e: _Emitter, name: str, f: Feature, size: tuple[int, int]) -> Feature:
    e._add(name, OpKind.RESIZE, (f[0], *f[1]), (f[0], *size), "upsample_nearest2d")
    return f[0], size


def _add(e: _Emitter, name: str, f: Feature) -> None:
    e.elementwise(name, OpKind.ADD, (f[0], *f[1]), "add", inputs=2)


def _concat(e: _Emitter, name: str, parts: list[Feature]) -> Feature:
    size = parts[0][1]
    channels = sum(c for c, _ in parts)
    e._add(name, OpKind.RESHAPE, (parts[0][0], *size), (channels, *size), "cat", act_in=channels * size[0] * size[1])
    return channels, size


def _neck(e: _Emitter, neck: NeckConfig, features: list[Feature]) -> list[Feature]:
    if neck.kind == "none":
        return features
    w, d = neck.width, neck.depth
    laterals = [_conv_bn_relu(e, f"neck.lateral.{i}", c, w, s, _POINTWISE) for i, (c, s) in enumerate(features)]
    out = [_tower(e, f"neck.top_down.{len(laterals) - 1}", laterals[-1], d)]
    for i in range(len(laterals) - 2, -1, -1):
        _resize(e, f"neck.top_down.{i}:resize", out[0], laterals[i][1])
        _add(e, f"neck.top_down.{i}:add", laterals[i])
        out.insert(0, _tower(e, f"neck.top_down.{i}", laterals[i], d))
    if neck.kind == "pan":
        g = bottom_up_geometry()
        for i in range(1, len(out)):
            down = _conv_bn_relu(e, f"neck.down.{i - 1}", w, w, out[i - 1][1], g)
            if down[1] != out[i][1]:  # a 2x2 patch downsampling floored an odd map
                _resize(e, f"neck.down.{i - 1}:resize", down, out[i][1])
            _add(e, f"neck.bottom_up.{i - 1}:add", out[i])
            out[i] = _tower(e, f"neck.bottom_up.{i - 1}", out[i], d)
    return out


def _detection_head(e: _Emitter, head: DetectionHeadConfig, features: list[Feature], num_classes: int) -> None:
    for i, (c, size) in enumerate(features):
        x = _conv_bn_relu(e, f"head.stems.{i}", c, head.width, size, _POINTWISE)
        box = _tower(e, f"head.box_towers.{i}", x, head.depth)
        e.conv(f"head.box_preds.{i}", box[0], BOX_CHANNELS, size, _POINTWISE)
        cls = _tower(e, f"head.cls_towers.{i}", x, head.depth)
        e.conv(f"head.cls_preds.{i}", cls[0], num_classes, size, _POINTWISE)
        _concat(e, f"head.level{i}:cat", [(BOX_CHANNELS, size), (num_classes, size)])


def _segmentation_head(e: _Emitter, head: SegmentationHeadConfig, features: list[Feature], num_classes: int) -> None:
    w, finest = head.width, features[0][1]
    fused = head.kind == "fpn_fuse"
    parts = []
    for i, (c, size) in enumerate(features):
        if fused:
            f = _conv_bn_relu(e, f"head.proj.{i}", c, w, size, _SPATIAL)
        else:
            e.conv(f"head.proj.{i}", c, w, size, _POINTWISE)
            f = (w, size)
        parts.append(f if i == 0 else _resize(e, f"head.proj.{i}:resize", f, finest))
    if fused:
        for i in range(1, len(parts)):
            _add(e, f"head:add{i}", parts[0])
        x = _conv_bn_relu(e, "head.fuse", w, w, finest, _SPATIAL)
    else:
        x = _conv_bn_relu(e, "head.fuse", _concat(e, "head:cat", parts)[0], w, finest, _POINTWISE)
    e.conv("head.classifier", x[0], num_classes, finest, _POINTWISE)
