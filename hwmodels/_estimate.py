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
   stall least when streamed are streamed every frame from L2 (or DRAM past L2), overlapped with
   compute (one weight set computes while another is written).
4. *Activations*: an element-wise op on a producer's output is fused into its output stream (no
   memory round trip, no kernel overhead); otherwise inputs and outputs move at the memory level
   their size fits (L1, L2, DRAM), with that level's energy per byte and bandwidth.
5. *Time* = max(compute, weight stream, activation traffic) + a fixed per-kernel overhead.
Then the modes: throughput (a network instance per core, shared L2 / DRAM bandwidth caps the
frame rate) or latency (a layer's tiles, or its map, split over the cores); static power is paid for
the time a frame occupies the chip.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

from hwmodels._accelerator import Accelerator, load_accelerator
from hwmodels._ir import Layer, OpKind
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
    chip, policy = acc
    imc, mem, dpu, dwpu, host = chip.imc, chip.memory, chip.dpu, chip.dwpu, chip.host
    hz, cores = chip.hz, chip.cores
    split = cores if mode == "latency" else 1  # cores one frame is spread over
    instances = cores if mode == "throughput" else 1  # frames in flight on the chip
    us_per_cycle = 1e6 / hz
    overhead_us = chip.layer_overhead_us / batch
    l1_tensor = mem.l1_bytes // 2  # a layer's input and output share L1
    level_gbps = {"l1": mem.l1_gbps, "l2": mem.l2_gbps / instances, "dram": mem.dram_gbps / instances}
    level_pj = {"l1": mem.l1_energy_pj_per_byte, "l2": mem.l2_energy_pj_per_byte, "dram": mem.dram_energy_pj_per_byte}

    def level(nbytes: int) -> str:
        return "l1" if nbytes <= l1_tensor else "l2" if nbytes <= mem.l2_bytes else "dram"

    weights_in = _place_weights(layers, acc, split)

    rows: list[LayerCost] = []
    host_ops, emulated_ops, infeasible_ops = [], [], []
    l2_bytes = dram_bytes = 0.0  # shared-memory traffic per frame, for the bandwidth cap
    prev_out_elems, prev_fusable = -1, False
    for i, layer in enumerate(layers):
        op, fn = layer.op, layer.fn
        unit = policy.units.get(op.value, "host")
        mapping = "native"
        passes = 1.0
        if not policy.runs_natively(unit, fn):
            if policy.unsupported == "dpu_emulate" and unit != "host":
                unit, mapping = "dpu", "emulated"
                passes = policy.emulation_passes.get(fn, policy.default_emulation_passes)
                emulated_ops.append(layer.name)
            elif policy.unsupported == "infeasible":
                mapping = "infeasible"
                infeasible_ops.append(layer.name)
            else:
                unit, mapping = "host", "host"
                host_ops.append(layer.name)
        if mapping == "infeasible":
            unit = "host"  # priced as a fallback so the figures stay finite; flagged undeployable

        out_bytes, in_bytes = layer.act_out_bytes, layer.act_in_bytes
        weight_src = weights_in[i]
        compute_pj = 0.0
        utilisation = 0.0
        if unit == "imc":
            g, m, k, n = layer.gemm
            tiles = imc_tiles(layer.gemm, imc.rows, imc.cols)
            cycles = max(m * tiles * imc.input_bits, m * g * n / imc.outputs_per_cycle) / min(split, tiles)
            compute_pj = m * g * _ceil_to(k, imc.gate_rows) * _ceil_to(n, imc.gate_cols) * imc.mac_energy_pj
            utilisation = layer.macs / (m * tiles * imc.rows * imc.cols)
        elif unit == "dwpu":
            work = layer.macs or layer.act_out_bytes * layer.kernel[0] * layer.kernel[1]
            cycles = work / dwpu.macs_per_cycle / split
            compute_pj = work * dwpu.mac_energy_pj
        elif unit == "dpu":
            work = (layer.macs or out_bytes) * passes
            cycles = work / dpu.ops_per_cycle / split
            compute_pj = work * dpu.op_energy_pj
            if op is OpKind.MATMUL and policy.matmul_array_rewrite:
                rewrite = _array_rewrite(layer, acc, split)
                if rewrite[0] * us_per_cycle < cycles * us_per_cycle:
                    cycles, compute_pj = rewrite
                    unit, mapping = "imc", "array_rewrite"
        elif unit == "dma":
            cycles = (in_bytes + out_bytes) / (mem.l1_gbps * 1e9 / hz) / split
        else:  # host: across the link and back
            link_s = (in_bytes + out_bytes) / (host.link_gbps * 1e9)
            cycles = (host.round_trip_us * 1e-6 + link_s + out_bytes / (host.gops * 1e9)) * hz
            compute_pj = (in_bytes + out_bytes) * host.link_energy_pj_per_byte
        compute_us = cycles * us_per_cycle

        # Fusion: an element-wise op on the previous op's output rides its output stream.
        fused = (
            prev_fusable
            and mapping == "native"
            and unit == "dpu"
            and op.value in policy.fusable
            and layer.act_in_bytes >= prev_out_elems == out_bytes
        )
        if fused:
            prev = rows[-1]
            # the producer's output no longer goes to memory: its write moves to this op
            rows[-1] = prev._replace(
                act_level="stream",
                activations_uj=prev.activations_uj - _write_uj(prev_out_elems, level(prev_out_elems), level_pj),
            )
            in_bytes -= prev_out_elems  # the streamed operand is not read from memory
            mapping = "fused"

        out_level = level(out_bytes)
        in_level = level(max(in_bytes, 1))
        act_pj = in_bytes * level_pj[in_level] + out_bytes * level_pj[out_level]
        act_us = in_bytes / (level_gbps[in_level] * 1e3) + out_bytes / (level_gbps[out_level] * 1e3)

        weight_bytes = layer.params if weight_src in ("l2", "dram") else 0
        weight_pj = weight_us = 0.0
        if weight_bytes:
            src_gbps = min(imc.write_gbps, level_gbps[weight_src])
            weight_us = weight_bytes / (src_gbps * 1e3) / batch / split
            weight_pj = weight_bytes * (level_pj[weight_src] + imc.write_energy_pj_per_byte) / batch
        if weight_src == "l2":
            l2_bytes += weight_bytes / batch
        elif weight_src == "dram":
            dram_bytes += weight_bytes / batch
        if in_level == "l2" or out_level == "l2":
            l2_bytes += (in_bytes if in_level == "l2" else 0) + (out_bytes if out_level == "l2" else 0)
        if in_level == "dram" or out_level == "dram":
            dram_bytes += (in_bytes if in_level == "dram" else 0) + (out_bytes if out_level == "dram" else 0)

        if fused:  # only what the producer cannot hide
            time_us = max(0.0, compute_us - rows[-1].time_us) + act_us
        else:
            time_us = max(compute_us, weight_us, act_us) + overhead_us
        # the chip's static power is shared by the frames in flight; a busy core draws its own
        static_uj = (chip.static_power_w / instances + chip.core_active_power_w * split) * time_us
        rows.append(
            LayerCost(
                layer.name, op, fn, unit, mapping, cycles, time_us, compute_pj * _PJ_TO_UJ,
                weight_pj * _PJ_TO_UJ, act_pj * _PJ_TO_UJ, static_uj,
                weight_src, out_level, utilisation, layer.macs,
            )
        )  # fmt: skip
        prev_out_elems, prev_fusable = out_bytes, unit in ("imc", "dwpu", "dpu") and mapping != "emulated"

    return _report(
        layers, rows, acc, mode, batch, weights_in, l2_bytes, dram_bytes, host_ops, emulated_ops, infeasible_ops
    )


def _write_uj(nbytes: int, lvl: str, level_pj: dict[str, float]) -> float:
    return nbytes * level_pj[lvl] * _PJ_TO_UJ


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
    static = [
        i for i, layer in enumerate(layers) if layer.params and policy.units.get(layer.op.value) == "imc" and layer.gemm
    ]
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


def _report(layers, rows, acc, mode, batch, weights_in, l2_bytes, dram_bytes, host_ops, emulated_ops, infeasible_ops):
    chip = acc.chip
    mem = chip.memory
    instances = chip.cores if mode == "throughput" else 1
    frame_us = sum(r.time_us for r in rows)
    fps = instances / (frame_us * 1e-6) if frame_us > 0 else float("inf")
    bound = "compute"
    if l2_bytes and mem.l2_gbps * 1e9 / l2_bytes < fps:
        fps, bound = mem.l2_gbps * 1e9 / l2_bytes, "l2_bandwidth"
    if dram_bytes and mem.dram_gbps * 1e9 / dram_bytes < fps:
        fps, bound = mem.dram_gbps * 1e9 / dram_bytes, "dram_bandwidth"
    dynamic = {
        "compute": sum(r.compute_uj for r in rows),
        "weights": sum(r.weights_uj for r in rows),
        "activations": sum(r.activations_uj for r in rows),
    }
    # static power over one frame's share of the chip's time, plus the busy cores' active power
    static_uj = chip.static_power_w / fps * 1e6 + chip.core_active_power_w * (chip.cores // instances) * frame_us
    energy_uj = sum(dynamic.values()) + static_uj
    per_unit: dict[str, dict[str, float]] = {}
    for r in rows:
        u = per_unit.setdefault(r.unit, {"time_us": 0.0, "energy_uj": 0.0, "layers": 0})
        u["time_us"] += r.time_us
        u["energy_uj"] += r.energy_uj
        u["layers"] += 1
    imc_macs = sum(r.macs for r in rows if r.utilisation)
    resident = {"imc": 0, "l2": 0, "dram": 0}
    for layer, src in zip(layers, weights_in, strict=True):
        if src:
            resident[src] += layer.params
    deployable = not infeasible_ops and not (resident["dram"] and mem.dram_bytes == 0)
    return CostReport(
        accelerator=acc.name,
        mode=mode,
        batch=batch,
        latency_ms=frame_us * batch / 1e3,
        throughput_fps=fps,
        energy_mj=energy_uj / 1e3,
        power_w=energy_uj * 1e-6 * fps,
        macs=sum(layer.macs for layer in layers),
        params=sum(layer.params for layer in layers),
        weight_bytes=sum(layer.weight_bytes for layer in layers),
        utilisation=sum(r.macs * r.utilisation for r in rows) / imc_macs if imc_macs else 0.0,
        bound=bound,
        weights_in=resident,
        energy_split_mj={**{k: v / 1e3 for k, v in dynamic.items()}, "static": static_uj / 1e3},
        per_unit=per_unit,
        deployable=deployable,
        host_ops=tuple(host_ops),
        emulated_ops=tuple(emulated_ops),
        infeasible_ops=tuple(infeasible_ops),
        layers=tuple(rows),
    )
