"""Chip variants: a base accelerator with some of its parameters changed, one at a time or over a
grid, for what-if sweeps and co-design searches.

Parameters are named by the knobs below (``cores``, ``array_cols``, ``l2_mib``, ...) or by a dotted
path of ``ChipConfig`` (``imc.outputs_per_cycle``). A variant's name lists what differs from its
base: ``metis-like[cores=2,l2_mib=16]``. Static power follows the variant's area (leakage and
always-on logic scale with silicon), unless the variant sets it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from hwmodels._accelerator import Accelerator, AcceleratorError, ChipConfig
from hwmodels._area import area_mm2

# knob -> (ChipConfig path, multiplier from the knob's unit to the field's)
KNOBS: dict[str, tuple[str, int]] = {
    "cores": ("cores", 1),
    "array_rows": ("imc.rows", 1),
    "array_cols": ("imc.cols", 1),
    "weight_sets": ("imc.weight_sets", 1),
    "l1_mib": ("memory.l1_bytes", 1 << 20),
    "l2_mib": ("memory.l2_bytes", 1 << 20),
    "clock_mhz": ("clock_mhz", 1),
}
MAX_VARIANTS = 4096  # a grid is priced in one call: bound what one request may ask for


def _path(knob: str) -> tuple[str, int]:
    if knob in KNOBS:
        return KNOBS[knob]
    fields = ChipConfig.model_fields
    head = knob.split(".")[0]
    if head in fields and head not in ("name", "description", "default_mapping"):
        return knob, 1
    raise AcceleratorError(f"{knob}: not a chip parameter; use one of {', '.join(KNOBS)} or a ChipConfig path")


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def chip_variant(base: Accelerator, changes: Mapping[str, Any]) -> Accelerator:
    """``base`` with ``changes`` (knob or path -> value); AcceleratorError names a bad one."""
    if not changes:
        return base
    data = base.chip.model_dump()
    for knob, value in changes.items():
        path, scale = _path(knob)
        *parents, key = path.split(".")
        node = data
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise AcceleratorError(f"{knob}: not a chip parameter")
            node = node[p]
        if key not in node:
            raise AcceleratorError(f"{knob}: not a chip parameter")
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise AcceleratorError(f"{knob}: {value!r} is not a number")
        node[key] = value * scale if scale != 1 else value
    data["name"] = f"{base.chip.name}[{','.join(f'{k}={_number(v)}' for k, v in changes.items())}]"
    try:
        chip = ChipConfig.model_validate(data)
    except ValidationError as err:
        fields = "; ".join(
            ": ".join(filter(None, [".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, ")]))
            for e in err.errors()
        )
        raise AcceleratorError(fields) from err
    base_area, area = area_mm2(base.chip), area_mm2(chip)
    if base_area and area and "static_power_w" not in changes:  # leakage and always-on logic scale with silicon
        chip = chip.model_copy(update={"static_power_w": base.chip.static_power_w * area / base_area})
    return Accelerator(chip, base.mapping)


def grid_size(grid: Mapping[str, Sequence[Any]]) -> int:
    size = 1
    for values in grid.values():
        size *= len(values)
    return size


def chip_grid(base: Accelerator, grid: Mapping[str, Sequence[Any]]) -> list[tuple[dict[str, Any], Accelerator]]:
    """Every combination of the grid's values laid over ``base``, with the changes that made it."""
    for knob, values in grid.items():
        if not isinstance(values, list | tuple) or not values:
            raise AcceleratorError(f"{knob}: give a non-empty list of values")
    if grid_size(grid) > MAX_VARIANTS:
        raise AcceleratorError(
            f"the grid has {grid_size(grid):,} variants, over the limit of {MAX_VARIANTS:,}; sweep fewer values"
        )
    knobs = list(grid)
    out = []
    for values in itertools.product(*(grid[k] for k in knobs)):
        changes = dict(zip(knobs, values, strict=True))
        out.append((changes, chip_variant(base, changes)))
    return out
