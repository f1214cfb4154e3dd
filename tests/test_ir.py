import subprocess
import sys

from hwmodels import Layer, OpKind, conv_kind, op_counts, total_macs, total_params


def test_conv_kinds():
    assert conv_kind(64, 64, (3, 3), groups=64) is OpKind.DWCONV
    assert conv_kind(32, 64, (3, 3), groups=32) is OpKind.DWCONV  # channel multiplier 2
    assert conv_kind(64, 128, (1, 1), groups=1) is OpKind.LINEAR
    assert conv_kind(64, 128, (3, 3), groups=1) is OpKind.CONV
    assert conv_kind(64, 128, (1, 1), groups=4) is OpKind.CONV  # grouped pointwise: not a plain GEMM


def test_totals_and_bytes():
    layers = [
        Layer("a", OpKind.LINEAR, (10, 4), (10, 8), macs=320, params=40, gemm=(1, 10, 4, 8)),
        Layer("b", OpKind.ACT, (10, 8), (10, 8)),
    ]
    assert total_macs(layers) == 320
    assert total_params(layers) == 40
    assert layers[0].weight_bytes == 40  # INT8
    assert op_counts(layers) == {OpKind.LINEAR: 1, OpKind.ACT: 1}


def test_hwmodels_and_lowering_do_not_import_torch():
    code = (
        "import sys, hwmodels, search_spaces as s\n"
        "s.lower(s.get_preset('caformer_s18'), (3, 224, 224))\n"
        "s.sample_archs(s.get_space(), 3)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
