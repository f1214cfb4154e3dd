"""Reference networks as points of the space.

The MetaFormer-family presets have exactly the parameter count of timm's model of the same name
(1000 classes, 224x224); the Swin-, Mixer- and ResMLP-like ones are within 1 % of
``swin_tiny_patch4_window7_224``, ``mixer_b16_224`` and ``resmlp_12_224`` (they use a conv for
patch merging and LayerNorm for ResMLP's Affine). ``tests/test_presets.py`` checks both.
"""

from __future__ import annotations

from typing import Any

from search_spaces._arch import ArchConfig, StageConfig
from search_spaces._registry import Registry

PRESETS: Registry[Any] = Registry("preset")


def get_preset(name: str) -> ArchConfig:
    """The ArchConfig of a registered preset, e.g. ``get_preset("caformer_s18")``."""
    return PRESETS.get(name)()


def _stages(mixers, depths, dims, **common) -> list[StageConfig]:
    if isinstance(mixers, str):
        mixers = [mixers] * len(depths)
    res_scale = common.pop("res_scale", [False] * len(depths))
    return [
        StageConfig(mixer=m, depth=d, dim=c, res_scale=r, **common)
        for m, d, c, r in zip(mixers, depths, dims, res_scale, strict=True)
    ]


def _poolformer_v1(depths, dims, layer_scale) -> ArchConfig:
    # MetaFormer paper: GroupNorm(1), GELU MLPs with biases, LayerScale, no stem/downsample norm.
    return ArchConfig(
        stages=_stages("pooling", depths, dims),
        downsample_norm=None,
        norm="groupnorm1",
        act="gelu",
        bias=True,
        layer_scale=layer_scale,
    )


def _metaformer_v2(mixers, depths, dims, norm, head) -> ArchConfig:
    # MetaFormer Baselines: bias-free norms and MLPs, StarReLU, ResScale on the last two stages.
    return ArchConfig(
        stages=_stages(mixers, depths, dims, res_scale=[False, False, True, True]),
        downsample_norm="layernorm_nobias",
        norm=norm,
        act="starrelu",
        bias=False,
        head=head,
    )


@PRESETS.register
def poolformer_s12() -> ArchConfig:
    return _poolformer_v1(depths=[2, 2, 6, 2], dims=[64, 128, 320, 512], layer_scale=1e-5)


@PRESETS.register
def poolformer_s24() -> ArchConfig:
    return _poolformer_v1(depths=[4, 4, 12, 4], dims=[64, 128, 320, 512], layer_scale=1e-5)


@PRESETS.register
def poolformer_s36() -> ArchConfig:
    return _poolformer_v1(depths=[6, 6, 18, 6], dims=[64, 128, 320, 512], layer_scale=1e-6)


@PRESETS.register
def poolformer_m36() -> ArchConfig:
    return _poolformer_v1(depths=[6, 6, 18, 6], dims=[96, 192, 384, 768], layer_scale=1e-6)


@PRESETS.register
def poolformerv2_s12() -> ArchConfig:
    return _metaformer_v2("pooling", [2, 2, 6, 2], [64, 128, 320, 512], norm="groupnorm1_nobias", head="linear")


@PRESETS.register
def convformer_s18() -> ArchConfig:
    return _metaformer_v2("sepconv", [3, 3, 9, 3], [64, 128, 320, 512], norm="layernorm_nobias", head="mlp")


@PRESETS.register
def caformer_s18() -> ArchConfig:
    mixers = ["sepconv", "sepconv", "attention", "attention"]
    return _metaformer_v2(mixers, [3, 3, 9, 3], [64, 128, 320, 512], norm="layernorm_nobias", head="mlp")


@PRESETS.register
def swin_tiny_like() -> ArchConfig:
    # Swin-T: patch-4 stem + LayerNorm, window 7 (shifted on odd blocks), head_dim 32, 2x2 merging.
    return ArchConfig(
        stem="patch",
        downsample="patch",
        downsample_norm="layernorm",
        stages=_stages("window_attention", [2, 2, 6, 2], [96, 192, 384, 768], window_size=7, head_dim=32),
        norm="layernorm",
        act="gelu",
        bias=True,
    )


@PRESETS.register
def mixer_b16_like() -> ArchConfig:
    # MLP-Mixer B/16: isotropic, 12 blocks of 768, token MLP hidden 384 (0.5 x dim).
    return ArchConfig(
        stem="patch",
        stem_stride=16,
        stages=_stages("spatial_mlp", [12], [768], token_mlp_ratio=0.5),
        norm="layernorm",
        act="gelu",
        bias=True,
    )


@PRESETS.register
def resmlp_12_like() -> ArchConfig:
    # ResMLP-12: isotropic, 12 blocks of 384, one Linear over the tokens, LayerScale 0.1.
    return ArchConfig(
        stem="patch",
        stem_stride=16,
        stages=_stages("spatial_mlp", [12], [384], token_mlp_ratio=0.0),
        norm="layernorm",
        act="gelu",
        bias=True,
        layer_scale=0.1,
    )


# timm's model of the same workload, for the parity tests and the agreement script.
TIMM_REFERENCE: dict[str, tuple[str, float]] = {  # preset -> (timm model, relative tolerance)
    **{name: (name, 0.0) for name in PRESETS if not name.endswith("_like")},
    "swin_tiny_like": ("swin_tiny_patch4_window7_224", 0.01),
    "mixer_b16_like": ("mixer_b16_224", 0.01),
    "resmlp_12_like": ("resmlp_12_224", 0.01),
}
