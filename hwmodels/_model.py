"""The analytical cost model of an IMC dataflow accelerator, each formula written once: ``price``
walks a network's layers on one chip (each figure a float: ``estimate``) or on many chips at once
(each figure a NumPy array with one entry per chip: ``estimate_many``), with the same statements.

Per layer, in execution order:
1. *Where it runs* (the mapping policy, ``_mapping``): IMC arrays (static-weight conv / linear), DWPU
   (depthwise, pooling), DPU (element-wise, norms, softmax, dynamic matmuls), DMA (layout copies)
   or the host. A function the unit does not list is emulated on the DPU with extra passes, sent to
   the host over PCIe, or marks the network infeasible, as the policy says.
2. *Compute*: IMC layers are tiled over the array (rows x cols), one bit-serial MVM per input
   vector and tile; energy counts the gated-on cells (32-row / 32-column granularity). DWPU and DPU
   layers run at their fitted rates.
3. *Weights*: if the network's static weights exceed the arrays' weight sets, the layers that
   stall least when streamed are streamed every frame from L2, overlapped with compute (one weight
   set computes while another is written). Weights past L2 are fetched ahead from DRAM into L2
   over the whole frame: the DRAM channel caps the frame rate, not each layer's time.
4. *Activations*: an element-wise op on a producer's output is fused into its output stream (no
   memory round trip, no kernel overhead); otherwise inputs and outputs move at the memory level
   their size fits (L1, L2, DRAM), with that level's energy per byte and bandwidth.
5. *Time* = max(compute, weight stream, activation traffic) + a fixed per-kernel overhead, + a
   pipeline drain after a global reduction (squeeze-excite's pool, the head's pool); each frame
   also pays a fixed runtime cost per inference.
Then the modes: throughput (a network instance per core, shared L2 / DRAM bandwidth caps the
frame rate) or latency (a layer's tiles, or its map, split over the cores); static power is paid for
the time a frame occupies the chip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import add, mul
from typing import Any, NamedTuple

import numpy as np

from hwmodels._accelerator import ChipConfig, MappingPolicy
from hwmodels._ir import Layer, OpKind
from hwmodels._mapping import (
    ARRAY_REWRITE,
    DMA,
    DPU,
    DWPU,
    EMULATED,
    FROM_DRAM,
    FROM_L2,
    FUSED,
    IMC,
    INFEASIBLE,
    LEVELS,
    NATIVE,
    ON_HOST,
    is_global,
    routes,
)

MODES = ("throughput", "latency")
STREAM = LEVELS.index("stream")


def check_mode_and_batch(mode: str, batch: int) -> None:
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {MODES}")
    if batch < 1:
        raise ValueError(f"batch: must be >= 1, got {batch}")


def tiles(g, k, n, rows, cols):
    """Array tiles of a static-weight matrix: each of ``g`` groups' k x n matrices cut into rows x cols."""
    return g * -(-k // rows) * -(-n // cols)


def gated_pj(m, g, k, n, c: ChipConstants):
    """Energy of ``m`` MVMs over the gated-on cells: rows and columns are powered in gate-sized blocks."""
    return m * g * (-(-k // c.gate_r) * c.gate_r) * (-(-n // c.gate_c) * c.gate_c) * c.mac_pj


class ChipConstants(NamedTuple):
    """A chip's figures in one mode as the formulas read them: floats (one chip) or NumPy arrays with
    one entry per chip (``stack``)."""

    split: Any  # cores one frame is spread over
    instances: Any  # frames in flight on the chip
    hz: Any
    us_per_cycle: Any
    rows: Any
    cols: Any
    bits: Any
    gate_r: Any
    gate_c: Any
    mac_pj: Any
    out_per_cycle: Any
    write_bps: Any  # array (re)write, bytes per second
    write_pj: Any
    dwpu_rate: Any  # MACs per cycle over the cores a frame uses
    dwpu_pj: Any
    dpu_rate: Any
    dpu_pj: Any
    dma_bytes_per_cycle: Any
    l1_tensor: Any  # a layer's input and output share L1
    l2_bytes: Any
    levels: Any  # (pJ per byte, us per byte) at L1, L2, DRAM, each shared by the frames in flight
    weight_us_per_byte: Any  # a streamed weight byte: L2 read or array write, the slower
    weight_pj_per_byte: Any  # L2 read + array write (DRAM weights add the DRAM read)
    dram_pj: Any
    host_round_trip_s: Any
    host_link_bps: Any
    host_bps: Any
    host_link_pj: Any
    overhead_us: Any  # per kernel
    sync_us: Any  # after a global reduction
    frame_overhead_us: Any  # per inference
    static_w_per_layer: Any  # static power of a frame's share of the chip + its busy cores' active power
    l2_bps: Any
    dram_bps: Any
    dram_bytes: Any
    static_power_w: Any
    core_active_power_w: Any
    cores_per_instance: Any  # their active power is paid over a frame


_CONSTANTS: dict[tuple[int, str], tuple[ChipConfig, ChipConstants]] = {}


def chip_constants(chip: ChipConfig, mode: str) -> ChipConstants:
    """``chip``'s constants in ``mode``; kept per chip object (a search prices every candidate on one)."""
    known = _CONSTANTS.get((id(chip), mode))
    if known is not None and known[0] is chip:
        return known[1]
    if len(_CONSTANTS) >= 1024:  # sweeps make chips by the thousand: keep the memo small
        _CONSTANTS.clear()
    constants = _chip_constants(chip, mode)
    _CONSTANTS[id(chip), mode] = (chip, constants)
    return constants


def _chip_constants(chip: ChipConfig, mode: str) -> ChipConstants:
    cores, hz, imc, mem = chip.cores, chip.hz, chip.imc, chip.memory
    split = cores if mode == "latency" else 1
    instances = cores if mode == "throughput" else 1
    l2_us = 1e-3 * instances / mem.l2_gbps
    return ChipConstants(
        split=split,
        instances=instances,
        hz=hz,
        us_per_cycle=1e6 / hz,
        rows=imc.rows,
        cols=imc.cols,
        bits=imc.input_bits,
        gate_r=imc.gate_rows,
        gate_c=imc.gate_cols,
        mac_pj=imc.mac_energy_pj,
        out_per_cycle=imc.outputs_per_cycle,
        write_bps=imc.write_gbps * 1e9,
        write_pj=imc.write_energy_pj_per_byte,
        dwpu_rate=chip.dwpu.macs_per_cycle * split,
        dwpu_pj=chip.dwpu.mac_energy_pj,
        dpu_rate=chip.dpu.ops_per_cycle * split,
        dpu_pj=chip.dpu.op_energy_pj,
        dma_bytes_per_cycle=mem.l1_gbps * 1e9 / hz * split,
        l1_tensor=mem.l1_bytes // 2,
        l2_bytes=mem.l2_bytes,
        levels=(
            (mem.l1_energy_pj_per_byte, 1e-3 / mem.l1_gbps),
            (mem.l2_energy_pj_per_byte, l2_us),
            (mem.dram_energy_pj_per_byte, 1e-3 * instances / mem.dram_gbps),
        ),
        weight_us_per_byte=max(l2_us, 1e-3 / imc.write_gbps),
        weight_pj_per_byte=mem.l2_energy_pj_per_byte + imc.write_energy_pj_per_byte,
        dram_pj=mem.dram_energy_pj_per_byte,
        host_round_trip_s=chip.host.round_trip_us * 1e-6,
        host_link_bps=chip.host.link_gbps * 1e9,
        host_bps=chip.host.gops * 1e9,
        host_link_pj=chip.host.link_energy_pj_per_byte,
        overhead_us=chip.layer_overhead_us,
        sync_us=chip.sync_overhead_us,
        frame_overhead_us=chip.frame_overhead_us,
        static_w_per_layer=chip.static_power_w / instances + chip.core_active_power_w * split,
        l2_bps=mem.l2_gbps * 1e9,
        dram_bps=mem.dram_gbps * 1e9,
        dram_bytes=mem.dram_bytes,
        static_power_w=chip.static_power_w,
        core_active_power_w=chip.core_active_power_w,
        cores_per_instance=cores // instances,
    )


def stack(constants: Sequence[ChipConstants]) -> ChipConstants:
    """Many chips' constants: a figure the chips share stays one number (the arithmetic on it stays
    Python's), the others become arrays with one entry per chip."""
    fields = []
    for values in zip(*constants, strict=True):
        column = np.array(values, float)
        fields.append(values[0] if (column == column[0]).all() else column)
    return ChipConstants(*fields)._replace(levels=LevelColumns(np.array([c.levels for c in constants])))


class LevelColumns:
    """Many chips' (pJ, us) per byte at L1, L2, DRAM, indexed like one chip's tuple of pairs: by a
    level code per chip."""

    def __init__(self, table: np.ndarray) -> None:  # (chips, 3 levels, 2)
        chips = len(table)
        self.pj, self.us = table[:, :, 0].T.ravel(), table[:, :, 1].T.ravel()  # level-major
        self.chips, self.offset = chips, np.arange(chips)

    def __getitem__(self, code) -> tuple[np.ndarray, np.ndarray]:
        at = code * self.chips + self.offset
        return self.pj[at], self.us[at]


class OneChip:
    """The operations ``price`` needs, on one chip's figures (Python numbers)."""

    maximum = max
    minimum = min
    any = bool

    @staticmethod
    def where(condition, if_true, if_false):
        return if_true if condition else if_false


class ManyChips:
    """The same operations on arrays with one entry per chip."""

    maximum = staticmethod(np.maximum)  # of two: the walk calls it per fused layer

    @staticmethod
    def minimum(first, *others):
        for other in others:
            first = np.minimum(first, other)
        return first

    @staticmethod
    def any(values) -> bool:
        return values.any() if isinstance(values, np.ndarray) else bool(values)

    where = staticmethod(np.where)


class FrameSums(NamedTuple):
    """A frame's sums over its layers: floats (one chip) or one entry per chip."""

    frame_us: Any
    waits: tuple  # compute, weight_stream, activations, overhead
    l2_traffic: Any  # bytes per frame through the shared L2 / DRAM (their bandwidth caps the frame rate)
    dram_traffic: Any
    compute_pj: Any
    weight_pj: Any
    act_pj: Any
    imc_weighted: Any  # sum of MACs x utilisation over the IMC layers
    imc_macs: int
    odd_ops: dict[int, list[str]]  # mapping code (host, emulated, infeasible) -> the names of its layers


def own_costs(c: ChipConstants, xp, replication: int, batch: int) -> Callable[..., tuple]:
    """``cost(unit, rewrite, macs, params, read, out_bytes, g, m, k, n, work, src, held)``: a layer's costs on
    its own, before fusion, as OWN_COSTS names them, on the chip(s) of ``c``. ``unit``: code into UNITS;
    ``rewrite``: a dynamic matmul the arrays may take; ``src``: where its weights live (SOURCES); ``held``:
    bytes of other tensors alive across it (``Layer.held_bytes``), which take their room in L1. The
    figures are numbers for one layer on one chip (``xp`` = ``OneChip``); on many chips (``ManyChips``,
    the chip figures ``(chips,)`` arrays), the quantities of layers sharing unit and rewrite may come as
    ``(layers, 1)`` columns and ``src`` as ``(layers, chips)``: the figures are then (layers, chips) grids."""
    maximum, minimum, where, any_ = xp.maximum, xp.minimum, xp.where, xp.any
    split, rows_, cols_, bits, out_per_cycle = c.split, c.rows, c.cols, c.bits, c.out_per_cycle
    us_per_cycle = c.us_per_cycle
    l1_tensor, l2_bytes, levels = c.l1_tensor, c.l2_bytes, c.levels
    weight_us_per_byte, weight_pj_per_byte, dram_pj = c.weight_us_per_byte, c.weight_pj_per_byte, c.dram_pj
    dwpu_rate, dwpu_pj, dpu_rate, dpu_pj = c.dwpu_rate, c.dwpu_pj, c.dpu_rate, c.dpu_pj

    def cost(unit, rewrite, macs, params, read, out_bytes, g, m, k, n, work, src, held=0) -> tuple:
        # Compute on the unit the layer runs on.
        compute_pj = utilisation = 0.0
        rewritten = False
        if unit == IMC:  # tiled over the arrays, one bit-serial MVM per input vector and tile
            t = tiles(g, k, n, rows_, cols_)
            copies = 1
            one_tile = t == 1
            if replication > 1 and any_(one_tile):
                # a layer far smaller than the array has its weights copied block-diagonally: each
                # MVM then computes `copies` output pixels (bounded by the read-out below); one tile only
                fit = minimum(replication, rows_ // k, cols_ // n, m)
                copies = 1 + one_tile * (fit - 1)
            cycles = maximum(m * t * bits / copies, m * g * n / out_per_cycle) / minimum(split, t)
            compute_pj = gated_pj(m, g, k, n, c)
            utilisation = macs / (m * t * rows_ * cols_)
        elif unit == DWPU:
            cycles = work / dwpu_rate
            compute_pj = work * dwpu_pj
        elif unit == DPU:
            cycles = work / dpu_rate
            compute_pj = work * dpu_pj
            if rewrite:
                # a dynamic matmul may write one operand into the arrays first, when that is faster
                t = tiles(g, k, n, rows_, cols_)
                rw_cycles = (g * k * n / c.write_bps * c.hz + m * t * bits) / minimum(split, t)
                rewritten = rw_cycles < cycles
                if any_(rewritten):
                    rw_pj = g * k * n * c.write_pj + gated_pj(m, g, k, n, c)
                    cycles, compute_pj = where(rewritten, rw_cycles, cycles), where(rewritten, rw_pj, compute_pj)
        elif unit == DMA:
            cycles = (read + out_bytes) / c.dma_bytes_per_cycle  # never fused: all it reads
        else:  # host, across the link and back
            moved = read + out_bytes
            cycles = (c.host_round_trip_s + moved / c.host_link_bps + out_bytes / c.host_bps) * c.hz
            compute_pj = moved * c.host_link_pj

        # Activations at the memory level their size fits (0: L1, 1: L2, 2: DRAM); tensors held for a
        # later consumer (skips, concats) occupy their share of L1 first.
        l1_room = l1_tensor - held * 0.5
        in_level = (read > l1_room) * (1 + (read > l2_bytes))
        out_level = (out_bytes > l1_room) * (1 + (out_bytes > l2_bytes))
        in_pj, in_us = levels[in_level]
        out_pj, out_us = levels[out_level]
        act_pj = read * in_pj + out_bytes * out_pj
        act_us = read * in_us + out_bytes * out_us
        l2_bytes_moved = dram_bytes_moved = 0.0
        if any_(in_level | out_level):
            l2_bytes_moved = read * (in_level == 1) + out_bytes * (out_level == 1)
            dram_bytes_moved = read * (in_level == 2) + out_bytes * (out_level == 2)

        # Weights past the arrays are streamed every frame from L2, overlapped with compute.
        # Weights past L2 are fetched ahead from DRAM into L2 by DMA while earlier layers run:
        # the layer waits only for the L2 -> array write; the DRAM channel caps the frame rate.
        weight_pj = weight_us = 0.0
        streamed = src >= FROM_L2
        if any_(streamed):
            per_frame = params / batch
            from_dram = src == FROM_DRAM
            weight_us = per_frame * weight_us_per_byte / split * streamed
            weight_pj = per_frame * weight_pj_per_byte * streamed + per_frame * dram_pj * from_dram
            l2_bytes_moved = l2_bytes_moved + per_frame * streamed
            dram_bytes_moved = dram_bytes_moved + per_frame * from_dram
        # Its time on its own: the longest of the three (fixed costs aside), and what it waits on.
        compute_us = cycles * us_per_cycle
        longest = maximum(maximum(compute_us, weight_us), act_us)
        on_compute = longest == compute_us
        on_weights = (longest == weight_us) > on_compute  # ties go to compute
        return (
            cycles, compute_us, compute_pj, utilisation, macs * utilisation, rewritten, out_level, out_pj, act_pj,
            act_us, l2_bytes_moved, dram_bytes_moved, weight_pj, src, longest, longest * on_compute,
            longest * on_weights, longest * (1 - on_compute - on_weights),
        )  # fmt: skip

    return cost


def price(
    layers: Sequence[Layer],
    policy: MappingPolicy,
    c: ChipConstants,
    source: Sequence,
    batch: int,
    xp: type[OneChip] | type[ManyChips] = OneChip,
    rows: list[list] | None = None,
    source_keys: Sequence[int] | None = None,
) -> FrameSums:
    """Walk ``layers`` in execution order on the chip(s) of ``c`` (``xp``: ``OneChip`` for floats,
    ``ManyChips`` for arrays), their static weights placed as ``source`` (``place_weights``; per layer
    a code, or an array of codes, one per chip, numbered alike by ``source_keys``). ``rows``, when
    given (an empty list), receives each layer's figures (columns as ``LayerTable``'s; one chip only).

    A network repeats its blocks: each distinct layer's own costs (``own_costs``) are worked out once
    and added up once (count x figure). On one chip they are worked out as the walk meets them; on many
    chips a first walk collects the distinct layers, whose costs are then worked out unit by unit as
    (layers x chips) grids (NumPy's per-call cost paid per unit, not per layer), and a second walk
    prices the network with them.
    """
    replication = int(policy.weight_replication)
    if xp is OneChip:
        walked = _walk(layers, policy, c, source, batch, xp, own_costs(c, xp, replication, batch), rows, source_keys)
        columns = list(zip(*walked.own, strict=True))
        unfused, riding, unwritten = walked.unfused, walked.riding, walked.unwritten
    else:
        distinct: list[tuple] = []
        _walk(layers, policy, c, source, batch, xp, lambda *layer: distinct.append(layer), None, source_keys)
        own, columns, order = _grid(distinct, c, replication, batch)
        figures = iter(own)
        walked = _walk(layers, policy, c, source, batch, xp, lambda *_: next(figures), None, source_keys)
        unfused, riding, unwritten = ([tally[j] for j in order] for tally in walked[1:4])
    counts = list(map(add, unfused, riding))  # every layer is fused or not
    overhead_us, sync_us, inference_us = c.overhead_us / batch, c.sync_us / batch, c.frame_overhead_us / batch
    kernels = sum(unfused)
    wait_overhead = kernels * overhead_us + walked.drains * sync_us + (inference_us if kernels else 0.0)
    if not columns:
        return FrameSums(wait_overhead, (0.0, 0.0, 0.0, wait_overhead), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, walked.odd_ops)
    (_, _, compute_pj, _, weighted, _, _, out_pj, act_pj, act_us, l2_moved, dram_moved, weight_pj, _, longest,
     on_compute, on_weights, on_acts) = columns  # fmt: skip
    # count x figure, added up: a dot product per figure (NumPy's on many chips)
    weights = (unfused, unfused, unfused, unfused, riding, counts, counts, counts, counts, counts, unwritten, counts)
    figures = (longest, on_compute, on_weights, on_acts, act_us, l2_moved, dram_moved, compute_pj, weight_pj, act_pj,
               out_pj, weighted)  # fmt: skip
    if xp is ManyChips:
        added = [np.dot(w, f) for w, f in zip(weights, figures, strict=True)]
    else:
        added = [sum(map(mul, w, f)) for w, f in zip(weights, figures, strict=True)]
    (frame, on_compute, on_weights, on_acts, fused_act_us, l2_moved, dram_moved, compute_pj, weight_pj, act_pj,
     unwritten_pj, weighted) = added  # fmt: skip
    # a fused layer's time: its exposed compute + its activations
    return FrameSums(
        frame + walked.exposed_us + fused_act_us + wait_overhead,
        (on_compute + walked.exposed_us, on_weights, on_acts + fused_act_us, wait_overhead),
        l2_moved, dram_moved, compute_pj, weight_pj, act_pj - unwritten_pj, weighted, walked.imc_macs, walked.odd_ops,
    )  # fmt: skip


class Walk(NamedTuple):
    """What ``_walk`` gathers: the distinct layers' own costs and counts, and the sums that depend on
    the order of the layers (fusion)."""

    own: list  # per distinct layer: OWN_COSTS (None on a walk that only collects the layers)
    unfused: list[int]  # per distinct layer: how many are not fused (they pay the kernel overhead)
    riding: list[int]  # how many are fused into their producer's output stream
    unwritten: list[int]  # output bytes it no longer writes, as the producer of fused layers
    drains: int  # global reductions, each draining the pipeline
    imc_macs: int
    exposed_us: Any  # fused layers' compute their producer's stream does not hide
    odd_ops: dict[int, list[str]]


def _walk(
    layers: Sequence[Layer], policy: MappingPolicy, c: ChipConstants, source: Sequence, batch: int, xp,
    cost: Callable[..., tuple | None], rows: list[list] | None, source_keys: Sequence[int] | None,
) -> Walk:  # fmt: skip
    """The layers in execution order: route, fusion, the distinct layer each is (its own costs from
    ``cost``, asked once per distinct layer), fusion's hiding of compute in the producer's stream."""
    maximum = xp.maximum
    route = routes(policy)
    rewrite_matmuls = policy.matmul_array_rewrite
    overhead_us, sync_us, inference_us = c.overhead_us / batch, c.sync_us / batch, c.frame_overhead_us / batch
    keys = source if source_keys is None else source_keys
    pool = OpKind.POOL
    odd_ops: dict[int, list[str]] = {ON_HOST: [], EMULATED: [], INFEASIBLE: []}
    index: dict[tuple, int] = {}
    own: list = []
    unfused: list[int] = []
    riding: list[int] = []
    unwritten: list[int] = []
    drains = imc_macs = 0
    exposed_us = 0.0
    stream_us = 0.0  # time of the producer's output stream still free to hide fused DPU work
    prev_out, prev_feeds, prev_j = -1, False, -1
    for layer, placed, source_key in zip(layers, source, keys, strict=True):
        name, op, _, out_shape, macs, params, in_bytes, out_bytes, gemm, kernel, _, _, _, fn, held = layer  # hot loop
        unit, mapping, passes, feeds, rides = route[op, fn]
        if mapping != NATIVE:
            odd_ops[mapping].append(name)
        elif unit == IMC:
            imc_macs += macs
        # Fusion: an element-wise op on the previous op's output rides its output stream, which
        # it does not read from memory.
        fused = prev_feeds and rides and out_bytes == prev_out and in_bytes >= prev_out
        read = in_bytes - prev_out if fused else in_bytes
        key = (op, fn, macs, params, read, out_bytes, gemm, kernel, source_key, held)  # what decides its own costs
        j = index.get(key)
        if j is None:
            j = index[key] = len(own)
            g, m, k, n = gemm or (0, 0, 0, 0)
            # DWPU work: MACs, or a pooling window per output; DPU work: MACs or elements, x passes
            work = (macs or out_bytes * kernel[0] * kernel[1]) if unit == DWPU else (macs or out_bytes) * passes
            rewrite = unit == DPU and op is OpKind.MATMUL and rewrite_matmuls
            own.append(cost(unit, rewrite, macs, params, read, out_bytes, g, m, k, n, work, placed, held))
            unfused.append(0)
            riding.append(0)
            unwritten.append(0)
        known = own[j]
        if known is None:  # a walk that only collects the distinct layers
            prev_out, prev_feeds = out_bytes, feeds
            continue
        if fused:  # the producer's output no longer goes to memory: its write moves to this op
            riding[j] += 1
            unwritten[prev_j] += prev_out
            # only what the producer's stream cannot hide
            compute_us = known[1]
            exposed = maximum(0.0, compute_us - stream_us)
            stream_us = maximum(0.0, stream_us - compute_us)
            exposed_us = exposed_us + exposed
        else:  # the longest of the three, + fixed costs
            unfused[j] += 1
            stream_us = longest = known[14]
            drain = op is pool and out_bytes * 4 <= in_bytes and is_global(out_shape)
            drains += drain  # a global reduction drains the pipeline
        if rows is not None:
            (cycles, _, compute_pj, utilisation, _, rewritten, out_level, _, act_pj, act_us, _, _, weight_pj, src, _,
             _, _, _) = known  # fmt: skip
            if fused:
                written = prev_out * own[prev_j][7]  # x the producer's pJ per output byte
                producer = rows[-1]
                producer[_ACT_PJ] -= written
                producer[_LEVEL] = STREAM
                mapping = FUSED
                time_us = exposed + act_us
            else:
                time_us = longest + overhead_us + sync_us if drain else longest + overhead_us
                if not rows:  # the inference's own start rides its first kernel
                    time_us += inference_us
            if rewritten:
                unit, mapping = IMC, ARRAY_REWRITE
            rows.append([unit, mapping, cycles, time_us, compute_pj, weight_pj, act_pj, src, out_level, utilisation])
        prev_out, prev_feeds, prev_j = out_bytes, feeds, j
    return Walk(own, unfused, riding, unwritten, drains, imc_macs, exposed_us, odd_ops)


def _grid(distinct: list[tuple], c: ChipConstants, replication: int, batch: int):
    """The own costs of the distinct layers (``own_costs``' arguments each) on many chips: one call per
    (unit, rewrite) group, its layer quantities as ``(layers, 1)`` columns. Returns the per-layer tuples
    (each figure a row of the grid, in ``distinct``'s order), the figures as ``(distinct layers, chips)``
    arrays in group order, and that order."""
    groups: dict[tuple, list[int]] = {}
    for j, d in enumerate(distinct):
        groups.setdefault(d[:2], []).append(j)
    chips = len(distinct[0][11]) if distinct else 0
    full = np.zeros((len(distinct), chips))  # broadcasts a figure to a group's (layers, chips) grid
    cost = own_costs(c, ManyChips, replication, batch)
    parts, order = [], []
    for (unit, rewrite), members in groups.items():
        q = np.array([distinct[j][2:11] for j in members], float).T[:, :, None]  # (quantities, layers, 1)
        src = np.array([distinct[j][11] for j in members])  # (layers, chips)
        held = np.array([distinct[j][12] for j in members], float)[:, None]  # (layers, 1)
        shape = (len(members), chips)
        figures = cost(unit, rewrite, *q, src, held)
        parts.append([f if np.shape(f) == shape else f + full[: len(members)] for f in figures])
        order += members
    columns = [np.concatenate(column) if len(parts) > 1 else column[0] for column in zip(*parts, strict=True)]
    own: list = [None] * len(distinct)
    for j, figures in zip(order, zip(*map(list, columns), strict=True), strict=True):
        own[j] = figures
    return own, columns, order


_ACT_PJ, _LEVEL = 6, 8  # columns of ``price``'s rows a fused consumer amends in its producer's
OWN_COSTS = (  # what ``own_costs`` returns: a layer's costs on its own (before fusion)
    "cycles", "compute_us", "compute_pj", "utilisation", "imc_weighted_macs", "rewritten", "out_level",
    "out_pj_per_byte", "act_pj", "act_us", "l2_bytes", "dram_bytes", "weight_pj", "weights_in", "longest_us",
    "compute_wait_us", "weight_wait_us", "activation_wait_us",
)  # fmt: skip


class Frame(NamedTuple):
    """One network on one chip: the frame's totals."""

    latency_ms: float  # one batch, start to end
    throughput_fps: float
    energy_mj: float  # per frame, static included
    power_w: float
    utilisation: float
    bound: str
    deployable: bool
    energy_split_mj: dict[str, float]  # compute / weights / activations / static
    waits_us: dict[str, float]  # a frame's own time on its core: compute | weight_stream | activations | overhead


def frames(sums: FrameSums, constants: Sequence[ChipConstants], dram_weights: Sequence[int], batch: int) -> list[Frame]:
    """The frame totals on each chip from its layer sums: the shared-memory caps, static energy, flags.
    ``dram_weights``: per chip, the static weight bytes that live in DRAM."""
    chips = len(constants)
    values = (sums.frame_us, *sums.waits, sums.l2_traffic, sums.dram_traffic, sums.compute_pj, sums.weight_pj,
              sums.act_pj, sums.imc_weighted)  # fmt: skip
    if np.ndarray in map(type, values):
        per_chip = zip(*(np.broadcast_to(s, chips).tolist() if isinstance(s, np.ndarray) else [float(s)] * chips
                         for s in values), strict=True)  # fmt: skip
    else:  # numbers the chips share
        per_chip = [tuple(map(float, values))] * chips
    feasible = not sums.odd_ops[INFEASIBLE]
    imc_macs = sums.imc_macs
    out = []
    for c, in_dram, (frame_us, w_compute, w_weights, w_acts, w_overhead, l2_traffic, dram_traffic, cp, wp, ap,
                     weighted) in zip(constants, dram_weights, per_chip, strict=True):  # fmt: skip
        instances = c.instances
        fps = instances / (frame_us * 1e-6) if frame_us > 0 else float("inf")
        waits_us = {"compute": w_compute, "weight_stream": w_weights, "activations": w_acts, "overhead": w_overhead}
        bound = max(waits_us, key=waits_us.get)  # what the frame time on a core is mostly made of
        if l2_traffic and c.l2_bps / l2_traffic < fps:
            fps, bound = c.l2_bps / l2_traffic, "l2_bandwidth"
        if dram_traffic and c.dram_bps / dram_traffic < fps:
            fps, bound = c.dram_bps / dram_traffic, "dram_bandwidth"
        # static power over one frame's share of the chip's time, plus the busy cores' active power
        static_mj = (c.static_power_w / fps * 1e6 + c.core_active_power_w * c.cores_per_instance * frame_us) / 1e3
        split = {"compute": cp * 1e-9, "weights": wp * 1e-9, "activations": ap * 1e-9, "static": static_mj}
        energy_mj = split["compute"] + split["weights"] + split["activations"] + static_mj
        out.append(
            Frame(
                # a frame on its core lasts at least as long as the shared memory's rate lets frames through
                max(frame_us, instances * 1e6 / fps) * batch / 1e3,  # latency_ms
                fps,
                energy_mj,
                energy_mj * 1e-3 * fps,  # power_w
                weighted / imc_macs if imc_macs else 0.0,  # utilisation
                bound,
                feasible and not (in_dram and c.dram_bytes == 0),  # deployable
                split,
                waits_us,
            )
        )
    return out
