"""The cost model: cases derived by hand, properties, behaviours the reference sheet describes,
golden totals and bad configs. Torch-free except where a timm model is the subject."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import search_spaces as ss
from hwmodels import (
    Accelerator,
    AcceleratorError,
    Layer,
    OpKind,
    chip_grid,
    estimate,
    estimate_many,
    imc_tiles,
    load_accelerator,
)

ACC = load_accelerator("metis-like")
GOLDEN = Path(__file__).parent / "golden" / "hw_totals.json"


def linear(name: str, m: int, k: int, n: int, *, stage=None) -> Layer:
    """A static-weight matmul of m input vectors through a k x n INT8 weight matrix."""
    return Layer(
        name, OpKind.LINEAR, (m, k), (m, n), m * k * n, k * n, m * k, m * n, (1, m, k, n), stage=stage, fn="linear"
    )


def row(report, name):
    return next(r for r in report.layers if r.name == name)


# -- hand-derived cases ---------------------------------------------------------------------------


def test_a_512x512_int8_matmul_takes_8_cycles_per_input_vector():
    report = estimate([linear("fc", 100, 512, 512)], ACC)
    fc = row(report, "fc")
    assert fc.unit == "imc" and fc.cycles == 8 * 100  # one tile, bit-serial 8-bit inputs
    assert fc.utilisation == 1.0
    assert fc.compute_uj == pytest.approx(100 * 512 * 512 * 0.133e-6)  # 0.133 pJ per MAC
    assert fc.weights_in == "imc"  # 256 KiB: one of the four weight sets


def test_a_1024x1536_layer_is_tiled_2_by_3():
    assert imc_tiles((1, 10, 1024, 1536), 512, 512) == 6
    fc = row(estimate([linear("fc", 10, 1024, 1536)], ACC), "fc")
    # 6 tiles x 8 cycles per vector; the read-out (1536 / 64 = 24 per vector) is not the bound
    assert fc.cycles == 10 * 6 * 8


def test_gating_charges_only_the_32_row_and_column_blocks_in_use():
    fc = row(estimate([linear("fc", 7, 40, 40)], ACC), "fc")
    assert fc.compute_uj == pytest.approx(7 * 64 * 64 * 0.133e-6)  # 40 -> 64 rows and columns
    assert fc.utilisation == pytest.approx(40 * 40 / (512 * 512))


def test_a_depthwise_layer_runs_on_the_dwpu():
    c, h, w = 64, 56, 56
    macs = c * h * w * 9
    dw = Layer("dw", OpKind.DWCONV, (c, h, w), (c, h, w), macs, c * 9, c * h * w, c * h * w, (c, h * w, 9, 1),
               (3, 3), fn="dwconv")  # fmt: skip
    report = estimate([dw], ACC)
    assert row(report, "dw").unit == "dwpu"
    assert row(report, "dw").cycles == pytest.approx(macs / ACC.chip.dwpu.macs_per_cycle)
    # the per-unit summary is the layer's own figures, and names no unit that ran nothing
    layer = row(report, "dw")
    assert report.per_unit == {
        "dwpu": {"time_us": pytest.approx(layer.time_us), "energy_uj": pytest.approx(layer.energy_uj), "layers": 1}
    }


def _mlp(total_mib: float, layers: int = 8) -> list[Layer]:
    """`layers` square Linear layers of one token holding `total_mib` MiB of weights together."""
    n = int((total_mib * 2**20 / layers) ** 0.5)
    return [linear(f"fc{i}", 1, n, n) for i in range(layers)]


def test_weights_spill_from_the_arrays_to_l2_then_to_dram():
    small, medium, large = (estimate(_mlp(mib), ACC) for mib in (0.9, 8, 48))
    assert small.weights_in["l2"] == small.weights_in["dram"] == 0  # 0.9 MiB fits 1 MiB of arrays
    assert medium.weights_in["l2"] > 0 and medium.weights_in["dram"] == 0  # past the arrays: L2
    assert large.weights_in["dram"] > 0  # past the 32 MiB of L2: DRAM
    # time per weight byte, fixed per-kernel and per-inference costs aside
    per_byte = [(r.latency_ms - r.time_split_ms["overhead"]) / r.weight_bytes for r in (small, medium, large)]
    assert per_byte[0] < per_byte[1] < per_byte[2]  # each spill is a cliff in time per weight byte
    e_per_byte = [r.energy_split_mj["weights"] / r.weight_bytes for r in (small, medium, large)]
    assert e_per_byte[0] == 0 < e_per_byte[1] < e_per_byte[2]


@pytest.mark.parametrize("mode", ["throughput", "latency"])
def test_dram_weights_are_fetched_ahead_and_the_channel_caps_the_frame_rate(mode):
    r = estimate(_mlp(48), ACC, mode=mode)
    assert r.bound == "dram_bandwidth"
    # DRAM bytes per frame at the channel's rate, whatever the layers' own times add up to
    assert r.throughput_fps == pytest.approx(ACC.chip.memory.dram_gbps * 1e9 / r.weights_in["dram"], rel=1e-12)
    instances = ACC.chip.cores if mode == "throughput" else 1
    assert r.latency_ms == pytest.approx(instances / r.throughput_fps * 1e3, rel=1e-12)  # stretched to the cap
    # a DRAM-fed layer waits on its L2 -> array write only: as long as an L2-fed layer of the same
    # size (all eight are; the first also carries the inference's fixed cost, so it is left out)
    time_by_source = {row.weights_in: row.time_us for row in r.layers[1:]}
    assert time_by_source["dram"] == pytest.approx(time_by_source["l2"], rel=1e-9)


def _variant(tmp_path, text: str):
    path = tmp_path / "chip.yaml"
    path.write_text(textwrap.dedent(text))
    return load_accelerator(str(path))


def test_weights_past_l2_without_dram_are_not_deployable(tmp_path):
    no_dram = _variant(tmp_path, "base: metis-like\nname: no-dram\nmemory: {dram_bytes: 0}\n")
    assert no_dram.chip.cores == 4  # the rest comes from the base
    assert estimate(_mlp(8), no_dram).deployable
    assert not estimate(_mlp(48), no_dram).deployable


# -- activations in memory: large maps and the tensors held for later ----------------------------


def conv3x3(name: str, hw: int, cin: int, cout: int, *, held: int = 0) -> Layer:
    """A 3x3 conv over a `hw` x `hw` map, `held` bytes of other tensors alive across it."""
    return Layer(name, OpKind.CONV, (cin, hw, hw), (cout, hw, hw), hw * hw * cin * cout * 9, cin * cout * 9,
                 cin * hw * hw, cout * hw * hw, (1, hw * hw, cin * 9, cout), (3, 3), fn="conv", held_bytes=held)  # fmt: skip


def test_a_tensor_held_for_a_later_concat_pushes_a_large_map_out_of_l1():
    # 160x160x48 maps: 1.2 MB each, in L1 on their own (half of its 4 MiB per tensor)
    alone = [conv3x3("a", 160, 48, 48), conv3x3("b", 160, 48, 48)]
    skip = 2 * 2**20  # a 2 MiB branch awaiting its concat, alive across both
    held = [layer._replace(held_bytes=skip) for layer in alone]
    free, crowded = estimate(alone, ACC), estimate(held, ACC)
    assert {r.act_level for r in free.layers} == {"l1"}
    assert {r.act_level for r in crowded.layers} == {"l2"}  # the held branch leaves no room in L1
    assert crowded.energy_split_mj["activations"] > 3 * free.energy_split_mj["activations"]  # L2's pJ per byte
    assert crowded.latency_ms >= free.latency_ms  # its traffic at L2's bandwidth (hidden here behind compute)
    # small maps stay in L1 whatever is held beside them
    small = [conv3x3("s", 20, 48, 48, held=skip)]
    assert row(estimate(small, ACC), "s").act_level == "l1"
    # nothing held (the field left out, as lowering and older IRs do) prices as before
    assert estimate([conv3x3("a", 160, 48, 48, held=0)], ACC) == estimate([alone[0]], ACC)


def test_a_held_tensor_prices_alike_on_one_chip_and_on_many():
    layers = [conv3x3("a", 160, 48, 48, held=2**21), conv3x3("b", 160, 48, 48), conv3x3("c", 80, 48, 96, held=2**22)]
    accs = [ACC, *(acc for _, acc in chip_grid(ACC, {"l1_mib": [1, 8]}))]
    for acc, many in zip(accs, estimate_many([layers], accs)[0], strict=True):
        one = estimate(layers, acc)
        assert many.latency_ms == pytest.approx(one.latency_ms, rel=1e-9)
        assert many.energy_mj == pytest.approx(one.energy_mj, rel=1e-9)


def test_silu_rides_its_producers_stream_when_the_policy_fuses_it():
    c, hw = 64, 80
    conv = conv3x3("conv", hw, c, c)
    silu = Layer("silu", OpKind.ACT, (c, hw, hw), (c, hw, hw), act_in_bytes=c * hw * hw, act_out_bytes=c * hw * hw,
                 fn="silu")  # fmt: skip
    assert "silu" in ACC.mapping.fused_emulation  # the shipped policy: the SDK fuses Conv-Sigmoid-Mul
    unfused_policy = Accelerator(ACC.chip, ACC.mapping.model_copy(update={"fused_emulation": ()}))
    fused, unfused = estimate([conv, silu], ACC), estimate([conv, silu], unfused_policy)
    assert row(fused, "silu").mapping == "fused" and row(unfused, "silu").mapping == "emulated"
    assert fused.emulated_ops == unfused.emulated_ops == ("silu",)  # still emulated: Sigmoid + Mul
    assert row(fused, "conv").act_level == "stream"  # the conv's output is not written before the SiLU
    assert fused.latency_ms < unfused.latency_ms  # no kernel of its own, no memory round trip
    # on its own (nothing to ride) it is its own kernel either way
    assert row(estimate([silu], ACC), "silu").mapping == "emulated"


# -- the mapping policy ---------------------------------------------------------------------------


def test_unsupported_functions_follow_the_policy():
    layers = ss.lower(ss.get_preset("caformer_s18"), (3, 224, 224))  # LayerNorm, softmax, StarReLU
    emulated = estimate(layers, load_accelerator(unsupported="dpu_emulate"))
    host = estimate(layers, load_accelerator(unsupported="host_fallback"))
    strict = estimate(layers, load_accelerator(unsupported="infeasible"))
    assert emulated.deployable and emulated.emulated_ops and not emulated.host_ops
    assert {row(emulated, n).fn for n in emulated.emulated_ops} == {"layernorm", "softmax"}
    assert host.deployable and set(host.host_ops) == set(emulated.emulated_ops)
    assert host.latency_ms > emulated.latency_ms  # a PCIe round trip per fallen-back op
    assert not strict.deployable and set(strict.infeasible_ops) == set(emulated.emulated_ops)
    relu_net = ss.lower(ss.get_preset("poolformer_s12").model_copy(update={"act": "relu"}), (3, 224, 224))
    relu_report = estimate(relu_net, ACC)
    assert {row(relu_report, n).fn for n in relu_report.emulated_ops} == {"groupnorm", "layernorm"}


def test_bad_policy_names_the_choices():
    with pytest.raises(AcceleratorError, match=r"unsupported: 'maybe' is not one of \['dpu_emulate'"):
        load_accelerator(unsupported="maybe")


# -- behaviours the reference sheet describes ------------------------------------------------------


def test_attention_is_dominated_by_its_dynamic_matmuls_and_softmax():
    report = estimate(ss.lower(ss.get_preset("caformer_s18"), (3, 224, 224)), ACC)
    mixer = [r for r in report.layers if r.name.startswith("stages.2.blocks.0.mixer")]
    dynamic = sum(r.time_us for r in mixer if r.op in (OpKind.MATMUL, OpKind.SOFTMAX))
    static = sum(r.time_us for r in mixer if r.op is OpKind.LINEAR)
    assert dynamic > 2 * static


def test_depthwise_layers_are_not_free():
    """MBConv blocks: depthwise convs hold a few % of the MACs and a far larger share of the time."""
    mb = ss.ArchConfig.model_validate({"stages": [{"mixer": "mbconv", "depth": 4, "dim": 64, "mlp_ratio": 4}]})
    report = estimate(ss.lower(mb, (3, 224, 224)), ACC)
    dw = [r for r in report.layers if r.op is OpKind.DWCONV]
    mac_share = sum(r.macs for r in dw) / report.macs
    time_share = sum(r.time_us for r in dw) / (report.latency_ms * 1e3)
    assert mac_share < 0.1 and time_share > 3 * mac_share


def test_per_layer_overheads_are_not_free():
    """The same array work in 16 short kernels instead of 2 long ones: 14 more kernel overheads."""
    long = [linear(f"fc{i}", 512, 128, 128) for i in range(2)]
    short = [linear(f"fc{i}", 64, 128, 128) for i in range(16)]
    a, b = estimate(long, ACC), estimate(short, ACC)
    assert sum(r.cycles for r in a.layers) == pytest.approx(sum(r.cycles for r in b.layers))
    extra_us = (b.latency_ms - a.latency_ms) * 1e3
    assert extra_us == pytest.approx(14 * ACC.chip.layer_overhead_us, rel=0.05)


# -- properties -----------------------------------------------------------------------------------


def test_adding_a_block_never_lowers_latency_or_energy():
    for arch in ss.sample_archs(ss.get_space(), 150, seed=11):
        base = estimate(ss.lower(arch, (3, 224, 224)), ACC)
        for i, stage in enumerate(arch.stages):
            stages = [s.model_dump() for s in arch.stages]
            stages[i]["depth"] = stage.depth + 1
            deeper = ss.ArchConfig.model_validate({**arch.model_dump(), "stages": stages})
            more = estimate(ss.lower(deeper, (3, 224, 224)), ACC)
            assert more.latency_ms >= base.latency_ms - 1e-12, (arch.name, i)
            assert more.energy_mj >= base.energy_mj - 1e-12, (arch.name, i)


def test_a_bigger_array_never_raises_the_tile_count():
    layers = ss.lower(ss.get_preset("swin_tiny_like"), (3, 224, 224))
    gemms = [layer.gemm for layer in layers if layer.gemm]
    for small, big in [(256, 512), (512, 1024), (512, 768)]:
        assert all(imc_tiles(g, big, big) <= imc_tiles(g, small, small) for g in gemms)
    big_chip = load_accelerator("imc-8core-1024")
    a, b = estimate(layers, ACC), estimate(layers, big_chip)
    assert sum(r.cycles for r in b.layers if r.unit == "imc") <= sum(r.cycles for r in a.layers if r.unit == "imc")


def test_modes_and_batches():
    layers = ss.lower(ss.get_preset("poolformer_s12"), (3, 224, 224))
    through, latency = estimate(layers, ACC), estimate(layers, ACC, mode="latency")
    assert latency.latency_ms < through.latency_ms  # one frame over four cores
    assert through.throughput_fps > latency.throughput_fps  # four frames in flight
    batched = estimate(layers, ACC, batch=8)
    assert batched.throughput_fps > through.throughput_fps  # weight streams amortised over the batch
    assert batched.latency_ms > through.latency_ms
    with pytest.raises(ValueError, match="mode"):
        estimate(layers, ACC, mode="fast")
    with pytest.raises(ValueError, match="batch"):
        estimate(layers, ACC, batch=0)


# -- golden totals ------------------------------------------------------------------------------


def test_golden_totals():
    """Regenerate on purpose with `python tests/golden/regenerate.py` after a deliberate change."""
    sys.path.insert(0, str(GOLDEN.parent))
    from regenerate import totals

    expected = json.loads(GOLDEN.read_text())
    actual = totals()
    assert actual.keys() == expected.keys()
    for key, row_ in expected.items():
        exact = ("weights_in", "bound", "deployable", "emulated_ops")
        assert {k: actual[key][k] for k in exact} == {k: row_[k] for k in exact}, key
        for k in set(row_) - set(exact):
            assert actual[key][k] == pytest.approx(row_[k], rel=1e-9), (key, k)


# -- configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("base: metis-like\nname: x\ncores: 0\n", "cores: Input should be greater than 0"),
        ("base: metis-like\nname: x\nimc: {rows: -512}\n", "imc.rows: Input should be greater than 0"),
        ("base: metis-like\nname: x\nclock_ghz: 1\n", "clock_ghz: Extra inputs are not permitted"),
        ("base: nope\nname: x\n", "unknown accelerator 'nope'; known: imc-8core-1024, metis-like"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_bad_accelerator_files_name_the_field(tmp_path, text, message):
    with pytest.raises(AcceleratorError) as err:
        _variant(tmp_path, text)
    assert message in str(err.value)


def test_every_shipped_constant_documents_its_source():
    for path in (Path(load_accelerator.__code__.co_filename).parent / "accelerators").glob("*.yaml"):
        for line in path.read_text().splitlines():
            if ":" in line and not line.lstrip().startswith("#") and not line.rstrip().endswith(":"):
                key = line.split(":")[0].strip()
                if key not in ("name", "description", "base", "default_mapping"):
                    assert "#" in line, f"{path.name}: `{line.strip()}` has no unit/source comment"


def test_pricing_needs_no_torch():
    code = (
        "import sys, search_spaces as s, hwmodels as h\n"
        "r = h.estimate(s.lower(s.get_preset('caformer_s18'), (3, 224, 224)))\n"
        "chips = [a for _, a in h.chip_grid(h.load_accelerator(), {'cores': [1, 2, 4]})]\n"
        "t = h.estimate_many([s.lower(s.get_preset('caformer_s18'), (3, 224, 224))], chips)\n"
        "assert r.layers and len(t[0]) == 3 and h.area_mm2(chips[0].chip) and 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


ZOO = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "mobilenetv2_100", "efficientnet_b0",
    "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "mobilenetv4_conv_small",
    "mobilenetv4_conv_medium", "vit_tiny_patch16_224", "torchvision:squeezenet1_0", "torchvision:squeezenet1_1",
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO)
def test_any_pytorch_model_is_priced(name):
    import timm
    import torchvision

    model = getattr(torchvision.models, name[12:])() if name.startswith("torchvision:") else timm.create_model(name)
    report = estimate(ss.trace(model, (3, 224, 224)), ACC)
    assert report.params == sum(p.numel() for p in model.parameters())
    assert report.deployable and 0 < report.latency_ms < 100 and 0 < report.energy_mj < 100
    assert report.per_unit["imc"]["layers"] > 0


def test_a_mapping_must_place_every_op_kind(tmp_path):
    base = (Path(load_accelerator.__code__.co_filename).parent / "mappings" / "metis-sdk.yaml").read_text()
    path = tmp_path / "partial.yaml"
    path.write_text(base.replace("  softmax: dpu\n", "").replace("  conv: imc\n", "  convolution: imc\n"))
    with pytest.raises(AcceleratorError) as err:
        load_accelerator(mapping=str(path))
    assert "units.convolution" in str(err.value) and "'conv'" in str(err.value)
    path.write_text(base.replace("  softmax: dpu\n", ""))
    with pytest.raises(AcceleratorError, match=r"units: no unit for op kinds \['softmax'\]"):
        load_accelerator(mapping=str(path))
