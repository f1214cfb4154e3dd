"""``estimate_many``: the totals of ``estimate`` for many networks on many chips, for sweeps,
comparisons and co-design, where the same networks are priced on hundreds of chip variants.

It is ``estimate``'s model, the very same walk (``_model.price``) with each chip figure an array
holding one entry per chip: a network's distinct layers are priced unit by unit as (layers x chips)
grids, so one pass prices it on every chip; what it drops is the per-layer table. Below
``VECTOR_MIN`` chips the walk goes chip by chip with floats,
which is faster there. The chip may vary freely between the accelerators; the mapping policy must be
one for all (it decides routing and fusion).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from hwmodels._accelerator import Accelerator
from hwmodels._ir import Layer
from hwmodels._mapping import place_weights, weight_order
from hwmodels._model import (
    ChipConstants,
    ManyChips,
    OneChip,
    check_mode_and_batch,
    chip_constants,
    frames,
    price,
    stack,
)

VECTOR_MIN = 5  # chips from which the grids beat one walk per chip (measured on 10 `metaformer` samples)


class Totals(NamedTuple):
    """One network on one accelerator: ``estimate``'s frame totals."""

    accelerator: str
    latency_ms: float
    throughput_fps: float
    energy_mj: float
    power_w: float
    utilisation: float
    bound: str
    deployable: bool

    @classmethod
    def of(cls, report) -> Totals:
        """A CostReport's totals."""
        return cls(report.accelerator, report.latency_ms, report.throughput_fps, report.energy_mj, report.power_w,
                   report.utilisation, report.bound, report.deployable)  # fmt: skip


def estimate_many(
    networks: Sequence[Sequence[Layer]],
    accelerators: Sequence[Accelerator],
    *,
    mode: str = "throughput",
    batch: int = 1,
) -> list[list[Totals]]:
    """``estimate``'s totals for every network (outer list) on every accelerator (inner list).

    All accelerators must share one mapping policy (chips may differ in anything).
    """
    check_mode_and_batch(mode, batch)
    if not accelerators:
        return [[] for _ in networks]
    policy = accelerators[0].mapping
    if any(a.mapping != policy for a in accelerators):
        raise ValueError("accelerators: estimate_many needs one mapping policy for all; group them by mapping")
    constants = [chip_constants(a.chip, mode) for a in accelerators]
    if len(accelerators) < VECTOR_MIN:  # too few chips to pay for arrays: one chip at a time, same formulas
        return [[_price(layers, [acc], [c], c, OneChip, batch)[0] for acc, c in zip(accelerators, constants, strict=True)]
                for layers in networks]  # fmt: skip
    columns, xp = stack(constants), ManyChips
    return [_price(layers, accelerators, constants, columns, xp, batch) for layers in networks]


def _price(
    layers: Sequence[Layer], accs: Sequence[Accelerator], constants: Sequence[ChipConstants], columns: ChipConstants,
    xp: type[OneChip] | type[ManyChips], batch: int,
) -> list[Totals]:  # fmt: skip
    """``layers`` on the chips of ``columns`` (one chip's constants, or many stacked)."""
    placements: dict[tuple, tuple[list[int], dict[str, int]]] = {}  # chips of one array and L2 size place alike
    keys = []
    policy = accs[0].mapping
    order = weight_order(layers, policy)  # the same on every chip
    for acc, c in zip(accs, constants, strict=True):
        imc = acc.chip.imc
        keys.append((imc.weight_bytes, imc.rows * imc.cols, acc.chip.memory.l2_bytes, c.split))
        if keys[-1] not in placements:
            placements[keys[-1]] = place_weights(layers, policy, acc.chip, c.split, order)
    if xp is OneChip:
        source, source_keys = placements[keys[0]][0], None
    else:  # per layer, its weights' place on each chip; layers placed alike share a number
        by_chip = np.array([placements[k][0] for k in keys], np.int8).reshape(len(keys), len(layers))
        source = list(by_chip.T)
        numbers: dict[bytes, int] = {}
        source_keys = [numbers.setdefault(row.tobytes(), len(numbers)) for row in source]
    sums = price(layers, policy, columns, source, batch, xp, source_keys=source_keys)
    dram = [placements[k][1]["dram"] for k in keys]
    return [
        Totals(acc.name, f.latency_ms, f.throughput_fps, f.energy_mj, f.power_w, f.utilisation, f.bound, f.deployable)
        for acc, f in zip(accs, frames(sums, constants, dram, batch), strict=True)
    ]
