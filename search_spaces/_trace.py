"""Tracing: any PyTorch module -> layer IR, by recording the ATen ops of one real forward pass.

A ``TorchDispatchMode`` sees every ATen op after autograd, so this works for modules that torch.fx
or torch.export cannot capture (data-dependent Python, timm's Swin, torchvision's models) and it
sees fused attention, which fvcore misses. Rules:

- A tensor is *static* when it derives from parameters, buffers or constants only; ops whose inputs
  are all static are constant-folded away (e.g. gathering a relative-position-bias table), and an
  op with a static operand has static weights (a Linear) while one with two dynamic operands is a
  MATMUL.
- Each parameter is counted once, at the first op that consumes it (directly or through views), so
  the IR's parameter total equals the module's.
- A static add right after a conv/linear is its bias and is folded into it.
- Views cost nothing and are skipped; copies that move data (a materialised transpose, pad, roll,
  concat) are RESHAPE.
- A fused attention kernel is spelled out as what it computes: scale, Q.K^T, mask, softmax, A.V.
- Lifetimes: each recorded op's output is followed (through views, by its storage) to the last op
  that reads it; ``Layer.held_bytes`` is what stays alive across an op for a later one (a skip, a
  branch awaiting its concat).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from hwmodels import STATIC_WEIGHT_KINDS, Layer, OpKind, conv_kind, held_bytes
from search_spaces._lower import parse_input_shape

aten = torch.ops.aten


def _packets(*names: str) -> frozenset:
    return frozenset(getattr(aten, n) for n in names if hasattr(aten, n))


_MM = _packets("mm", "addmm", "bmm", "baddbmm")
_SDPA = _packets(
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
)
_ELEMENTWISE = {
    **dict.fromkeys(
        _packets(
            "native_layer_norm",
            "native_group_norm",
            "_native_batch_norm_legit_no_training",
            "_native_batch_norm_legit",
            "native_batch_norm",
            "_fused_rms_norm",
        ),
        OpKind.NORM,
    ),
    **dict.fromkeys(
        _packets(
            "relu",
            "relu_",
            "gelu",
            "gelu_",
            "silu",
            "silu_",
            "sigmoid",
            "sigmoid_",
            "tanh",
            "tanh_",
            "hardswish",
            "hardswish_",
            "hardsigmoid",
            "hardsigmoid_",
            "hardtanh",
            "hardtanh_",
            "elu",
            "elu_",
            "leaky_relu",
            "leaky_relu_",
            "mish",
            "mish_",
            "pow",
            "square",
            "sqrt",
            "rsqrt",
            "exp",
            "erf",
            "clamp",
            "clamp_",
            "clamp_min",
            "clamp_min_",
            "clamp_max",
            "clamp_max_",
            "abs",
            "neg",
        ),
        OpKind.ACT,
    ),
    **dict.fromkeys(_packets("_softmax", "_log_softmax"), OpKind.SOFTMAX),
    **dict.fromkeys(_packets("add", "add_", "sub", "sub_", "rsub"), OpKind.ADD),
    **dict.fromkeys(_packets("mul", "mul_", "div", "div_"), OpKind.MUL),
    **dict.fromkeys(
        _packets(
            "avg_pool2d",
            "max_pool2d",
            "max_pool2d_with_indices",
            "adaptive_avg_pool2d",
            "_adaptive_avg_pool2d",
            "adaptive_max_pool2d",
            "avg_pool1d",
            "mean",
            "amax",
        ),
        OpKind.POOL,
    ),
    **dict.fromkeys(
        _packets(
            "clone",
            "roll",
            "constant_pad_nd",
            "reflection_pad2d",
            "replication_pad2d",
            "cat",
            "stack",
            "pixel_shuffle",
            "pixel_unshuffle",
            "channel_shuffle",
            "flip",
        ),
        OpKind.RESHAPE,
    ),
    **dict.fromkeys(
        _packets(
            "upsample_nearest2d",
            "upsample_bilinear2d",
            "upsample_bicubic2d",
            "_upsample_nearest_exact2d",
            "_upsample_bilinear2d_aa",
        ),
        OpKind.RESIZE,
    ),
}
_FREE = _packets(
    "view",
    "_unsafe_view",
    "reshape",
    "permute",
    "transpose",
    "t",
    "expand",
    "unsqueeze",
    "squeeze",
    "select",
    "slice",
    "unbind",
    "split",
    "split_with_sizes",
    "chunk",
    "alias",
    "detach",
    "as_strided",
    "_to_copy",
    "lift_fresh",
    "lift_fresh_copy",
    "_reshape_alias",
    "unfold",
    "dropout",
    "native_dropout",
    "feature_dropout",
    "empty_like",
    "zeros_like",
    "ones_like",
    "copy_",
    "fill_",
    "zero_",
)

# Module paths -> (stage, block), for our builder and the common timm / torchvision layouts.
_STAGE_BLOCK_PATTERNS = [
    re.compile(r"^stages\.(\d+)\.blocks\.(\d+)"),  # ours, timm MetaFormer / ConvNeXt
    re.compile(r"^stages\.(\d+)"),
    re.compile(r"^layers?\.?(\d+)\.(\d+)"),  # torchvision / timm ResNet, Swin "layers.0.blocks"
    re.compile(r"^blocks\.(\d+)\.(\d+)"),  # timm EfficientNet / MobileNet
    re.compile(r"^blocks\.(\d+)"),  # ViT: one stage of blocks
]


def _stage_block(module: str) -> tuple[int | None, int | None]:
    for i, pattern in enumerate(_STAGE_BLOCK_PATTERNS):
        match = pattern.match(module)
        if match:
            groups = [int(g) for g in match.groups()]
            if i == len(_STAGE_BLOCK_PATTERNS) - 1:
                return 0, groups[0]
            return groups[0], groups[1] if len(groups) > 1 else None
    return None, None


def _storage(t: torch.Tensor) -> int:
    """What a tensor and its views share (0 for tensors without memory of their own)."""
    try:
        return t.untyped_storage().data_ptr() if t.numel() else 0
    except (RuntimeError, NotImplementedError):  # tensor subclasses without a storage
        return 0


def _frame_shape(t: torch.Tensor) -> tuple[int, ...]:
    """Per-frame shape: the trace runs at batch 1, whose leading 1 is dropped."""
    shape = tuple(t.shape)
    return shape[1:] if len(shape) > 1 and shape[0] == 1 else shape


class _Recorder(TorchDispatchMode):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.static: WeakIdKeyDictionary = WeakIdKeyDictionary()  # tensor -> ids of its source params
        self.param_numel: dict[int, int] = {}
        for p in model.parameters():
            self.static[p] = frozenset({id(p)})
            self.param_numel[id(p)] = p.numel()
        for b in model.buffers():
            self.static[b] = frozenset()
        self.consumed: set[int] = set()
        self.layers: list[Layer] = []
        self.module_stack: list[str] = []
        self.names: dict[str, int] = {}
        self.last_out: int | None = None  # id() of the last record's output, for bias folding
        # lifetimes: storage -> tensor number; per tensor: producing op, last reading op, bytes
        self.tensor_of: dict[int, int] = {}
        self.producer: list[int] = []
        self.last_use: list[int] = []
        self.size: list[int] = []
        self.reads: list[list[int]] = []  # per op, the tensors it reads

    # -- bookkeeping -------------------------------------------------------------------------
    def _params(self, statics: list[torch.Tensor]) -> int:
        ids = frozenset().union(*(self.static[t] for t in statics)) - self.consumed
        self.consumed |= ids
        return sum(self.param_numel[i] for i in ids)

    def _name(self, op: str) -> str:
        module = self.module_stack[-1] if self.module_stack else ""
        base = f"{module}:{op}" if module else op
        n = self.names.get(base, 0)
        self.names[base] = n + 1
        return base if n == 0 else f"{base}#{n}"

    def _emit(
        self,
        op: OpKind,
        aten_name: str,
        inp,
        out,
        *,
        macs=0,
        params=0,
        act_in=None,
        gemm=None,
        kernel=(1, 1),
        stride=(1, 1),
        fn: str | None = None,
    ):
        module = self.module_stack[-1] if self.module_stack else ""
        stage, block = _stage_block(module)
        self.layers.append(
            Layer(
                self._name(aten_name),
                op,
                _frame_shape(inp),
                _frame_shape(out),
                macs,
                params,
                inp.numel() if act_in is None else act_in,
                out.numel(),
                gemm,
                kernel,
                stride,
                stage,
                block,
                _function_name(aten_name, op) if fn is None else fn,
            )
        )
        self.last_out = id(out)

    # -- dispatch ----------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        statics = [t for t in inputs if t in self.static]
        dynamic = [t for t in inputs if t not in self.static]
        outputs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        if not dynamic:  # constant-folded: parameters, buffers, masks built in forward
            source = frozenset().union(*(self.static[t] for t in statics))
            for t in outputs:
                self.static[t] = source
            return out
        packet = func.overloadpacket
        if packet in _FREE or not outputs:
            if outputs and self.last_out == id(dynamic[0]):
                self.last_out = id(outputs[0])  # a view of the last output can still take its bias
            return out
        recorded = len(self.layers)
        self._record(func, args, kwargs, out, statics, dynamic, outputs)
        if len(self.layers) > recorded or self.last_out == id(outputs[0]):  # a new op, or a bias folded in
            self._lifetimes(dynamic, outputs[0], len(self.layers) - 1)
        return out

    def _lifetimes(self, dynamic: list[torch.Tensor], out: torch.Tensor, op: int) -> None:
        """Op ``op`` reads ``dynamic`` and writes ``out``: extend its inputs' lives, start its output's."""
        while len(self.reads) <= op:
            self.reads.append([])
        for t in dynamic:
            known = self.tensor_of.get(_storage(t))
            if known is not None:
                self.last_use[known] = op
                self.reads[op].append(known)
        key = _storage(out)
        if key:
            self.tensor_of[key] = len(self.producer)
            self.producer.append(op)
            self.last_use.append(op)
            self.size.append(out.numel())

    def _record(self, func, args, kwargs, out, statics, dynamic, outputs) -> None:
        packet = func.overloadpacket
        name = packet.__name__
        main_out = outputs[0]
        if packet is aten.convolution:
            self._convolution(args, main_out, statics)
        elif packet in _MM:
            self._matmul(name, args, main_out, statics)
        elif packet in _SDPA:
            self._attention(name, args, kwargs, main_out, statics)
        elif packet in _ELEMENTWISE:
            op = _ELEMENTWISE[packet]
            if op is OpKind.RESHAPE and packet is aten.clone and dynamic[0].is_contiguous():
                return  # a copy of an already-contiguous tensor moves nothing new
            if op is OpKind.ADD and statics and len(dynamic) == 1 and self._fold_bias(dynamic[0], main_out, statics):
                return
            kernel = _pool_kernel(packet, args) if op is OpKind.POOL else (1, 1)
            act_in = sum(t.numel() for t in dynamic)
            self._emit(op, name, dynamic[0], main_out, params=self._params(statics), act_in=act_in, kernel=kernel)
        else:
            self._emit(
                OpKind.OTHER,
                name,
                dynamic[0],
                main_out,
                params=self._params(statics),
                act_in=sum(t.numel() for t in dynamic),
            )

    def _fold_bias(self, x: torch.Tensor, out: torch.Tensor, statics: list[torch.Tensor]) -> bool:
        last = self.layers[-1] if self.layers else None
        if last is None or last.op not in STATIC_WEIGHT_KINDS or self.last_out != id(x):
            return False
        self.layers[-1] = last._replace(params=last.params + self._params(statics))
        self.last_out = id(out)
        return True

    def _convolution(self, args, out: torch.Tensor, statics) -> None:
        x, weight = args[0], args[1]
        stride, groups = tuple(args[3]), args[8]
        cout, cin_g, *kernel = weight.shape
        kernel = tuple(kernel) if len(kernel) == 2 else (kernel[0], 1)
        cin = cin_g * groups
        positions = out.numel() // out.shape[1] // out.shape[0]
        k = cin_g * kernel[0] * kernel[1]
        op = conv_kind(cin, cout, kernel, groups)
        gemm = (groups, positions, k, cout // groups)
        self._emit(
            op,
            "conv",
            x,
            out,
            macs=positions * cout * k,
            params=self._params(statics),
            gemm=gemm,
            kernel=kernel,
            stride=(stride[0], stride[-1]),
        )

    def _matmul(self, name: str, args, out: torch.Tensor, statics) -> None:
        a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
        batch = a.shape[0] if a.dim() == 3 else 1
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        static_operand = a in self.static or b in self.static
        op = OpKind.LINEAR if static_operand else OpKind.MATMUL
        main = b if a in self.static else a
        self._emit(
            op,
            name,
            main,
            out,
            macs=batch * m * k * n,
            params=self._params(statics),
            act_in=sum(t.numel() for t in (a, b) if t not in self.static),
            gemm=(batch, m, k, n),
        )

    def _attention(self, name: str, args, kwargs, out: torch.Tensor, statics) -> None:
        """A fused attention kernel, spelled out as what it computes: Q.K^T, mask, softmax, A.V."""
        q, k, v = args[0], args[1], args[2]
        mask = kwargs.get("attn_mask")
        if mask is None and "efficient" in name and len(args) > 3:
            mask = args[3]
        groups = q.numel() // (q.shape[-2] * q.shape[-1])
        L, E, S, Ev = q.shape[-2], q.shape[-1], k.shape[-2], v.shape[-1]
        scores = torch.empty((1, groups, L, S), device="meta")
        self._emit(OpKind.MUL, f"{name}:scale", q, q, fn="mul")
        self._emit(
            OpKind.MATMUL,
            f"{name}:qk",
            q,
            scores,
            macs=groups * L * E * S,
            act_in=q.numel() + k.numel(),
            gemm=(groups, L, E, S),
        )
        if mask is not None:
            self._emit(
                OpKind.ADD,
                f"{name}:mask",
                scores,
                scores,
                params=self._params([mask] if mask in self.static else []),
                fn="add",
            )
        self._emit(OpKind.SOFTMAX, f"{name}:softmax", scores, scores)
        self._emit(
            OpKind.MATMUL,
            f"{name}:av",
            scores,
            out,
            macs=groups * L * S * Ev,
            act_in=scores.numel() + v.numel(),
            gemm=(groups, L, S, Ev),
        )


# ATen op -> the IR's function name (what the accelerator's operator tables call it).
_FUNCTIONS = {
    "native_layer_norm": "layernorm",
    "native_group_norm": "groupnorm",
    "_native_batch_norm_legit_no_training": "batchnorm",
    "_native_batch_norm_legit": "batchnorm",
    "native_batch_norm": "batchnorm",
    "_fused_rms_norm": "rmsnorm",
    "_softmax": "softmax",
    "avg_pool2d": "avgpool",
    "avg_pool1d": "avgpool",
    "max_pool2d": "maxpool",
    "max_pool2d_with_indices": "maxpool",
    "adaptive_max_pool2d": "maxpool",
    "amax": "maxpool",
    "adaptive_avg_pool2d": "mean",
    "_adaptive_avg_pool2d": "mean",
    "constant_pad_nd": "pad",
    "reflection_pad2d": "pad",
    "replication_pad2d": "pad",
    "hardtanh": "clip",
    "clamp": "clip",
    "rsub": "sub",
    "pow": "square",  # x ** 2 (StarReLU, SquaredReLU); other exponents are rare in vision nets
}
_GEMM_FUNCTIONS = {OpKind.CONV: "conv", OpKind.DWCONV: "dwconv", OpKind.LINEAR: "linear", OpKind.MATMUL: "matmul"}


def _function_name(aten_name: str, op: OpKind) -> str:
    if op in _GEMM_FUNCTIONS:
        return _GEMM_FUNCTIONS[op]
    base = aten_name.split(":")[-1].rstrip("_")
    return _FUNCTIONS.get(base, base)


def _pool_kernel(packet, args) -> tuple[int, int]:
    if packet in (aten.avg_pool2d, aten.max_pool2d, aten.max_pool2d_with_indices):
        k = args[1]
        return (k[0], k[-1]) if isinstance(k, (list, tuple)) else (k, k)
    x = args[0]
    return (x.shape[-2], x.shape[-1]) if x.dim() >= 3 else (1, 1)  # global pooling


def trace(module: nn.Module, input_shape: Sequence[int]) -> list[Layer]:
    """The layer IR of any ``nn.Module`` classifier, from one forward pass at batch 1 in eval mode.

    ``input_shape`` is (C, H, W). The module runs on its own device and dtype; it is put in eval
    mode for the trace and restored after.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    c, h, w = parse_input_shape(input_shape)
    first = next(module.parameters(), None)
    x = torch.zeros(
        1,
        c,
        h,
        w,
        device=first.device if first is not None else "cpu",
        dtype=first.dtype if first is not None else torch.float32,
    )
    names = {m: name for name, m in module.named_modules()}
    recorder = _Recorder(module)
    stack = recorder.module_stack

    def enter(m: nn.Module, _args) -> None:
        stack.append(names[m])

    def leave(_m: nn.Module, _args, _out) -> None:  # must return None: a value would replace the output
        stack.pop()

    handles = [h for m in names for h in (m.register_forward_pre_hook(enter), m.register_forward_hook(leave))]
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), recorder:
            module(x)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    layers = recorder.layers
    if recorder.producer:
        held = held_bytes(recorder.producer, recorder.last_use, recorder.size, recorder.reads)
        layers = [layer._replace(held_bytes=h) if h else layer for layer, h in zip(layers, held, strict=False)]
    return layers
