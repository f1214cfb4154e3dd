"""``estimate_many``: the totals of ``estimate`` for many networks on many chips in one vectorised
pass (NumPy over layers x chips), for sweeps, comparisons and co-design, where the same networks
are priced on hundreds of chip variants.

It is the same model as ``estimate`` (tests hold the two equal on every shipped accelerator and on
swept variants); what it drops is the per-layer table. The chip may vary freely between the
accelerators; the mapping policy must be one for all (it decides routing and fusion, which are
computed once per network).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from hwmodels._accelerator import Accelerator
from hwmodels._estimate import MODES, _is_global, _place_weights, _route, estimate
from hwmodels._ir import Layer, OpKind

_UNITS = ("imc", "dwpu", "dpu", "dma", "host")
_VECTOR_MIN = 3  # chips from which the vectorised path beats one estimate() per chip (benchmarks/pricing_speed.py)


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


class _Network(NamedTuple):
    """A network's chip-independent columns under one mapping policy (one entry per layer)."""

    layers: Sequence[Layer]
    unit: np.ndarray  # index into _UNITS
    passes: np.ndarray
    rewritable: np.ndarray  # a dynamic matmul the policy may write into the arrays
    fused: np.ndarray  # rides the previous op's output stream
    run: np.ndarray  # index of the producer whose stream a fused op rides (itself if not fused)
    g: np.ndarray
    m: np.ndarray
    k: np.ndarray
    n: np.ndarray
    macs: np.ndarray
    params: np.ndarray
    in_bytes: np.ndarray  # read from memory (a fused op's streamed operand removed)
    out_bytes: np.ndarray
    producer_out: np.ndarray  # bytes a fused op's producer no longer writes (at the producer's index)
    dw_work: np.ndarray
    global_pool: np.ndarray
    infeasible: bool


def _columns(layers: Sequence[Layer], acc: Accelerator) -> _Network:
    policy = acc.mapping
    fusable = frozenset(policy.fusable)
    n_layers = len(layers)
    unit = np.zeros(n_layers, np.int8)
    passes = np.ones(n_layers)
    cols = {name: np.zeros(n_layers) for name in ("g", "m", "k", "n", "macs", "params", "in", "out", "dw", "prod")}
    rewritable, fused, global_pool = (np.zeros(n_layers, bool) for _ in range(3))
    run = np.arange(n_layers)
    route: dict = {}
    infeasible = False
    prev_out, prev_fusable = -1, False
    for i, layer in enumerate(layers):
        key = (layer.op, layer.fn)
        if key not in route:
            route[key] = _route(policy, *key)
        u, mapping, p = route[key]
        infeasible |= mapping == "infeasible"
        unit[i], passes[i] = _UNITS.index(u), p
        in_bytes, out_bytes = layer.act_in_bytes, layer.act_out_bytes
        if layer.gemm:
            cols["g"][i], cols["m"][i], cols["k"][i], cols["n"][i] = layer.gemm
        cols["macs"][i], cols["params"][i], cols["out"][i] = layer.macs, layer.params, out_bytes
        cols["dw"][i] = layer.macs or out_bytes * layer.kernel[0] * layer.kernel[1]
        rewritable[i] = u == "dpu" and layer.op is OpKind.MATMUL and policy.matmul_array_rewrite
        if (
            prev_fusable and mapping == "native" and u == "dpu" and layer.op in fusable
            and out_bytes == prev_out and in_bytes >= prev_out
        ):  # fmt: skip
            fused[i], run[i] = True, run[i - 1]
            cols["prod"][i - 1] = prev_out
            in_bytes -= prev_out
        cols["in"][i] = in_bytes
        global_pool[i] = layer.op is OpKind.POOL and out_bytes * 4 <= layer.act_in_bytes and _is_global(layer.out_shape)
        prev_out, prev_fusable = out_bytes, u not in ("dma", "host") and mapping != "emulated"
    return _Network(
        layers, unit, passes, rewritable, fused, run, cols["g"], cols["m"], cols["k"], cols["n"],
        cols["macs"], cols["params"], cols["in"], cols["out"], cols["prod"], cols["dw"], global_pool, infeasible,
    )  # fmt: skip


def _chip_columns(accs: Sequence[Accelerator], mode: str) -> dict[str, np.ndarray]:
    """Per-chip constants as (chips, 1) columns, broadcasting against (1, layers)."""

    def col(fn) -> np.ndarray:
        return np.array([float(fn(a.chip)) for a in accs])[:, None]

    split = col(lambda c: c.cores if mode == "latency" else 1)
    instances = col(lambda c: c.cores if mode == "throughput" else 1)
    return {
        "split": split,
        "instances": instances,
        "hz": col(lambda c: c.hz),
        "rows": col(lambda c: c.imc.rows),
        "cols": col(lambda c: c.imc.cols),
        "bits": col(lambda c: c.imc.input_bits),
        "gate_r": col(lambda c: c.imc.gate_rows),
        "gate_c": col(lambda c: c.imc.gate_cols),
        "mac_pj": col(lambda c: c.imc.mac_energy_pj),
        "opc": col(lambda c: c.imc.outputs_per_cycle),
        "write_gbps": col(lambda c: c.imc.write_gbps),
        "write_pj": col(lambda c: c.imc.write_energy_pj_per_byte),
        "dwpu_rate": col(lambda c: c.dwpu.macs_per_cycle) * split,
        "dwpu_pj": col(lambda c: c.dwpu.mac_energy_pj),
        "dpu_rate": col(lambda c: c.dpu.ops_per_cycle) * split,
        "dpu_pj": col(lambda c: c.dpu.op_energy_pj),
        "dma_bpc": col(lambda c: c.memory.l1_gbps * 1e9 / c.hz) * split,
        "l1_tensor": col(lambda c: c.memory.l1_bytes // 2),
        "l2_size": col(lambda c: c.memory.l2_bytes),
        "l1_pj": col(lambda c: c.memory.l1_energy_pj_per_byte),
        "l2_pj": col(lambda c: c.memory.l2_energy_pj_per_byte),
        "dram_pj": col(lambda c: c.memory.dram_energy_pj_per_byte),
        "l1_us": 1e-3 / col(lambda c: c.memory.l1_gbps),
        "l2_us": 1e-3 * instances / col(lambda c: c.memory.l2_gbps),
        "dram_us": 1e-3 * instances / col(lambda c: c.memory.dram_gbps),
        "l2_gbps": col(lambda c: c.memory.l2_gbps),
        "dram_gbps": col(lambda c: c.memory.dram_gbps),
        "dram_bytes": col(lambda c: c.memory.dram_bytes),
        "link_gbps": col(lambda c: c.host.link_gbps),
        "round_trip_us": col(lambda c: c.host.round_trip_us),
        "host_gops": col(lambda c: c.host.gops),
        "link_pj": col(lambda c: c.host.link_energy_pj_per_byte),
        "overhead_us": col(lambda c: c.layer_overhead_us),
        "sync_us": col(lambda c: c.sync_overhead_us),
        "frame_us": col(lambda c: c.frame_overhead_us),
        "static_w": col(lambda c: c.static_power_w),
        "active_w": col(lambda c: c.core_active_power_w),
        "cores": col(lambda c: c.cores),
    }


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
    if mode not in MODES:
        raise ValueError(f"mode: {mode!r} is not one of {MODES}")
    if batch < 1:
        raise ValueError(f"batch: must be >= 1, got {batch}")
    if not accelerators:
        return [[] for _ in networks]
    if any(a.mapping != accelerators[0].mapping for a in accelerators):
        raise ValueError("accelerators: estimate_many needs one mapping policy for all; group them by mapping")
    if len(accelerators) < _VECTOR_MIN:  # too few chips to pay for the arrays: the scalar path, same figures
        return [
            [Totals.of(estimate(layers, acc, mode=mode, batch=batch)) for acc in accelerators] for layers in networks
        ]
    c = _chip_columns(accelerators, mode)
    with np.errstate(divide="ignore", invalid="ignore"):  # columns of other units' layers, never selected
        return [_price(_columns(layers, accelerators[0]), accelerators, c, batch) for layers in networks]


def _price(net: _Network, accs: Sequence[Accelerator], c: dict[str, np.ndarray], batch: int) -> list[Totals]:
    us_per_cycle = 1e6 / c["hz"]
    split, unit = c["split"], net.unit
    g, m, k, n = net.g, net.m, net.k, net.n
    is_imc, is_dwpu, is_dpu, is_dma = (unit == i for i in range(4))  # the rest: the host

    # compute: IMC tiles (with small layers' weights copied block-diagonally), DWPU, DPU, DMA, host
    rows, cols = c["rows"], c["cols"]
    safe_k, safe_n = np.maximum(k, 1), np.maximum(n, 1)
    tiles = g * np.ceil(safe_k / rows) * np.ceil(safe_n / cols)
    replication = int(accs[0].mapping.weight_replication)
    copies = np.minimum(np.minimum(np.minimum(replication, rows // safe_k), cols // safe_n), m)
    copies = np.where((tiles == 1) & (replication > 1), copies, 1.0)
    imc_cycles = np.maximum(m * tiles * c["bits"] / copies, m * g * n / c["opc"]) / np.minimum(split, tiles)
    gated = m * g * np.ceil(safe_k / c["gate_r"]) * c["gate_r"] * np.ceil(safe_n / c["gate_c"]) * c["gate_c"]
    imc_pj = gated * c["mac_pj"]
    dpu_work = np.where(net.macs > 0, net.macs, net.out_bytes) * net.passes
    dpu_cycles, dpu_pj = dpu_work / c["dpu_rate"], dpu_work * c["dpu_pj"]
    # a dynamic matmul may write one operand into the arrays instead, when that is faster
    write_cycles = g * k * n / (c["write_gbps"] * 1e9) * c["hz"]
    rw_cycles = (write_cycles + m * tiles * c["bits"]) / np.minimum(split, tiles)
    rw_pj = g * k * n * c["write_pj"] + gated * c["mac_pj"]
    rewrite = net.rewritable & (rw_cycles < dpu_cycles)
    dpu_cycles, dpu_pj = np.where(rewrite, rw_cycles, dpu_cycles), np.where(rewrite, rw_pj, dpu_pj)
    moved = net.in_bytes + net.out_bytes  # DMA and host ops are never fused: all they read
    link_s = moved / (c["link_gbps"] * 1e9)
    host_cycles = (c["round_trip_us"] * 1e-6 + link_s + net.out_bytes / (c["host_gops"] * 1e9)) * c["hz"]
    cycles = np.select(
        [is_imc, is_dwpu, is_dpu, is_dma],
        [imc_cycles, net.dw_work / c["dwpu_rate"], dpu_cycles, moved / c["dma_bpc"]],
        host_cycles,
    )
    compute_pj = np.select(
        [is_imc, is_dwpu, is_dpu, is_dma],
        [imc_pj, net.dw_work * c["dwpu_pj"], dpu_pj, 0.0],
        moved * c["link_pj"],
    )
    compute_us = cycles * us_per_cycle

    # activations at the memory level their size fits
    def level(nbytes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        in_l1, in_l2 = nbytes <= c["l1_tensor"], nbytes <= c["l2_size"]
        return in_l1, ~in_l1 & in_l2

    in_l1, in_l2 = level(net.in_bytes)
    out_l1, out_l2 = level(net.out_bytes)
    pj_of = lambda l1, l2: np.where(l1, c["l1_pj"], np.where(l2, c["l2_pj"], c["dram_pj"]))  # noqa: E731
    us_of = lambda l1, l2: np.where(l1, c["l1_us"], np.where(l2, c["l2_us"], c["dram_us"]))  # noqa: E731
    act_pj = net.in_bytes * pj_of(in_l1, in_l2) + net.out_bytes * pj_of(out_l1, out_l2)
    prod_l1, prod_l2 = level(net.producer_out)
    act_pj = act_pj - net.producer_out * pj_of(prod_l1, prod_l2)  # a fused consumer's producer writes nothing
    act_us = net.in_bytes * us_of(in_l1, in_l2) + net.out_bytes * us_of(out_l1, out_l2)
    l2_traffic = (net.in_bytes * in_l2 + net.out_bytes * out_l2).sum(axis=1)
    dram_traffic = (net.in_bytes * ~(in_l1 | in_l2) + net.out_bytes * ~(out_l1 | out_l2)).sum(axis=1)

    # weights streamed every frame, where they do not fit the arrays (placement per chip)
    weight_us = np.zeros_like(compute_us)
    weight_pj = np.zeros_like(compute_us)
    per_frame = net.params / batch
    resident_dram = np.zeros(len(accs))
    placements: dict[tuple, np.ndarray] = {}  # chips of one array and L2 size place weights alike
    for a, acc in enumerate(accs):
        imc = acc.chip.imc
        key = (imc.rows, imc.cols, imc.weight_sets, acc.chip.memory.l2_bytes, int(split[a, 0]))
        if key not in placements:
            placements[key] = np.array(_place_weights(net.layers, acc, key[-1]))
        source = placements[key]
        streamed, from_dram = (source == "l2") | (source == "dram"), source == "dram"
        if streamed.any():  # DRAM weights are fetched ahead into L2: the layer waits on L2 only
            us = max(c["l2_us"][a, 0], 1e-3 / c["write_gbps"][a, 0]) / split[a, 0]
            weight_us[a, streamed] = per_frame[streamed] * us
            weight_pj[a, streamed] = per_frame[streamed] * (c["l2_pj"][a, 0] + c["write_pj"][a, 0])
            weight_pj[a, from_dram] += per_frame[from_dram] * c["dram_pj"][a, 0]
            l2_traffic[a] += per_frame[streamed].sum()
            dram_traffic[a] += per_frame[from_dram].sum()
        resident_dram[a] = net.params[from_dram].sum()

    # time: a fused op shows only what its producer's stream cannot hide
    longest = np.maximum(np.maximum(compute_us, weight_us), act_us)
    fixed = (c["overhead_us"] + c["sync_us"] * net.global_pool) / batch
    fixed[:, :1] += c["frame_us"] / batch  # the inference's own start rides its first kernel
    producer_stream = longest[:, net.run]
    ride = np.where(net.fused, compute_us, 0.0)
    starts = ~net.fused
    cum = np.cumsum(ride, axis=1)
    run_base = cum[:, np.flatnonzero(starts)][:, np.cumsum(starts) - 1]  # cumulative ride at each run's producer
    ridden = cum - run_base
    exposed = np.maximum(ridden - producer_stream, 0) - np.maximum(ridden - ride - producer_stream, 0)
    time_us = np.where(net.fused, exposed + act_us, longest + fixed)
    frame_us = time_us.sum(axis=1)

    wait = {
        "compute": np.where(net.fused, exposed, np.where(longest == compute_us, longest, 0)).sum(axis=1),
        "weight_stream": np.where(~net.fused & (longest != compute_us) & (longest == weight_us), longest, 0).sum(
            axis=1
        ),
        "activations": np.where(
            net.fused, act_us, np.where((longest != compute_us) & (longest != weight_us), longest, 0)
        ).sum(axis=1),
        "overhead": np.where(net.fused, 0, fixed).sum(axis=1),
    }
    instances = c["instances"][:, 0]
    fps = instances / (frame_us * 1e-6)
    dynamic_pj = (compute_pj + weight_pj + act_pj).sum(axis=1)
    imc_util_macs = np.where(is_imc & (net.macs > 0), net.macs, 0)
    util_den = imc_util_macs.sum()
    utilisation = (
        (imc_util_macs * net.macs / np.maximum(m * tiles * rows * cols, 1)).sum(axis=1) / util_den
        if util_den
        else np.zeros(len(accs))
    )
    out = []
    names = list(wait)
    for a, acc in enumerate(accs):
        bound = max(names, key=lambda w: wait[w][a])
        f = fps[a]
        l2_t, dram_t = l2_traffic[a], dram_traffic[a]
        if l2_t and c["l2_gbps"][a, 0] * 1e9 / l2_t < f:
            f, bound = c["l2_gbps"][a, 0] * 1e9 / l2_t, "l2_bandwidth"
        if dram_t and c["dram_gbps"][a, 0] * 1e9 / dram_t < f:
            f, bound = c["dram_gbps"][a, 0] * 1e9 / dram_t, "dram_bandwidth"
        static_mj = (
            c["static_w"][a, 0] / f * 1e6 + c["active_w"][a, 0] * (c["cores"][a, 0] // instances[a]) * frame_us[a]
        ) / 1e3
        energy = dynamic_pj[a] * 1e-9 + static_mj
        deployable = not net.infeasible and not (resident_dram[a] and c["dram_bytes"][a, 0] == 0)
        latency_ms = max(frame_us[a], instances[a] * 1e6 / f) * batch / 1e3  # the shared memory's cap
        out.append(Totals(acc.name, latency_ms, f, energy, energy * 1e-3 * f, float(utilisation[a]), bound, deployable))
    return out
