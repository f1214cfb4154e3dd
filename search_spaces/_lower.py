"""Analytical lowering: ArchConfig -> layer IR, from the config alone (no torch, no model built).

It walks the network in the builder's forward order and emits what the builder's modules compute,
layer for layer. Layout changes that a GEMM or a fused kernel absorbs by reading with strides (NCHW
<-> tokens, attention's head split and merge, the spatial MLP's transposes) are free; copies that
need a pass of their own (window partition and reverse, cyclic shift, padding) are RESHAPE records.
 ``tests/test_lowering.py`` checks it against the built model's parameters and
against ``trace`` of that model.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod

from hwmodels import Layer, OpKind, conv_kind
from search_spaces._arch import ArchConfig, StageConfig
from search_spaces._geometry import (
    ConvGeometry,
    conv_out,
    downsample_geometry,
    mbconv_hidden,
    mlp_hidden,
    stage_feature_sizes,
    stem_geometry,
    token_mlp_hidden,
    window_geometry,
)

_NORM_PARAMS_PER_CHANNEL = {
    "layernorm": 2,
    "layernorm_nobias": 1,
    "groupnorm1": 2,
    "groupnorm1_nobias": 1,
    "batchnorm": 2,
}


def parse_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """Accept (C, H, W) or (1, C, H, W); the IR is per frame."""
    shape = tuple(input_shape)
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(f"input_shape: expected (C, H, W) of positive ints, e.g. (3, 224, 224); got {input_shape!r}")
    return shape  # type: ignore[return-value]


class _Emitter:
    """Appends IR records; one method per kind of layer the builder uses."""

    def __init__(self) -> None:
        self.layers: list[Layer] = []
        self.stage: int | None = None
        self.block: int | None = None

    def _add(
        self,
        name,
        op,
        in_shape,
        out_shape,
        fn,
        *,
        macs=0,
        params=0,
        act_in=None,
        gemm=None,
        kernel=(1, 1),
        stride=(1, 1),
    ):
        self.layers.append(
            Layer(
                name,
                op,
                in_shape,
                out_shape,
                macs,
                params,
                prod(in_shape) if act_in is None else act_in,
                prod(out_shape),
                gemm,
                kernel,
                stride,
                self.stage,
                self.block,
                fn,
            )
        )

    def conv(
        self,
        name: str,
        cin: int,
        cout: int,
        size: tuple[int, int],
        g: ConvGeometry,
        *,
        groups: int = 1,
        bias: bool = True,
    ) -> tuple[int, int]:
        ho, wo = conv_out(size[0], g), conv_out(size[1], g)
        k = cin // groups * g.kernel * g.kernel
        gemm = (groups, ho * wo, k, cout // groups)
        kernel = (g.kernel, g.kernel)
        op = conv_kind(cin, cout, kernel, groups)
        self._add(
            name,
            op,
            (cin, *size),
            (cout, ho, wo),
            op.value,
            macs=ho * wo * cout * k,
            params=cout * k + (cout if bias else 0),
            gemm=gemm,
            kernel=kernel,
            stride=(g.stride, g.stride),
        )
        return ho, wo

    def linear(self, name: str, shape: tuple[int, ...], n: int, *, bias: bool, nchw: bool = False) -> tuple[int, ...]:
        """A Linear (or 1x1 conv if ``nchw``) mapping the channel axis of ``shape``."""
        k = shape[0] if nchw else shape[-1]
        m = prod(shape) // k
        out = (n, *shape[1:]) if nchw else (*shape[:-1], n)
        self._add(
            name,
            OpKind.LINEAR,
            shape,
            out,
            "linear",
            macs=m * k * n,
            params=k * n + (n if bias else 0),
            gemm=(1, m, k, n),
        )
        return out

    def matmul(self, name: str, batch: int, m: int, k: int, n: int) -> None:
        self._add(
            name,
            OpKind.MATMUL,
            (batch, m, k),
            (batch, m, n),
            "matmul",
            macs=batch * m * k * n,
            act_in=batch * (m * k + k * n),
            gemm=(batch, m, k, n),
        )

    def elementwise(
        self, name: str, op: OpKind, shape: tuple[int, ...], fn: str, *, inputs: int = 1, params: int = 0
    ) -> None:
        self._add(name, op, shape, shape, fn, params=params, act_in=inputs * prod(shape))

    def norm(self, name: str, kind: str | None, shape: tuple[int, ...], channels: int) -> None:
        if kind is not None:
            fn = kind.removesuffix("_nobias").removesuffix("1")  # layernorm | groupnorm | batchnorm
            self.elementwise(name, OpKind.NORM, shape, fn, params=_NORM_PARAMS_PER_CHANNEL[kind] * channels)

    def act(self, name: str, kind: str, shape: tuple[int, ...]) -> None:
        self.elementwise(name, OpKind.ACT, shape, "gelu" if kind == "gelu" else "relu")
        if kind in ("starrelu", "squared_relu"):
            self.elementwise(f"{name}:square", OpKind.ACT, shape, "square")
        if kind == "starrelu":  # s * relu(x)^2 + b, with a learnable scalar s and b
            self.elementwise(f"{name}:scale", OpKind.MUL, shape, "mul", params=1)
            self.elementwise(f"{name}:bias", OpKind.ADD, shape, "add", params=1)


def lower(arch: ArchConfig, input_shape: Sequence[int], *, num_classes: int = 1000) -> list[Layer]:
    """The layer IR of ``arch`` for one frame of ``input_shape`` (C, H, W), without torch: the
    whole network, with its neck and head for a dense task (``_lower_dense``).

    Parameter totals equal those of ``build_model(arch, num_classes=..., img_size=(H, W))``.
    """
    if not isinstance(arch, ArchConfig):
        raise TypeError(f"arch: expected an ArchConfig, got {type(arch).__name__}")
    cin, h, w = parse_input_shape(input_shape)
    e = _Emitter()
    features = lower_trunk(e, arch, cin, (h, w))
    if arch.task != "classification":
        from search_spaces._lower_dense import lower_dense

        lower_dense(e, arch, features, num_classes)
        return e.layers
    (prev_dim, prev_size) = features[-1]
    _head(e, arch, prev_dim, prev_size, num_classes)
    return e.layers


def lower_trunk(e: _Emitter, arch: ArchConfig, cin: int, size: tuple[int, int]) -> list[tuple[int, tuple[int, int]]]:
    """Stem and stages; returns each stage output's (channels, (H, W))."""
    sizes = stage_feature_sizes(arch, size)
    dim0 = arch.stages[0].dim
    e.conv("stem.conv", cin, dim0, size, stem_geometry(arch))
    e.norm("stem.norm", arch.downsample_norm, (dim0, *sizes[0]), dim0)
    prev_dim, prev_size = dim0, sizes[0]
    for i, (stage, size) in enumerate(zip(arch.stages, sizes, strict=True)):
        e.stage, e.block = i, None
        if i > 0:
            e.norm(f"stages.{i}.downsample.norm", arch.downsample_norm, (prev_dim, *prev_size), prev_dim)
            e.conv(f"stages.{i}.downsample.conv", prev_dim, stage.dim, prev_size, downsample_geometry(arch, prev_size))
        for j in range(stage.depth):
            e.block = j
            prefix = f"stages.{i}.blocks.{j}"
            if stage.mixer == "mbconv":
                _mbconv_block(e, prefix, stage, arch, size)
            else:
                _metaformer_block(e, prefix, stage, arch, size, j)
        prev_dim, prev_size = stage.dim, size
    e.stage = e.block = None
    return [(stage.dim, size) for stage, size in zip(arch.stages, sizes, strict=True)]


def _metaformer_block(
    e: _Emitter, prefix: str, stage: StageConfig, arch: ArchConfig, size: tuple[int, int], j: int
) -> None:
    c = stage.dim
    shape = (c, *size) if not stage.channels_last else (*size, c)
    for half in (1, 2):
        if stage.res_scale:
            e.elementwise(f"{prefix}.rs{half}", OpKind.MUL, shape, "mul", params=c)
        e.norm(f"{prefix}.norm{half}", arch.norm, shape, c)
        if half == 1:
            _mixer(e, f"{prefix}.mixer", stage, arch, shape, size, j)
        else:
            nchw = not stage.channels_last
            hidden = e.linear(f"{prefix}.mlp.fc1", shape, mlp_hidden(stage), bias=arch.bias, nchw=nchw)
            e.act(f"{prefix}.mlp.act", arch.act, hidden)
            e.linear(f"{prefix}.mlp.fc2", hidden, c, bias=arch.bias, nchw=nchw)
        if arch.layer_scale is not None:
            e.elementwise(f"{prefix}.ls{half}", OpKind.MUL, shape, "mul", params=c)
        e.elementwise(f"{prefix}.add{half}", OpKind.ADD, shape, "add", inputs=2)


def _mixer(
    e: _Emitter, name: str, stage: StageConfig, arch: ArchConfig, shape: tuple[int, ...], size: tuple[int, int], j: int
) -> None:
    c, k, mixer = stage.dim, stage.kernel_size, stage.mixer
    if mixer == "pooling":
        e._add(f"{name}.pool", OpKind.POOL, shape, shape, "avgpool", kernel=(k, k))
        e.elementwise(f"{name}:sub", OpKind.ADD, shape, "sub", inputs=2)
    elif mixer == "sepconv":
        mid = e.linear(f"{name}.pwconv1", shape, 2 * c, bias=arch.bias, nchw=True)
        e.act(f"{name}.act1", arch.act, mid)
        e.conv(f"{name}.dwconv", 2 * c, 2 * c, size, ConvGeometry(k, 1, k // 2), groups=2 * c, bias=arch.bias)
        e.linear(f"{name}.pwconv2", mid, c, bias=arch.bias, nchw=True)
    elif mixer == "dwconv":
        e.conv(f"{name}", c, c, size, ConvGeometry(k, 1, k // 2), groups=c, bias=arch.bias)
    elif mixer == "attention":
        _attention(e, name, c, stage.num_heads, stage.head_dim, size[0] * size[1], 1, bias=arch.bias, rel_pos=0)
    elif mixer == "window_attention":
        g = window_geometry(stage, size, j)
        padded = (*g.padded, c)
        if g.padded != size:
            e.elementwise(f"{name}:pad", OpKind.RESHAPE, padded, "pad")
        if any(g.shift):
            e.elementwise(f"{name}:roll", OpKind.RESHAPE, padded, "roll")
        e.elementwise(f"{name}:partition", OpKind.RESHAPE, padded, "clone")
        heads = stage.num_heads
        rel_pos = (2 * g.window[0] - 1) * (2 * g.window[1] - 1) * heads
        _attention(
            e, f"{name}.attn", c, heads, stage.head_dim, g.tokens, g.num_windows, bias=arch.bias, rel_pos=rel_pos
        )
        e.elementwise(f"{name}:reverse", OpKind.RESHAPE, padded, "clone")
        if any(g.shift):
            e.elementwise(f"{name}:unroll", OpKind.RESHAPE, padded, "roll")
    elif mixer == "spatial_mlp":
        tokens, hidden = size[0] * size[1], token_mlp_hidden(stage)
        transposed = (c, tokens)  # read transposed by the GEMM, not copied
        if hidden:
            mid = e.linear(f"{name}.fc1", transposed, hidden, bias=arch.bias)
            e.act(f"{name}.act", "gelu", mid)
            e.linear(f"{name}.fc2", mid, tokens, bias=arch.bias)
        else:
            e.linear(f"{name}.fc1", transposed, tokens, bias=arch.bias)
    # identity: nothing to compute


def _attention(
    e: _Emitter, name: str, c: int, heads: int, head_dim: int, tokens: int, windows: int, *, bias: bool, rel_pos: int
) -> None:
    """qkv -> Q.K^T (+ relative-position bias) -> softmax -> A.V -> merge heads -> proj, over
    ``windows`` independent groups of ``tokens`` tokens (1 group: global attention)."""
    e.linear(f"{name}.qkv", (windows * tokens, c), 3 * c, bias=bias)
    groups = windows * heads
    scores = (groups, tokens, tokens)
    e.elementwise(f"{name}:scale", OpKind.MUL, (groups, tokens, head_dim), "mul")  # q * head_dim^-0.5
    e.matmul(f"{name}:qk", groups, tokens, head_dim, tokens)
    if rel_pos:  # window attention: the bias table (and shift mask) added to the scores
        e.elementwise(f"{name}:bias", OpKind.ADD, scores, "add", params=rel_pos)
    e.elementwise(f"{name}:softmax", OpKind.SOFTMAX, scores, "softmax")
    e.matmul(f"{name}:av", groups, tokens, tokens, head_dim)
    # timm's WindowAttention always has a proj bias; the MetaFormer Attention follows `bias`.
    e.linear(f"{name}.proj", (windows * tokens, c), c, bias=bias or rel_pos > 0)


def _mbconv_block(e: _Emitter, prefix: str, stage: StageConfig, arch: ArchConfig, size: tuple[int, int]) -> None:
    c, k, mid = stage.dim, stage.kernel_size, mbconv_hidden(stage)
    e.linear(f"{prefix}.conv_pw", (c, *size), mid, bias=False, nchw=True)
    e.norm(f"{prefix}.bn1", "batchnorm", (mid, *size), mid)
    e.act(f"{prefix}.bn1.act", arch.act, (mid, *size))
    e.conv(f"{prefix}.conv_dw", mid, mid, size, ConvGeometry(k, 1, k // 2), groups=mid, bias=False)
    e.norm(f"{prefix}.bn2", "batchnorm", (mid, *size), mid)
    e.act(f"{prefix}.bn2.act", arch.act, (mid, *size))
    e.linear(f"{prefix}.conv_pwl", (mid, *size), c, bias=False, nchw=True)
    e.norm(f"{prefix}.bn3", "batchnorm", (c, *size), c)
    e.elementwise(f"{prefix}.add", OpKind.ADD, (c, *size), "add", inputs=2)


def _head(e: _Emitter, arch: ArchConfig, c: int, size: tuple[int, int], num_classes: int) -> None:
    e._add("head.pool", OpKind.POOL, (c, *size), (c,), "mean", kernel=size)
    e.norm("head.norm", arch.head_norm, (c,), c)
    if num_classes <= 0:
        return
    if arch.head == "linear":
        e.linear("head.fc", (c,), num_classes, bias=True)
        return
    hidden = e.linear("head.fc.fc1", (c,), 4 * c, bias=True)  # timm's MlpHead: ratio 4, SquaredReLU
    e.act("head.fc.act", "squared_relu", hidden)
    e.norm("head.fc.norm", "layernorm", hidden, 4 * c)
    e.linear("head.fc.fc2", hidden, num_classes, bias=True)
