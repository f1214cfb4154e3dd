"""How a mapping policy lays a network onto a chip: which unit runs each op kind and function, and
how (``route``), what that means for fusion, and where the static weights live on a given chip
(``place_weights``). The cost model (``_model``) prices what this decides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from hwmodels._accelerator import ChipConfig, MappingPolicy
from hwmodels._ir import Layer, OpKind

# The small-int codes the cost model works with; the names are what reports show.
UNITS = ("imc", "dwpu", "dpu", "dma", "host")
IMC, DWPU, DPU, DMA, HOST = range(len(UNITS))
MAPPINGS = ("native", "fused", "emulated", "host", "infeasible", "array_rewrite")
NATIVE, FUSED, EMULATED, ON_HOST, INFEASIBLE, ARRAY_REWRITE = range(len(MAPPINGS))
SOURCES = ("", "imc", "l2", "dram")  # where a layer's static weights live: none, resident, streamed each frame
NO_WEIGHTS, RESIDENT, FROM_L2, FROM_DRAM = range(len(SOURCES))
LEVELS = ("l1", "l2", "dram", "stream")  # where an output lives; stream: fused into the next op


def route(policy: MappingPolicy, op: OpKind, fn: str) -> tuple[str, str, float]:
    """(unit, mapping, DPU passes) for one op kind and function under the mapping policy."""
    unit = policy.units[op]
    if policy.runs_natively(unit, fn):
        return unit, "native", 1.0
    if policy.unsupported == "dpu_emulate" and unit != "host":
        return "dpu", "emulated", policy.emulation_passes.get(fn, policy.default_emulation_passes)
    if policy.unsupported == "infeasible":
        return "host", "infeasible", 1.0  # priced as a fallback so figures stay finite; flagged
    return "host", "host", 1.0


class Route(NamedTuple):
    """What the policy does with one (op kind, function), and what that means for fusion."""

    unit: int  # code into UNITS
    mapping: int  # code into MAPPINGS
    passes: float  # DPU passes per element
    feeds: bool  # its output stream can carry an element-wise op
    rides: bool  # it can ride its producer's output stream


class Routes(dict):
    """A policy's routes by (op kind, function), worked out when first asked for. Kept per policy
    (``routes``), as a search prices thousands of networks under one."""

    def __init__(self, policy: MappingPolicy) -> None:
        super().__init__()
        self.policy = policy
        self.on_arrays = frozenset(kind for kind, unit in policy.units.items() if unit == "imc")

    def __missing__(self, key: tuple[OpKind, str]) -> Route:
        op, fn = key
        unit_name, mapping_name, passes = route(self.policy, op, fn)
        unit, mapping = UNITS.index(unit_name), MAPPINGS.index(mapping_name)
        fusable = unit == DPU and op in self.policy.fusable
        # an emulated function the compiler fuses (fused_emulation) rides the stream with its passes
        rides = fusable and (mapping == NATIVE or (mapping == EMULATED and fn in self.policy.fused_emulation))
        feeds = unit not in (DMA, HOST) and (mapping != EMULATED or rides)
        value = self[key] = Route(unit, mapping, passes, feeds, rides)
        return value


_ROUTES: dict[int, Routes] = {}


def routes(policy: MappingPolicy) -> Routes:
    known = _ROUTES.get(id(policy))
    if known is None or known.policy is not policy:
        if len(_ROUTES) >= 64:  # policies made on the fly (overrides, tests): keep the memo small
            _ROUTES.clear()
        known = _ROUTES[id(policy)] = Routes(policy)
    return known


def is_global(shape: tuple[int, ...]) -> bool:
    """A (C, 1, 1) or (C, 1) output: the map was reduced to one value per channel."""
    return len(shape) >= 2 and all(d == 1 for d in shape[1:])


def weight_order(layers: Sequence[Layer], policy: MappingPolicy, ranked: bool = True) -> tuple[list[int], int]:
    """The layers whose static weights the arrays hold, in the order they are placed when not all fit
    (``ranked``; least compute per weight byte first: they would stall most if streamed), and their
    bytes. The same on every chip."""
    on_arrays = routes(policy).on_arrays  # op kinds whose static weights the arrays hold
    static = [i for i, layer in enumerate(layers) if layer.params and layer.gemm and layer.op in on_arrays]
    if ranked:
        static.sort(key=lambda i: layers[i].gemm[1] / max(layers[i].params, 1))
    return static, sum(layers[i].params for i in static)


def place_weights(
    layers: Sequence[Layer], policy: MappingPolicy, chip: ChipConfig, split: int, order: tuple | None = None
) -> tuple[list[int], dict[str, int]]:
    """Where each layer's static weights live on ``chip`` (codes into SOURCES: resident in the arrays,
    or streamed every frame from L2 / DRAM), and the bytes in each place. ``order``: ``weight_order``'s,
    when the caller places one network on many chips.

    Resident first are the layers that would stall most if streamed (``weight_order``). One weight set
    per core stays free as the streaming buffer once anything streams.
    """
    static, total = order or weight_order(layers, policy, ranked=False)
    source = [NO_WEIGHTS] * len(layers)
    capacity = chip.imc.weight_bytes * split
    if total <= capacity:
        for i in static:
            source[i] = RESIDENT
        return source, {"imc": total, "l2": 0, "dram": 0}
    budget = capacity - chip.imc.rows * chip.imc.cols * split
    l2_left = chip.memory.l2_bytes
    placed = {"imc": 0, "l2": 0, "dram": 0}
    if order is None:
        static, _ = weight_order(layers, policy)
    for i in static:
        p = layers[i].params
        if p <= budget:
            source[i], budget = RESIDENT, budget - p
        elif p <= l2_left:
            source[i], l2_left = FROM_L2, l2_left - p
        else:
            source[i] = FROM_DRAM
        placed[SOURCES[source[i]]] += p
    return source, placed
