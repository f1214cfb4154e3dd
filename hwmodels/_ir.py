"""The layer IR: a framework-free, ordered list of the operations of one network for one frame.

Two producers write it (``search_spaces.lower`` from an architecture config, ``search_spaces.trace``
from any PyTorch module) and the cost model reads it. It knows nothing of torch.

Conventions:
- Shapes are per frame (no batch dimension).
- The deployed network is INT8 (what IMC accelerators of the Metis class run), so one element is
  one byte: ``weight_bytes == params`` and activation bytes are element counts.
- ``macs`` counts multiply-accumulates of the ops that have them (conv, linear, depthwise conv,
  matmul); element-wise work (norms, activations, adds, pooling) has ``macs == 0`` and is priced by
  the cost model from its activation sizes.
- ``held_bytes`` is what a linear list cannot show: tensors produced earlier and consumed later
  (skips, feature maps awaiting a concat) that stay in memory while this op runs.
- A static-weight op records its matrix view in ``gemm`` as ``(batch, m, k, n)``: ``batch``
  independent products of an ``m x k`` activation matrix with a ``k x n`` operand. For a conv,
  ``m`` is the number of output pixels, ``k = in_channels / groups * kh * kw`` (im2col rows) and
  ``n = out_channels / groups``; for a matmul with two dynamic operands (attention), both are
  activations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import NamedTuple

BYTES_PER_ELEMENT = 1  # INT8 deployment: weights and activations are one byte each


class OpKind(StrEnum):
    """What an operation is, as far as the accelerator is concerned."""

    CONV = "conv"  # dense or grouped conv with a kernel > 1x1 and static weights
    LINEAR = "linear"  # pointwise (1x1) conv or linear layer with static weights
    DWCONV = "dwconv"  # depthwise conv (groups == in_channels)
    MATMUL = "matmul"  # matmul of two dynamic operands, e.g. attention's Q.K^T and A.V
    POOL = "pool"  # average / max pooling, global pooling
    NORM = "norm"  # layer / group / batch norm
    ACT = "act"  # element-wise non-linearity (ReLU, GELU, StarReLU's relu^2, ...)
    SOFTMAX = "softmax"
    ADD = "add"  # element-wise add / subtract (residuals, biases, masks)
    MUL = "mul"  # element-wise multiply / divide (layer scale, gating)
    RESHAPE = "reshape"  # a layout change that moves data: materialised transpose, pad, roll, concat
    RESIZE = "resize"  # up-sampling
    OTHER = "other"  # anything else; the name says which framework op it was


# Kinds whose count is a property of the network, not of how a framework happens to spell it.
COMPUTE_KINDS = frozenset(
    {OpKind.CONV, OpKind.LINEAR, OpKind.DWCONV, OpKind.MATMUL, OpKind.POOL, OpKind.NORM, OpKind.SOFTMAX}
)
STATIC_WEIGHT_KINDS = frozenset({OpKind.CONV, OpKind.LINEAR, OpKind.DWCONV})


class Layer(NamedTuple):
    """One operation of the network. A NamedTuple, not a dataclass: lowering builds hundreds of
    these per candidate and tuple construction is several times cheaper."""

    name: str  # module path, unique in the network, e.g. "stages.2.blocks.0.mixer.qkv"
    op: OpKind
    in_shape: tuple[int, ...]  # main input, per frame
    out_shape: tuple[int, ...]
    macs: int = 0
    params: int = 0  # trainable parameters first used by this op
    act_in_bytes: int = 0  # all dynamic inputs together
    act_out_bytes: int = 0
    gemm: tuple[int, int, int, int] | None = None  # (batch, m, k, n), see the module docstring
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    stage: int | None = None  # None: stem, head or a layer outside any stage
    block: int | None = None  # None: not inside a block (downsampling, stem, head)
    fn: str = ""  # the function within the kind: "gelu", "layernorm", "avgpool", "roll", ...
    # bytes of earlier outputs that stay alive across this op for a later consumer (a skip, a branch
    # awaiting its concat), its own inputs aside; they share the on-chip memory with its activations.
    # 0: not known (a producer that does not track lifetimes) or none.
    held_bytes: int = 0

    @property
    def weight_bytes(self) -> int:
        return self.params * BYTES_PER_ELEMENT


def conv_kind(in_channels: int, out_channels: int, kernel: tuple[int, int], groups: int) -> OpKind:
    """Classify a convolution the same way for both IR producers."""
    if groups > 1 and groups == in_channels and out_channels % in_channels == 0:
        return OpKind.DWCONV
    if kernel == (1, 1) and groups == 1:
        return OpKind.LINEAR
    return OpKind.CONV


def total_macs(layers: Iterable[Layer]) -> int:
    return sum(layer.macs for layer in layers)


def total_params(layers: Iterable[Layer]) -> int:
    return sum(layer.params for layer in layers)


def op_counts(layers: Iterable[Layer]) -> Counter[OpKind]:
    return Counter(layer.op for layer in layers)


def held_bytes(
    producer: Sequence[int], last_use: Sequence[int], size: Sequence[int], reads: Sequence[Sequence[int]] = ()
) -> list[int]:
    """Per op of the list, the bytes of the tensors alive across it: tensor ``t`` is written by op
    ``producer[t]`` and last read by op ``last_use[t]`` (op indices; ``size[t]`` bytes); it is held
    across each op strictly between the two, except where that op reads it (``reads[i]``: the tensors
    op ``i`` reads; there it is an input, already counted as one)."""
    n = 1 + max((*producer, *last_use), default=-1)
    delta = [0] * (n + 1)
    for p, u, b in zip(producer, last_use, size, strict=True):
        if u > p + 1:
            delta[p + 1] += b
            delta[u] -= b
    held, running = [], 0
    for d in delta[:n]:
        running += d
        held.append(running)
    for i, tensors in enumerate(reads):
        held[i] -= sum(size[t] for t in set(tensors) if producer[t] < i < last_use[t])
    return held
