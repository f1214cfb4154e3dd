"""The two IR producers agree with each other and with fvcore."""

import warnings

import pytest
import timm
import torch
import torchvision

import search_spaces as ss
from hwmodels import COMPUTE_KINDS, OpKind, op_counts, total_macs, total_params

# fvcore's names for the ops that carry multiply-accumulates (it also counts norms and pooling).
FVCORE_MAC_OPS = {"conv", "linear", "matmul", "bmm", "addmm", "mm", "einsum", "baddbmm"}


def _assert_agree(lowered, traced, *, label):
    assert total_params(traced) == total_params(lowered), label
    assert total_macs(traced) == pytest.approx(total_macs(lowered), rel=0.005), label
    lowered_kinds, traced_kinds = op_counts(lowered), op_counts(traced)
    assert set(lowered_kinds) == set(traced_kinds), label
    for kind in COMPUTE_KINDS:
        assert lowered_kinds[kind] == traced_kinds[kind], (label, kind)


@pytest.mark.parametrize("preset", ss.PRESETS.names())
def test_lowering_matches_the_trace_of_the_built_preset(preset):
    arch = ss.get_preset(preset)
    model = ss.build_model(arch, num_classes=1000, img_size=224)
    _assert_agree(ss.lower(arch, (3, 224, 224)), ss.trace(model, (3, 224, 224)), label=preset)


@pytest.mark.parametrize("name", ss.space_names())
def test_lowering_matches_the_trace_of_sampled_networks(name):
    for arch in ss.sample_archs(ss.get_space(name), 15, seed=3):
        model = ss.build_model(arch, num_classes=10, in_chans=1, img_size=(64, 80))
        _assert_agree(ss.lower(arch, (1, 64, 80), num_classes=10), ss.trace(model, (1, 64, 80)), label=arch.name)


def test_lowering_is_layer_by_layer_and_attributed():
    layers = ss.lower(ss.get_preset("caformer_s18"), (3, 224, 224))
    qk = [layer for layer in layers if layer.op is OpKind.MATMUL and layer.name.endswith(":qk")]
    assert len(qk) == 12  # 9 + 3 attention blocks
    first = qk[0]
    assert (first.stage, first.block) == (2, 0)
    assert first.gemm == (10, 196, 32, 196)  # 10 heads of 14x14 tokens, head_dim 32
    assert first.macs == 10 * 196 * 32 * 196
    convs = [layer for layer in layers if layer.op is OpKind.DWCONV]
    assert convs[0].name == "stages.0.blocks.0.mixer.dwconv" and convs[0].kernel == (7, 7)


def test_lowering_rejects_bad_input_shapes():
    arch = ss.get_preset("poolformer_s12")
    with pytest.raises(ValueError, match=r"input_shape: expected \(C, H, W\)"):
        ss.lower(arch, (224, 224))
    with pytest.raises(ValueError, match="too small for the stem"):
        ss.lower(ss.get_preset("mixer_b16_like"), (3, 8, 8))
    with pytest.raises(TypeError, match="expected an ArchConfig"):
        ss.lower("poolformer_s12", (3, 224, 224))


def test_trace_prices_fused_and_unfused_attention_alike(unfused_attention):
    unfused = timm.create_model("vit_tiny_patch16_224")
    timm.layers.set_fused_attn(True)
    fused = timm.create_model("vit_tiny_patch16_224")
    a, b = ss.trace(unfused, (3, 224, 224)), ss.trace(fused, (3, 224, 224))
    assert total_macs(a) == total_macs(b)
    assert op_counts(a)[OpKind.MATMUL] == op_counts(b)[OpKind.MATMUL] == 24
    assert op_counts(a)[OpKind.SOFTMAX] == op_counts(b)[OpKind.SOFTMAX] == 12


def test_trace_rejects_what_is_not_a_module():
    with pytest.raises(TypeError, match=r"expected an nn\.Module"):
        ss.trace(lambda x: x, (3, 32, 32))


def _fvcore_macs(model: torch.nn.Module) -> int:
    with warnings.catch_warnings():  # fvcore.nn scripts its focal loss at import: torch's TorchScript warning
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flops = FlopCountAnalysis(model.eval(), torch.zeros(1, 3, 224, 224))
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return sum(v for op, v in flops.by_operator().items() if op in FVCORE_MAC_OPS)


EXTERNAL = ["resnet50", "mobilenetv2_100", "efficientnet_b0", "vit_tiny_patch16_224", "tv:squeezenet1_1"]


def _external(name: str) -> torch.nn.Module:
    if name.startswith("tv:"):
        return getattr(torchvision.models, name[3:])()
    return timm.create_model(name)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ss.PRESETS.names())
def test_preset_macs_agree_with_fvcore(preset, unfused_attention):
    arch = ss.get_preset(preset)
    model = ss.build_model(arch, num_classes=1000, img_size=224)
    assert total_macs(ss.lower(arch, (3, 224, 224))) == pytest.approx(_fvcore_macs(model), rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXTERNAL)
def test_traced_macs_of_timm_and_torchvision_models_agree_with_fvcore(name, unfused_attention):
    model = _external(name)
    layers = ss.trace(model, (3, 224, 224))
    assert total_params(layers) == sum(p.numel() for p in model.parameters())
    assert total_macs(layers) == pytest.approx(_fvcore_macs(model), rel=0.01)


@pytest.mark.parametrize("preset", ["caformer_s18", "swin_tiny_like", "poolformer_s12", "convformer_s18"])
def test_lowering_and_trace_name_the_same_functions(preset):
    """The cost model prices by function (GELU or LayerNorm may be unsupported): both producers
    must name them alike."""
    arch = ss.get_preset(preset)
    lowered = ss.lower(arch, (3, 64, 64))
    traced = ss.trace(ss.build_model(arch, img_size=64), (3, 64, 64))
    for kind in COMPUTE_KINDS | {OpKind.ACT}:
        assert {x.fn for x in lowered if x.op is kind} == {x.fn for x in traced if x.op is kind}, kind
