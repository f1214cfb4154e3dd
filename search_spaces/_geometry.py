"""Shapes the builder and the analytical lowering must agree on, in one place.

Torch-free: ``lower`` uses these without building anything.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from search_spaces._arch import MIN_DETECTION_STRIDE, ArchConfig, StageConfig


class ConvGeometry(NamedTuple):
    kernel: int
    stride: int
    padding: int


class WindowGeometry(NamedTuple):
    window: tuple[int, int]  # clamped to the feature map, as timm's Swin does
    shift: tuple[int, int]  # 0 where a window already covers the map
    padded: tuple[int, int]  # the map padded up to whole windows

    @property
    def num_windows(self) -> int:
        return (self.padded[0] // self.window[0]) * (self.padded[1] // self.window[1])

    @property
    def tokens(self) -> int:
        return self.window[0] * self.window[1]


def conv_out(size: int, g: ConvGeometry) -> int:
    return (size + 2 * g.padding - g.kernel) // g.stride + 1


def stem_geometry(arch: ArchConfig) -> ConvGeometry:
    s = arch.stem_stride
    # "conv" generalises MetaFormer's 7x7/4 pad 2 stem: kernel stride+3 keeps the overlap at any stride.
    return ConvGeometry(s + 3, s, 2) if arch.stem == "conv" else ConvGeometry(s, s, 0)


def downsample_geometry(arch: ArchConfig, size: tuple[int, int]) -> ConvGeometry:
    """The stride-2 conv in front of a stage, for an input map of ``size``."""
    if arch.downsample == "conv":
        return ConvGeometry(3, 2, 1)
    # A 2x2 patch merge of a 1-pixel map would output nothing: pad it so every config builds.
    return ConvGeometry(2, 2, 0 if min(size) >= 2 else 1)


def stage_feature_sizes(arch: ArchConfig, img_size: tuple[int, int]) -> list[tuple[int, int]]:
    """The (H, W) at which each stage's blocks run."""
    g = stem_geometry(arch)
    h, w = conv_out(img_size[0], g), conv_out(img_size[1], g)
    if h < 1 or w < 1:
        raise ValueError(
            f"input_shape: {img_size[0]}x{img_size[1]} is too small for the stem "
            f"({g.kernel}x{g.kernel}, stride {g.stride}); use a larger input"
        )
    sizes = [(h, w)]
    for _ in arch.stages[1:]:
        d = downsample_geometry(arch, (h, w))
        h, w = conv_out(h, d), conv_out(w, d)
        sizes.append((h, w))
    return sizes


def window_geometry(stage: StageConfig, size: tuple[int, int], block_index: int) -> WindowGeometry:
    assert stage.window_size is not None
    window = (min(stage.window_size, size[0]), min(stage.window_size, size[1]))
    shifted = block_index % 2 == 1  # Swin: shifted windows on alternate blocks
    shift = tuple(w // 2 if shifted and f > stage.window_size else 0 for f, w in zip(size, window, strict=True))
    padded = tuple(math.ceil(f / w) * w for f, w in zip(size, window, strict=True))
    return WindowGeometry(window, shift, padded)  # type: ignore[arg-type]


def make_divisible(v: float, divisor: int = 8) -> int:
    """timm's rounding of MBConv hidden widths (timm.layers.make_divisible, round_limit 0.9)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def mbconv_hidden(stage: StageConfig) -> int:
    return make_divisible(stage.dim * stage.mlp_ratio)


def mlp_hidden(stage: StageConfig) -> int:
    return int(stage.mlp_ratio * stage.dim)


def token_mlp_hidden(stage: StageConfig) -> int:
    """Hidden width of a spatial-MLP token mixer; 0 means a single Linear over the tokens."""
    return int((stage.token_mlp_ratio or 0.0) * stage.dim)


BOX_CHANNELS = 4 + 1  # a detection level's l, t, r, b distances and centerness logit, before the class logits


def dense_levels(arch: ArchConfig) -> tuple[int, ...]:
    """The stages whose outputs a dense network's neck reads: every stage for segmentation (its
    logits come out at the finest, stride 4), those at strides >= 8 for detection (8, 16, 32 in the
    shipped spaces; a 2-stage backbone gives the one level at stride 8)."""
    strides = arch.stage_strides
    if arch.task == "detection":
        return tuple(i for i, s in enumerate(strides) if s >= MIN_DETECTION_STRIDE)
    return tuple(range(len(strides)))


def bottom_up_geometry() -> ConvGeometry:
    """PAN's stride-2 conv from one level to the next coarser one."""
    return ConvGeometry(3, 2, 1)
