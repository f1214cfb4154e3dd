"""The analytical cost model: layer IR + accelerator -> CostReport. Pure functions, no torch.

Per layer, in execution order:
1. *Where it runs* (mapping policy): IMC arrays (static-weight conv / linear), DWPU (depthwise,
   pooling), DPU (element-wise, norms, softmax, dynamic matmuls), DMA (layout copies) or the host.
   A function the unit does not list is emulated on the DPU with extra passes, sent to the host
   over PCIe, or marks the network infeasible, as the policy says.
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

from collections.abc import Sequence
from math import ceil

from hwmodels._accelerator import Accelerator, load_accelerator
from hwmodels._ir import BYTES_PER_ELEMENT, Layer, OpKind
from hwmodels._report import CostReport, LayerCost

MODES = ("throughput", "latency")
_PJ_TO_UJ = 1e-6


def _ceil_to(x: int, step: int) -> int:
    return -(-x // step) * step


def imc_tiles(gemm: tuple[int, int, int, int], rows: int, cols: int) -> int:
    """Array tiles a static-weight layer occupies: each group's k x n matrix cut into rows x cols."""
    g, _, k, n = gemm
    return g * ceil(k / rows) * ceil(n / cols)


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
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {MODES}")
    if batch < 1:
        raise ValueError(f"batch: must be >= 1, got {batch}")
    # This loop runs for every candidate of a search: constants are hoisted into locals and each
    # layer's row is a plain list (LayerCost tuples are built only when the report is asked for them).
    chip, policy = acc
    imc, mem = chip.imc, chip.memory
    hz, cores = chip.hz, chip.cores
    split = cores if mode == "latency" else 1  # cores one frame is spread over
    instances = cores if mode == "throughput" else 1  # frames in flight on the chip
    us_per_cycle = 1e6 / hz
    overhead_us = chip.layer_overhead_us / batch
    sync_us = chip.sync_overhead_us / batch
    inference_us = chip.frame_overhead_us / batch
    l1_tensor, l2_size = mem.l1_bytes // 2, mem.l2_bytes  # a layer's input and output share L1
    # per memory level: (name, pJ per byte, us per byte with the level shared by the frames in flight)
    l1 = ("l1", mem.l1_energy_pj_per_byte, 1e-3 / mem.l1_gbps)
    l2 = ("l2", mem.l2_energy_pj_per_byte, 1e-3 * instances / mem.l2_gbps)
    dram = ("dram", mem.dram_energy_pj_per_byte, 1e-3 * instances / mem.dram_gbps)
    _, l2_pj, l2_us = l2
    dram_pj = mem.dram_energy_pj_per_byte
    rows, cols, bits = imc.rows, imc.cols, imc.input_bits
    gate_r, gate_c, mac_pj, out_per_cycle = imc.gate_rows, imc.gate_cols, imc.mac_energy_pj, imc.outputs_per_cycle
    dwpu_rate, dwpu_pj = chip.dwpu.macs_per_cycle * split, chip.dwpu.mac_energy_pj
    dpu_rate, dpu_pj = chip.dpu.ops_per_cycle * split, chip.dpu.op_energy_pj
    dma_bytes_per_cycle = mem.l1_gbps * 1e9 / hz * split
    host = chip.host
    static_w = chip.static_power_w / instances + chip.core_active_power_w * split
    fusable = frozenset(policy.fusable)
    replication = int(policy.weight_replication)

    weights_in = _place_weights(layers, acc, split)
    route: dict[tuple[OpKind, str], tuple[str, str, float]] = {}
    table: list[list] = []  # one row per layer, columns as in _layer_costs
    host_ops, emulated_ops, infeasible_ops = [], [], []
    l2_traffic = dram_traffic = 0.0  # shared-memory bytes per frame, for the bandwidth cap
    wait_compute = wait_weights = wait_acts = wait_overhead = 0.0  # what the frame waits on
    prev_out, prev_fusable = -1, False
    stream_us = 0.0  # time of the producer's output stream still free to hide fused DPU work
    for i, layer in enumerate(layers):
        name, op, _, out_shape, macs, params, in_bytes, out_bytes, gemm, kernel, _, _, _, fn = (
            layer  # one unpack: hot loop
        )
        key = (op, fn)
        if key not in route:
            route[key] = _route(policy, op, fn)
        unit, mapping, passes = route[key]
        if mapping != "native":
            {"emulated": emulated_ops, "host": host_ops, "infeasible": infeasible_ops}[mapping].append(name)

        compute_pj = utilisation = 0.0
        if unit == "imc":
            g, m, k, n = gemm
            tiles = g * -(-k // rows) * -(-n // cols)
            # a layer far smaller than the array has its weights copied block-diagonally: each MVM
            # then computes `copies` output pixels (bounded by the read-out below)
            copies = min(replication, rows // k, cols // n, m) if tiles == 1 and replication > 1 else 1
            cycles = max(m * tiles * bits / copies, m * g * n / out_per_cycle) / min(split, tiles)
            compute_pj = m * g * (-(-k // gate_r) * gate_r) * (-(-n // gate_c) * gate_c) * mac_pj
            utilisation = macs / (m * tiles * rows * cols)
        elif unit == "dwpu":
            work = macs or out_bytes * kernel[0] * kernel[1]
            cycles = work / dwpu_rate
            compute_pj = work * dwpu_pj
        elif unit == "dpu":
            work = (macs or out_bytes) * passes
            cycles = work / dpu_rate
            compute_pj = work * dpu_pj
            if op is OpKind.MATMUL and policy.matmul_array_rewrite:
                rewrite_cycles, rewrite_pj = _array_rewrite(layer, acc, split)
                if rewrite_cycles < cycles:
                    cycles, compute_pj, unit, mapping = rewrite_cycles, rewrite_pj, "imc", "array_rewrite"
        elif unit == "dma":
            cycles = (in_bytes + out_bytes) / dma_bytes_per_cycle
        else:  # host, across the link and back
            link_s = (in_bytes + out_bytes) / (host.link_gbps * 1e9)
            cycles = (host.round_trip_us * 1e-6 + link_s + out_bytes / (host.gops * 1e9)) * hz
            compute_pj = (in_bytes + out_bytes) * host.link_energy_pj_per_byte
        compute_us = cycles * us_per_cycle

        # Fusion: an element-wise op on the previous op's output rides its output stream.
        fused = (
            prev_fusable
            and mapping == "native"
            and unit == "dpu"
            and op in fusable
            and out_bytes == prev_out
            and in_bytes >= prev_out
        )
        if fused:  # the producer's output no longer goes to memory: its write moves to this op
            _, pj, _ = l1 if prev_out <= l1_tensor else l2 if prev_out <= l2_size else dram
            table[-1][_ACT_PJ] -= prev_out * pj
            table[-1][_LEVEL] = "stream"
            in_bytes -= prev_out  # the streamed operand is not read from memory
            mapping = "fused"

        in_level = l1 if in_bytes <= l1_tensor else l2 if in_bytes <= l2_size else dram
        out_level = l1 if out_bytes <= l1_tensor else l2 if out_bytes <= l2_size else dram
        act_pj = in_bytes * in_level[1] + out_bytes * out_level[1]
        act_us = in_bytes * in_level[2] + out_bytes * out_level[2]
        if in_level is not l1:
            if in_level is l2:
                l2_traffic += in_bytes
            else:
                dram_traffic += in_bytes
        if out_level is not l1:
            if out_level is l2:
                l2_traffic += out_bytes
            else:
                dram_traffic += out_bytes

        source = weights_in[i]
        weight_pj = weight_us = 0.0
        if source and source != "imc":
            # Weights past L2 are fetched ahead from DRAM into L2 by DMA while earlier layers run:
            # the layer waits only for the L2 -> array write, and the DRAM channel bounds the frame
            # rate as a whole (the cap in _report).
            per_frame = params / batch
            weight_us = per_frame * max(l2_us, 1e-3 / imc.write_gbps) / split
            weight_pj = per_frame * (l2_pj + imc.write_energy_pj_per_byte)
            l2_traffic += per_frame
            if source == "dram":
                weight_pj += per_frame * dram_pj
                dram_traffic += per_frame

        if fused:  # only what the producer's stream cannot hide
            exposed = max(0.0, compute_us - stream_us)
            stream_us = max(0.0, stream_us - compute_us)
            time_us = exposed + act_us
            wait_compute += exposed
            wait_acts += act_us
        else:
            longest = max(compute_us, weight_us, act_us)
            stream_us = longest
            # fixed costs: the kernel's; the inference's own start rides its first kernel
            fixed_us = overhead_us if i else overhead_us + inference_us
            if op is OpKind.POOL and out_bytes * 4 <= in_bytes and _is_global(out_shape):
                fixed_us += sync_us
            time_us = longest + fixed_us
            wait_overhead += fixed_us
            if longest == compute_us:
                wait_compute += longest
            elif longest == weight_us:
                wait_weights += longest
            else:
                wait_acts += longest
        table.append([layer, unit, mapping, cycles, time_us, compute_pj, weight_pj, act_pj, static_w * time_us,
                      source, out_level[0], utilisation])  # fmt: skip
        prev_out, prev_fusable = out_bytes, unit != "dma" and unit != "host" and mapping != "emulated"

    waits = {
        "compute": wait_compute,
        "weight_stream": wait_weights,
        "activations": wait_acts,
        "overhead": wait_overhead,
    }
    return _report(
        layers, table, acc, mode, batch, weights_in, waits, l2_traffic, dram_traffic, host_ops, emulated_ops,
        infeasible_ops,
    )  # fmt: skip


def _is_global(shape: tuple[int, ...]) -> bool:
    """A (C, 1, 1) or (C, 1) output: the map was reduced to one value per channel."""
    return len(shape) >= 2 and all(d == 1 for d in shape[1:])


def _route(policy, op: OpKind, fn: str) -> tuple[str, str, float]:
    """(unit, mapping, DPU passes) for one op kind and function under the mapping policy."""
    unit = policy.units[op]
    if policy.runs_natively(unit, fn):
        return unit, "native", 1.0
    if policy.unsupported == "dpu_emulate" and unit != "host":
        return "dpu", "emulated", policy.emulation_passes.get(fn, policy.default_emulation_passes)
    if policy.unsupported == "infeasible":
        return "host", "infeasible", 1.0  # priced as a fallback so figures stay finite; flagged
    return "host", "host", 1.0


# Columns of the per-layer rows estimate() fills (lists, so fusion can amend the producer's row).
_LAYER, _UNIT, _MAPPING, _CYCLES, _TIME, _COMPUTE_PJ, _WEIGHTS_PJ, _ACT_PJ, _STATIC_UJ, _SOURCE, _LEVEL, _UTIL = range(
    12
)


def _layer_costs(table: list[list]) -> tuple[LayerCost, ...]:
    return tuple(
        LayerCost(
            layer.name,
            layer.op,
            layer.fn,
            unit,
            mapping,
            cycles,
            t,
            cp * _PJ_TO_UJ,
            wp * _PJ_TO_UJ,
            ap * _PJ_TO_UJ,
            st,
            src,
            level,
            util,
            layer.macs,
        )
        for layer, unit, mapping, cycles, t, cp, wp, ap, st, src, level, util in table
    )


def _array_rewrite(layer: Layer, acc: Accelerator, split: int) -> tuple[float, float]:
    """Cycles and pJ of a dynamic matmul computed by writing one operand into the arrays first."""
    imc, hz = acc.chip.imc, acc.chip.hz
    g, m, k, n = layer.gemm
    tiles = imc_tiles(layer.gemm, imc.rows, imc.cols)
    write_cycles = g * k * n / (imc.write_gbps * 1e9) * hz
    cycles = (write_cycles + m * tiles * imc.input_bits) / min(split, tiles)
    pj = (
        g * k * n * imc.write_energy_pj_per_byte
        + m * g * _ceil_to(k, imc.gate_rows) * _ceil_to(n, imc.gate_cols) * imc.mac_energy_pj
    )
    return cycles, pj


def _place_weights(layers: Sequence[Layer], acc: Accelerator, split: int) -> list[str]:
    """Where each layer's static weights live: "imc" (resident), "l2" / "dram" (streamed every frame).

    Resident first are the layers that would stall most if streamed: least compute per weight
    byte. One weight set per core stays free as the streaming buffer once anything streams.
    """
    chip, policy = acc
    imc = chip.imc
    src = ["" for _ in layers]
    on_arrays = {kind for kind, unit in policy.units.items() if unit == "imc"}
    static = [i for i, layer in enumerate(layers) if layer.params and layer.gemm and layer.op in on_arrays]
    total = sum(layers[i].params for i in static)
    capacity = imc.weight_bytes * split
    if total <= capacity:
        for i in static:
            src[i] = "imc"
        return src
    budget = capacity - imc.rows * imc.cols * split
    by_stall = sorted(static, key=lambda i: layers[i].gemm[1] / max(layers[i].params, 1))
    l2_left = chip.memory.l2_bytes
    for i in by_stall:
        p = layers[i].params
        if p <= budget:
            src[i], budget = "imc", budget - p
        elif p <= l2_left:
            src[i], l2_left = "l2", l2_left - p
        else:
            src[i] = "dram"
    return src


def _report(
    layers, table, acc, mode, batch, weights_in, waits, l2_traffic, dram_traffic, host_ops, emulated_ops, infeasible_ops
):
    chip = acc.chip
    mem = chip.memory
    instances = chip.cores if mode == "throughput" else 1
    frame_us = sum(row[_TIME] for row in table)
    fps = instances / (frame_us * 1e-6) if frame_us > 0 else float("inf")
    bound = max(waits, key=waits.get)  # what the frame time on a core is mostly made of
    if l2_traffic and mem.l2_gbps * 1e9 / l2_traffic < fps:
        fps, bound = mem.l2_gbps * 1e9 / l2_traffic, "l2_bandwidth"
    if dram_traffic and mem.dram_gbps * 1e9 / dram_traffic < fps:
        fps, bound = mem.dram_gbps * 1e9 / dram_traffic, "dram_bandwidth"
    dynamic_mj = {
        "compute": sum(row[_COMPUTE_PJ] for row in table) * 1e-9,
        "weights": sum(row[_WEIGHTS_PJ] for row in table) * 1e-9,
        "activations": sum(row[_ACT_PJ] for row in table) * 1e-9,
    }
    # static power over one frame's share of the chip's time, plus the busy cores' active power
    static_mj = (
        chip.static_power_w / fps * 1e6 + chip.core_active_power_w * (chip.cores // instances) * frame_us
    ) / 1e3
    energy_mj = sum(dynamic_mj.values()) + static_mj
    per_unit: dict[str, dict[str, float]] = {}
    imc_macs = weighted = 0.0
    for layer, unit, _, _, t, cp, wp, ap, st, _, _, util in table:
        if util:
            imc_macs += layer.macs
            weighted += layer.macs * util
        u = per_unit.setdefault(unit, {"time_us": 0.0, "energy_uj": 0.0, "layers": 0})
        u["time_us"] += t
        u["energy_uj"] += (cp + wp + ap) * _PJ_TO_UJ + st
        u["layers"] += 1
    resident = {"imc": 0, "l2": 0, "dram": 0}
    macs = params = 0
    for layer, src in zip(layers, weights_in, strict=True):
        macs += layer.macs
        params += layer.params
        if src:
            resident[src] += layer.params
    deployable = not infeasible_ops and not (resident["dram"] and mem.dram_bytes == 0)
    return CostReport(
        accelerator=acc.name,
        mode=mode,
        batch=batch,
        # a frame on its core lasts at least as long as the shared memory's rate lets frames through
        latency_ms=max(frame_us, instances * 1e6 / fps) * batch / 1e3,
        throughput_fps=fps,
        energy_mj=energy_mj,
        power_w=energy_mj * 1e-3 * fps,
        macs=macs,
        params=params,
        weight_bytes=params * BYTES_PER_ELEMENT,
        utilisation=weighted / imc_macs if imc_macs else 0.0,
        bound=bound,
        time_split_ms={k: v * batch / 1e3 for k, v in waits.items()},
        weights_in=resident,
        energy_split_mj={**dynamic_mj, "static": static_mj},
        per_unit=per_unit,
        deployable=deployable,
        host_ops=tuple(host_ops),
        emulated_ops=tuple(emulated_ops),
        infeasible_ops=tuple(infeasible_ops),
        _table=table,
    )
