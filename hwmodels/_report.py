"""What ``estimate`` returns: frame totals, splits by unit and by energy kind, flags, and a per-layer
table. Frozen; ``to_dict`` gives the JSON form the CLI and the service use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from hwmodels._ir import Layer, OpKind
from hwmodels._mapping import LEVELS, MAPPINGS, SOURCES, UNITS

_PJ_TO_UJ = 1e-6


class LayerCost(NamedTuple):
    """One IR layer on the chip, per frame."""

    name: str
    op: OpKind
    fn: str
    unit: str  # imc | dwpu | dpu | dma | host
    mapping: str  # native | fused | emulated | array_rewrite | host | infeasible
    cycles: float  # busy cycles of its unit (after splitting over cores in latency mode)
    time_us: float  # its share of the frame: compute, or the weight / activation stream it waits on, + overhead
    compute_uj: float
    weights_uj: float  # streaming its weights into the arrays
    activations_uj: float  # reading and writing its activations at their memory level
    static_uj: float  # static power over its time
    weights_in: str  # imc (resident) | l2 | dram (streamed every frame) | "" (no static weights)
    act_level: str  # where its output lives: stream (fused into the next op) | l1 | l2 | dram
    utilisation: float  # IMC arrays only: MACs / (tiles x rows x cols x vectors)
    macs: int

    @property
    def energy_uj(self) -> float:
        return self.compute_uj + self.weights_uj + self.activations_uj + self.static_uj


class LayerTable:
    """The per-layer figures of ``estimate`` (``_model.price``'s rows), worked out when first asked for
    (a search reads only the totals) by ``walk``, which returns them."""

    def __init__(self, layers: Sequence[Layer], walk: Callable[[], list[list]], static_w: float) -> None:
        self.layers = layers
        self.walk = walk
        self.static_w = static_w  # static power a layer pays over its time

    @cached_property
    def rows(self) -> list[list]:
        """Per layer: unit, mapping, cycles, time_us, compute_pj, weights_pj, activations_pj, weights_in,
        act_level (codes into UNITS, MAPPINGS, SOURCES, LEVELS), utilisation."""
        return self.walk()

    def per_unit(self) -> dict[str, dict[str, float]]:
        """unit -> time_us, energy_uj, layers, in order of first use."""
        time_us, energy_uj, count, order = [0.0] * len(UNITS), [0.0] * len(UNITS), [0] * len(UNITS), []
        static_w = self.static_w
        for unit, _, _, t, cp, wp, ap, _, _, _ in self.rows:
            if not count[unit]:
                order.append(unit)
            time_us[unit] += t
            energy_uj[unit] += (cp + wp + ap) * _PJ_TO_UJ + static_w * t
            count[unit] += 1
        return {UNITS[u]: {"time_us": time_us[u], "energy_uj": energy_uj[u], "layers": count[u]} for u in order}

    def costs(self) -> tuple[LayerCost, ...]:
        units, mappings, sources, levels, to_uj, static_w = UNITS, MAPPINGS, SOURCES, LEVELS, _PJ_TO_UJ, self.static_w
        return tuple(
            LayerCost(layer.name, layer.op, layer.fn, units[u], mappings[mapping], cycles, t, cp * to_uj,
                      wp * to_uj, ap * to_uj, static_w * t, sources[src], levels[level], util, layer.macs)
            for layer, (u, mapping, cycles, t, cp, wp, ap, src, level, util) in zip(self.layers, self.rows, strict=True)
        )  # fmt: skip


@dataclass(frozen=True)
class CostReport:
    accelerator: str
    mode: str  # throughput: one network instance per core | latency: one network split over the cores
    batch: int
    latency_ms: float  # one batch, start to end
    throughput_fps: float  # whole chip
    energy_mj: float  # per frame, static included
    power_w: float  # average, at throughput_fps
    macs: int
    params: int
    weight_bytes: int
    utilisation: float  # MAC-weighted over the IMC layers
    bound: str  # the largest part of time_split_ms, or l2_bandwidth / dram_bandwidth when the shared memory caps FPS
    time_split_ms: dict[str, float]  # the core's own frame time as compute | weight_stream | activations |
    # overhead: latency_ms unless a shared-memory cap (see bound) stretches it further
    weights_in: dict[str, int]  # bytes resident in the arrays / streamed from L2 / from DRAM each frame
    energy_split_mj: dict[str, float]  # compute / weights / activations / static
    deployable: bool
    host_ops: tuple[str, ...]  # layer names that fall back to the host
    emulated_ops: tuple[str, ...]  # layer names emulated with extra DPU passes
    infeasible_ops: tuple[str, ...]
    _table: LayerTable = field(repr=False, compare=False)

    @cached_property
    def layers(self) -> tuple[LayerCost, ...]:
        """The per-layer table (built on first access: a search reads only the totals)."""
        return self._table.costs()

    @cached_property
    def per_unit(self) -> dict[str, dict[str, float]]:
        """unit -> time_us, energy_uj, layers (from the per-layer table, when first asked for)."""
        return self._table.per_unit()

    def to_dict(self, *, layers: bool = True) -> dict[str, Any]:
        data, per_unit = {}, self.per_unit
        for k, v in list(self.__dict__.items()):
            if k not in ("layers", "_table", "per_unit"):
                data[k] = v
            if k == "energy_split_mj":
                data["per_unit"] = per_unit
        data["host_ops"], data["emulated_ops"] = list(self.host_ops), list(self.emulated_ops)
        data["infeasible_ops"] = list(self.infeasible_ops)
        if layers:
            data["layers"] = [{**row._asdict(), "op": str(row.op), "energy_uj": row.energy_uj} for row in self.layers]
        return data
