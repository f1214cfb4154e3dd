"""Chip variants, the area model, the second round's cost terms and the batched pricing path, which
must agree with ``estimate`` to rounding on every shipped chip, swept variants, modes and batches."""

import pytest

import search_spaces as ss
from hwmodels import (
    MAX_VARIANTS,
    AcceleratorError,
    Layer,
    OpKind,
    accelerator_names,
    area_mm2,
    area_split_mm2,
    chip_grid,
    chip_variant,
    estimate,
    estimate_many,
    load_accelerator,
    peak_tops,
)

ACC = load_accelerator("metis-like")
SHAPE = (3, 224, 224)
TOTALS = ("latency_ms", "throughput_fps", "energy_mj", "power_w", "utilisation")


def _networks():
    nets = [ss.lower(ss.get_preset(name), SHAPE) for name in ss.PRESETS.names()]
    nets += [ss.lower(a, SHAPE) for a in ss.sample_archs(ss.get_space("metaformer"), 12, seed=5)]
    return nets


@pytest.mark.parametrize("mode", ["throughput", "latency"])
@pytest.mark.parametrize("batch", [1, 8])
def test_batched_pricing_agrees_with_estimate(mode, batch):
    accs = [load_accelerator(n) for n in accelerator_names()]
    accs += [acc for _, acc in chip_grid(ACC, {"cores": [1, 3], "array_cols": [128, 1024], "l2_mib": [2, 64]})]
    nets = _networks()
    for layers, row in zip(nets, estimate_many(nets, accs, mode=mode, batch=batch), strict=True):
        for acc, t in zip(accs, row, strict=True):
            r = estimate(layers, acc, mode=mode, batch=batch)
            for field in TOTALS:
                assert getattr(t, field) == pytest.approx(getattr(r, field), rel=1e-9, abs=1e-12), (acc.name, field)
            assert (t.bound, t.deployable, t.accelerator) == (r.bound, r.deployable, r.accelerator)


@pytest.mark.parametrize("policy", ["host_fallback", "infeasible"])
def test_batched_pricing_agrees_under_other_policies(policy):
    acc = load_accelerator(unsupported=policy)
    grid = {"cores": [1, 2, 4], "array_cols": [128, 512], "l2_mib": [2, 64]}
    accs = [acc, *(a for _, a in chip_grid(acc, grid))]  # 13 chips: one walk with per-chip arrays
    nets = _networks()[:6]
    for layers, row in zip(nets, estimate_many(nets, accs), strict=True):
        for a, t in zip(accs, row, strict=True):
            r = estimate(layers, a)
            assert t.latency_ms == pytest.approx(r.latency_ms, rel=1e-9) and t.deployable == r.deployable


def test_batched_pricing_needs_one_mapping_policy():
    with pytest.raises(ValueError, match="one mapping policy"):
        estimate_many([[]], [ACC, load_accelerator(unsupported="host_fallback")])
    assert estimate_many([[], []], []) == [[], []]


def test_a_variant_names_what_differs_and_scales_static_power_with_area():
    small = chip_variant(ACC, {"cores": 1, "l2_mib": 8})
    assert small.chip.name == "metis-like[cores=1,l2_mib=8]"
    assert small.chip.cores == 1 and small.chip.memory.l2_bytes == 8 << 20
    ratio = area_mm2(small.chip) / area_mm2(ACC.chip)
    assert small.chip.static_power_w == pytest.approx(ACC.chip.static_power_w * ratio)
    assert chip_variant(ACC, {"cores": 1, "static_power_w": 2.0}).chip.static_power_w == 2.0
    assert chip_variant(ACC, {"imc.outputs_per_cycle": 128}).chip.imc.outputs_per_cycle == 128
    assert chip_variant(ACC, {}) is ACC


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cors": 2}, "cors: not a chip parameter; use one of cores"),
        ({"cores": 0}, "cores: Input should be greater than 0"),
        ({"cores": "two"}, "cores: 'two' is not a number"),
        ({"imc.nope": 1}, "imc.nope: not a chip parameter"),
        ({"name": 1}, "name: not a chip parameter"),
    ],
)
def test_bad_variants_name_the_knob(changes, message):
    with pytest.raises(AcceleratorError, match=message):
        chip_variant(ACC, changes)


def test_a_grid_is_every_combination_and_bounded():
    grid = chip_grid(ACC, {"cores": [1, 2, 4], "array_cols": [256, 512]})
    assert [c for c, _ in grid][:2] == [{"cores": 1, "array_cols": 256}, {"cores": 1, "array_cols": 512}]
    assert len({a.chip.name for _, a in grid}) == 6
    with pytest.raises(AcceleratorError, match="over the limit"):
        chip_grid(ACC, {"cores": list(range(1, 65)), "clock_mhz": list(range(100, 200))})
    assert MAX_VARIANTS < 64 * 100
    with pytest.raises(AcceleratorError, match="cores: give a non-empty list"):
        chip_grid(ACC, {"cores": []})


def test_the_area_model_reproduces_the_published_density():
    """Metis: 209.6 TOPS at 6.65 TOPS/mm2 over its AI cores (ISSCC24)."""
    split = area_split_mm2(ACC.chip)
    cores = split["total"] - split["l2"]
    assert peak_tops(ACC.chip) == pytest.approx(209.6, rel=1e-3)
    assert peak_tops(ACC.chip) / cores == pytest.approx(6.65, rel=0.01)
    assert split["total"] == pytest.approx(sum(v for k, v in split.items() if k != "total"))
    bigger = chip_variant(ACC, {"array_cols": 1024})
    assert area_split_mm2(bigger.chip)["imc"] == pytest.approx(2 * split["imc"])


# -- the second round's terms -------------------------------------------------------------------


def _pool(name, c, hw):
    return Layer(name, OpKind.POOL, (c, hw, hw), (c, 1, 1), 0, 0, c * hw * hw, c, None, (hw, hw), fn="mean")


def test_a_global_reduction_drains_the_pipeline_once():
    layers = [_pool("p1", 64, 14), _pool("p2", 64, 14)]
    fast, slow = (chip_variant(ACC, {"sync_overhead_us": v}) for v in (0.5, 20.5))
    extra_us = (estimate(layers, slow).latency_ms - estimate(layers, fast).latency_ms) * 1e3
    assert extra_us == pytest.approx(2 * 20.0)  # one drain per global pool
    not_global = [
        Layer("p", OpKind.POOL, (64, 14, 14), (64, 7, 7), 0, 0, 64 * 196, 64 * 49, None, (2, 2), fn="avgpool")
    ]
    assert estimate(not_global, slow).latency_ms == estimate(not_global, fast).latency_ms


def test_every_inference_pays_the_frame_overhead():
    layers = [_pool("p", 64, 14)]
    a, b = (chip_variant(ACC, {"frame_overhead_us": v}) for v in (1, 101))
    assert (estimate(layers, b).latency_ms - estimate(layers, a).latency_ms) * 1e3 == pytest.approx(100)
    assert (estimate(layers, b, batch=4).latency_ms - estimate(layers, a, batch=4).latency_ms) * 1e3 == pytest.approx(
        100
    )


def test_small_layers_are_replicated_across_the_array():
    """A 27-input, 24-output conv (ResNet-10t's stem) fills 5 % of a 512x512 array: copies of its
    weights compute several output pixels per MVM, up to the mapping's limit and the read-out."""
    stem = Layer("stem", OpKind.CONV, (3, 224, 224), (24, 112, 112), 12544 * 27 * 24, 648, 150528, 301056,
                 (1, 12544, 27, 24), (3, 3), (2, 2), fn="conv")  # fmt: skip
    plain = ACC._replace(mapping=ACC.mapping.model_copy(update={"weight_replication": 1.0}))
    four = ACC._replace(mapping=ACC.mapping.model_copy(update={"weight_replication": 4.0}))
    assert estimate([stem], plain).layers[0].cycles == 12544 * 8
    assert estimate([stem], four).layers[0].cycles == max(12544 * 8 / 4, 12544 * 24 / 64)
    wide = Layer("fc", OpKind.LINEAR, (64, 512), (64, 512), 64 * 512 * 512, 512 * 512, 64 * 512, 64 * 512,
                 (1, 64, 512, 512), fn="linear")  # fmt: skip
    assert estimate([wide], four).layers[0].cycles == 64 * 8  # fills the array: nothing to copy
