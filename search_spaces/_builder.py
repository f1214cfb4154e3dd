"""ArchConfig -> nn.Module, from timm's layers.

Module names are the contract with the analytical lowering (``_lower.py``): ``stem.conv``,
``stages.{i}.downsample.{norm,conv}``, ``stages.{i}.blocks.{j}.{norm1,mixer,ls1,rs1,norm2,mlp,...}``,
``head.{norm,fc}``; a dense network's ``neck.*`` and ``head.*`` are in ``_dense.py``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models._efficientnet_blocks import InvertedResidual
from timm.models.metaformer import MlpHead, Scale
from torch import nn

from search_spaces._arch import ArchConfig, StageConfig
from search_spaces._geometry import (
    downsample_geometry,
    mlp_hidden,
    stage_feature_sizes,
    stem_geometry,
)
from search_spaces._layers import ACT_LAYERS, make_mixer, make_norm


class MetaFormerBlock(nn.Module):
    """norm -> token mixer -> residual, norm -> MLP -> residual (NCHW or NHWC by the mixer)."""

    def __init__(
        self, stage: StageConfig, arch: ArchConfig, size: tuple[int, int], index: int, drop_path: float
    ) -> None:
        super().__init__()
        dim, nchw = stage.dim, not stage.channels_last
        layout = "nchw" if nchw else "nhwc"
        self.norm1 = make_norm(arch.norm, dim, layout)
        self.mixer = make_mixer(stage, arch, size, index)
        self.ls1 = _scale(dim, arch.layer_scale, nchw)
        self.rs1 = _scale(dim, 1.0 if stage.res_scale else None, nchw)
        self.norm2 = make_norm(arch.norm, dim, layout)
        self.mlp = Mlp(dim, mlp_hidden(stage), act_layer=ACT_LAYERS[arch.act], bias=arch.bias, use_conv=nchw)
        self.ls2 = _scale(dim, arch.layer_scale, nchw)
        self.rs2 = _scale(dim, 1.0 if stage.res_scale else None, nchw)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.rs1(x) + self.drop_path(self.ls1(self.mixer(self.norm1(x))))
        return self.rs2(x) + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


def _scale(dim: int, init: float | None, nchw: bool) -> nn.Module:
    return Scale(dim, init_value=init, use_nchw=nchw) if init is not None else nn.Identity()


def _mbconv_block(stage: StageConfig, arch: ArchConfig, drop_path: float) -> nn.Module:
    return InvertedResidual(
        stage.dim,
        stage.dim,
        dw_kernel_size=stage.kernel_size,
        exp_ratio=stage.mlp_ratio,
        act_layer=ACT_LAYERS[arch.act],
        drop_path_rate=drop_path,
    )


class MetaFormerStage(nn.Module):
    def __init__(
        self,
        stage: StageConfig,
        arch: ArchConfig,
        *,
        in_dim: int,
        in_size: tuple[int, int],
        size: tuple[int, int],
        first: bool,
        drop_paths: list[float],
    ) -> None:
        super().__init__()
        if first:  # the stem already brought the map to this stage's size and width
            self.downsample: nn.Module = nn.Identity()
        else:
            g = downsample_geometry(arch, in_size)
            self.downsample = nn.Sequential(
                OrderedDict(
                    norm=make_norm(arch.downsample_norm, in_dim, "nchw"),
                    conv=nn.Conv2d(in_dim, stage.dim, g.kernel, stride=g.stride, padding=g.padding),
                )
            )
        self.channels_last = stage.channels_last
        if stage.mixer == "mbconv":
            blocks = [_mbconv_block(stage, arch, dp) for dp in drop_paths]
        else:
            blocks = [MetaFormerBlock(stage, arch, size, j, dp) for j, dp in enumerate(drop_paths)]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.channels_last:
            return self.blocks(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.blocks(x)


class MetaFormerTrunk(nn.Module):
    """The stem and stages every network of the space shares; its stage outputs are the
    multi-scale features a dense head reads (``feature_info`` as timm's ``features_only`` gives)."""

    def _init_trunk(self, arch: ArchConfig, *, in_chans: int, img_size: tuple[int, int], drop_path_rate: float) -> int:
        """Build ``stem`` and ``stages`` (in that order: the state_dict's keys); return the last width."""
        sizes = stage_feature_sizes(arch, img_size)
        g = stem_geometry(arch)
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_chans, arch.stages[0].dim, g.kernel, stride=g.stride, padding=g.padding),
                norm=make_norm(arch.downsample_norm, arch.stages[0].dim, "nchw"),
            )
        )
        depths = [s.depth for s in arch.stages]
        n = sum(depths)  # stochastic depth grows linearly over the blocks
        rates = [drop_path_rate * j / max(n - 1, 1) for j in range(n)]
        stages, in_dim, in_size = [], arch.stages[0].dim, sizes[0]
        for i, (stage, size) in enumerate(zip(arch.stages, sizes, strict=True)):
            drop_paths = rates[sum(depths[:i]) : sum(depths[: i + 1])]
            stages.append(
                MetaFormerStage(
                    stage, arch, in_dim=in_dim, in_size=in_size, size=size, first=i == 0, drop_paths=drop_paths
                )
            )
            in_dim, in_size = stage.dim, size
        self.stages = nn.Sequential(*stages)
        self.feature_info = [
            {"num_chs": stage.dim, "reduction": stride, "module": f"stages.{i}"}
            for i, (stage, stride) in enumerate(zip(arch.stages, arch.stage_strides, strict=True))
        ]
        return in_dim

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stage's output, NCHW, at the strides of ``feature_info``."""
        x, features = self.stem(x), []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class MetaFormerNet(MetaFormerTrunk):
    """A classifier of the MetaFormer search space. ``arch`` is kept for export and reporting."""

    task = "classification"

    def __init__(
        self,
        arch: ArchConfig,
        *,
        num_classes: int = 1000,
        in_chans: int = 3,
        img_size: int | tuple[int, int] = 224,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.arch, self.num_classes = arch, num_classes
        in_dim = self._init_trunk(arch, in_chans=in_chans, img_size=img_size, drop_path_rate=drop_path_rate)
        self.num_features = in_dim
        self.head = nn.Sequential(
            OrderedDict(
                norm=make_norm(arch.head_norm, in_dim, "vector"),
                fc=_classifier(arch, in_dim, num_classes),
            )
        )
        self.apply(_init_weights)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x).mean((2, 3)))


def _classifier(arch: ArchConfig, dim: int, num_classes: int) -> nn.Module:
    if num_classes <= 0:
        return nn.Identity()
    return MlpHead(dim, num_classes) if arch.head == "mlp" else nn.Linear(dim, num_classes)


def _init_weights(m: nn.Module) -> None:
    # timm's MetaFormer initialisation; a meta-device model has no values to set (and the truncated
    # normal's clamp runs there through torch's slow reference ops: two thirds of a meta build).
    if isinstance(m, (nn.Conv2d, nn.Linear)) and not m.weight.is_meta:
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def build_model(
    arch: ArchConfig,
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    img_size: int | tuple[int, int] = 224,
    drop_path_rate: float = 0.0,
) -> nn.Module:
    """Build ``arch`` as a freshly initialised ``nn.Module``: a ``MetaFormerNet`` classifier, or
    for a detection / segmentation arch a ``DenseNet`` (``search_spaces._dense``), whose
    ``num_classes`` are the object classes (detection) or the classes with background (segmentation).

    ``img_size`` fixes what depends on the map size (the spatial MLP's token count, the clamped
    window); every other mixer runs at any resolution. Build under ``torch.device("meta")`` to get
    shapes and parameter counts without allocating weights.
    """
    if not isinstance(arch, ArchConfig):
        raise TypeError(f"arch: expected an ArchConfig, got {type(arch).__name__}; see ArchConfig.model_validate")
    if num_classes < 0:
        raise ValueError(f"num_classes: must be >= 0 (0: no classifier, features only); got {num_classes}")
    if in_chans < 1:
        raise ValueError(f"in_chans: must be >= 1; got {in_chans}")
    if arch.task != "classification":
        from search_spaces._dense import DenseNet

        return DenseNet(
            arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size, drop_path_rate=drop_path_rate
        )
    return MetaFormerNet(
        arch, num_classes=num_classes, in_chans=in_chans, img_size=img_size, drop_path_rate=drop_path_rate
    )
