"""``estimate``: one network on one accelerator -> CostReport (totals, splits, the per-layer table).
Pure functions, no torch. The model itself (each formula, once) is ``_model.price``, walked here on
one chip with plain floats, as ``estimate_many`` walks it on many chips at once."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from operator import itemgetter

from hwmodels._accelerator import Accelerator, MappingPolicy, load_accelerator
from hwmodels._ir import BYTES_PER_ELEMENT, Layer
from hwmodels._mapping import EMULATED, INFEASIBLE, ON_HOST, place_weights
from hwmodels._model import ChipConstants, check_mode_and_batch, chip_constants, frames, price, tiles
from hwmodels._report import CostReport, LayerTable

_MACS, _PARAMS = itemgetter(Layer._fields.index("macs")), itemgetter(Layer._fields.index("params"))


def imc_tiles(gemm: tuple[int, int, int, int], rows: int, cols: int) -> int:
    """Array tiles a static-weight layer occupies: each group's k x n matrix cut into rows x cols."""
    g, _, k, n = gemm
    return tiles(g, k, n, rows, cols)


def estimate(
    layers: Sequence[Layer],
    accelerator: Accelerator | str | None = None,
    *,
    mode: str = "throughput",
    batch: int = 1,
) -> CostReport:
    """Price ``layers`` (one frame of a network) on ``accelerator`` (default: ``metis-like``).

    ``batch`` frames go through each kernel together: weight streams and kernel overheads are paid
    once per batch. Raises ValueError on an unknown mode or a batch below 1.
    """
    acc = accelerator if isinstance(accelerator, Accelerator) else load_accelerator(accelerator)
    check_mode_and_batch(mode, batch)
    chip, policy = acc
    c = chip_constants(chip, mode)
    source, placed = place_weights(layers, policy, chip, c.split)
    sums = price(layers, policy, c, source, batch)
    frame = frames(sums, [c], [placed["dram"]], batch)[0]
    table = LayerTable(layers, partial(_rows, layers, policy, c, source, batch), c.static_w_per_layer)
    params = sum(map(_PARAMS, layers))
    return CostReport(
        accelerator=acc.name,
        mode=mode,
        batch=batch,
        latency_ms=frame.latency_ms,
        throughput_fps=frame.throughput_fps,
        energy_mj=frame.energy_mj,
        power_w=frame.power_w,
        macs=sum(map(_MACS, layers)),
        params=params,
        weight_bytes=params * BYTES_PER_ELEMENT,
        utilisation=frame.utilisation,
        bound=frame.bound,
        time_split_ms={k: v * batch / 1e3 for k, v in frame.waits_us.items()},
        weights_in=placed,
        energy_split_mj=frame.energy_split_mj,
        deployable=frame.deployable,
        host_ops=tuple(sums.odd_ops[ON_HOST]),
        emulated_ops=tuple(sums.odd_ops[EMULATED]),
        infeasible_ops=tuple(sums.odd_ops[INFEASIBLE]),
        _table=table,
    )


def _rows(
    layers: Sequence[Layer], policy: MappingPolicy, c: ChipConstants, source: list[int], batch: int
) -> list[list]:
    """The per-layer figures of ``layers`` on one chip: ``price``'s walk again, keeping its rows."""
    rows: list[list] = []
    price(layers, policy, c, source, batch, rows=rows)
    return rows
