"""Torch layers the builder needs beyond what timm has: norm/act factories and the token mixers
timm's MetaFormer cannot express (window attention, spatial MLP, attention over an NHWC map).

Everything reusable comes from timm (``Pooling``, ``SepConv``, ``Attention``, ``WindowAttention``,
the MetaFormer norms, ``StarReLU``); this module only adapts layouts and options.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from timm.layers import GroupNorm1, LayerNorm, LayerNorm2d
from timm.models.metaformer import (
    Attention,
    GroupNorm1NoBias,
    LayerNorm2dNoBias,
    LayerNormNoBias,
    Pooling,
    SepConv,
    StarReLU,
)
from timm.models.swin_transformer import WindowAttention, window_partition, window_reverse
from torch import nn

from search_spaces._arch import ArchConfig, StageConfig
from search_spaces._geometry import WindowGeometry, token_mlp_hidden, window_geometry

Layout = Literal["nchw", "nhwc", "vector"]

ACT_LAYERS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "starrelu": StarReLU, "relu": nn.ReLU}


class ChannelsFirst(nn.Module):
    """Runs an NCHW-only norm (group / batch norm) on an NHWC map."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def make_norm(kind: str | None, dim: int, layout: Layout) -> nn.Module:
    if kind is None:
        return nn.Identity()
    if kind in ("layernorm", "layernorm_nobias"):
        bias = kind == "layernorm"
        if layout == "nchw":
            return LayerNorm2d(dim) if bias else LayerNorm2dNoBias(dim)
        return LayerNorm(dim) if bias else LayerNormNoBias(dim)
    if kind in ("groupnorm1", "groupnorm1_nobias"):
        norm: nn.Module = GroupNorm1(dim) if kind == "groupnorm1" else GroupNorm1NoBias(dim)
    elif kind == "batchnorm":
        norm = nn.BatchNorm1d(dim) if layout == "vector" else nn.BatchNorm2d(dim)
    else:
        raise ValueError(f"norm: unknown {kind!r}")
    return ChannelsFirst(norm) if layout == "nhwc" else norm


class TokenAttention(nn.Module):
    """timm's MetaFormer ``Attention`` (global multi-head self-attention) on an NHWC map."""

    def __init__(self, stage: StageConfig, arch: ArchConfig) -> None:
        super().__init__()
        self.attn = Attention(stage.dim, head_dim=stage.head_dim, qkv_bias=arch.bias, proj_bias=arch.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        return self.attn(x.reshape(B, H * W, C)).reshape(B, H, W, C)


class WindowAttentionMixer(nn.Module):
    """Swin's (shifted) window attention on an NHWC map, reusing timm's ``WindowAttention``.

    The window is clamped to the map it was built for; any other map is padded up to whole windows
    (as the original Swin does), so the module runs at any resolution.
    """

    def __init__(self, stage: StageConfig, arch: ArchConfig, size: tuple[int, int], block_index: int) -> None:
        super().__init__()
        self.geometry: WindowGeometry = window_geometry(stage, size, block_index)
        self.attn = WindowAttention(
            stage.dim,
            num_heads=stage.num_heads,
            head_dim=stage.head_dim,
            window_size=self.geometry.window,
            qkv_bias=arch.bias,
        )
        self._masks: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def _mask(self, padded: tuple[int, int], device: torch.device) -> torch.Tensor | None:
        (wh, ww), (sh, sw) = self.geometry.window, self.geometry.shift
        if sh == 0 and sw == 0:
            return None
        key = (*padded, device)
        if key not in self._masks:
            region = torch.zeros((1, *padded, 1), device=device)
            for i, hs in enumerate(_shift_slices(wh, sh)):
                for j, ws in enumerate(_shift_slices(ww, sw)):
                    region[:, hs, ws, :] = i * 3 + j
            ids = window_partition(region, (wh, ww)).reshape(-1, wh * ww)
            diff = ids.unsqueeze(1) - ids.unsqueeze(2)
            self._masks[key] = diff.masked_fill(diff != 0, -100.0)
        return self._masks[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, H, W, C = x.shape
        (wh, ww), (sh, sw) = self.geometry.window, self.geometry.shift
        Hp, Wp = -(-H // wh) * wh, -(-W // ww) * ww
        if (Hp, Wp) != (H, W):
            x = F.pad(x, (0, 0, 0, Wp - W, 0, Hp - H))
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        windows = window_partition(x, (wh, ww)).view(-1, wh * ww, C)
        windows = self.attn(windows, mask=self._mask((Hp, Wp), x.device))
        x = window_reverse(windows.view(-1, wh, ww, C), (wh, ww), Hp, Wp)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x[:, :H, :W, :]


def _shift_slices(window: int, shift: int) -> tuple[slice, ...]:
    if shift == 0:
        return (slice(None),)
    return slice(0, -window), slice(-window, -shift), slice(-shift, None)


class SpatialMlp(nn.Module):
    """Token mixing over all positions: MLP-Mixer's token MLP, or ResMLP's single Linear when
    ``token_mlp_ratio == 0``. Its weights depend on the number of tokens, so the map size is fixed
    when the model is built."""

    def __init__(self, stage: StageConfig, arch: ArchConfig, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = size
        tokens, hidden = size[0] * size[1], token_mlp_hidden(stage)
        if hidden:
            self.fc1 = nn.Linear(tokens, hidden, bias=arch.bias)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(hidden, tokens, bias=arch.bias)
        else:
            self.fc1 = nn.Linear(tokens, tokens, bias=arch.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        if self.size != (H, W):
            raise ValueError(
                f"spatial_mlp was built for a {self.size[0]}x{self.size[1]} map and got {H}x{W}: "
                "build the model with the img_size it will run at"
            )
        x = x.reshape(B, H * W, C).transpose(1, 2)
        x = self.fc1(x)
        if hasattr(self, "fc2"):
            x = self.fc2(self.act(x))
        return x.transpose(1, 2).reshape(B, H, W, C)


def make_mixer(stage: StageConfig, arch: ArchConfig, size: tuple[int, int], block_index: int) -> nn.Module:
    """The token mixer of one MetaFormer block (``mbconv`` stages have no mixer)."""
    k = stage.kernel_size
    if stage.mixer == "identity":
        return nn.Identity()
    if stage.mixer == "pooling":
        return Pooling(pool_size=k)
    if stage.mixer == "sepconv":
        return SepConv(stage.dim, act1_layer=ACT_LAYERS[arch.act], bias=arch.bias, kernel_size=k, padding=k // 2)
    if stage.mixer == "dwconv":
        return nn.Conv2d(stage.dim, stage.dim, k, padding=k // 2, groups=stage.dim, bias=arch.bias)
    if stage.mixer == "spatial_mlp":
        return SpatialMlp(stage, arch, size)
    if stage.mixer == "attention":
        return TokenAttention(stage, arch)
    if stage.mixer == "window_attention":
        return WindowAttentionMixer(stage, arch, size, block_index)
    raise ValueError(f"mixer: {stage.mixer!r} is not a token mixer")
