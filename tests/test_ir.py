import subprocess
import sys

import search_spaces as ss
from hwmodels import STATIC_WEIGHT_KINDS, OpKind, conv_kind, held_bytes, op_counts, total_macs, total_params


def test_conv_kinds():
    assert conv_kind(64, 64, (3, 3), groups=64) is OpKind.DWCONV
    assert conv_kind(32, 64, (3, 3), groups=32) is OpKind.DWCONV  # channel multiplier 2
    assert conv_kind(64, 128, (1, 1), groups=1) is OpKind.LINEAR
    assert conv_kind(64, 128, (3, 3), groups=1) is OpKind.CONV
    assert conv_kind(64, 128, (1, 1), groups=4) is OpKind.CONV  # grouped pointwise: not a plain GEMM


def test_totals_and_bytes_match_the_built_network():
    """A small real network lowered by the project against figures counted independently on the
    PyTorch model it builds: parameters, and per conv / linear the textbook MACs (output elements x
    input channels per group x kernel area) and the activation bytes they read and write (INT8)."""
    import torch

    arch = ss.ArchConfig.model_validate(
        {
            "stages": [
                {"mixer": "mbconv", "depth": 1, "dim": 16, "mlp_ratio": 4},
                {"mixer": "pooling", "depth": 2, "dim": 32},
            ]
        }
    )
    layers = ss.lower(arch, (3, 32, 32), num_classes=10)
    model = ss.build_model(arch, num_classes=10, img_size=32).eval()
    counted = {"macs": 0, "in": 0, "out": 0, OpKind.CONV: 0, OpKind.LINEAR: 0, OpKind.DWCONV: 0}

    def count(module, inputs, output):
        if isinstance(module, torch.nn.Linear):
            counted["macs"] += output.numel() * module.in_features
            counted[OpKind.LINEAR] += 1
        else:
            kh, kw = module.kernel_size
            counted["macs"] += output.numel() * module.in_channels // module.groups * kh * kw
            if module.groups == module.in_channels > 1:
                counted[OpKind.DWCONV] += 1
            elif (kh, kw, module.groups) == (1, 1, 1):
                counted[OpKind.LINEAR] += 1  # pointwise: a plain GEMM
            else:
                counted[OpKind.CONV] += 1
        counted["in"] += inputs[0].numel()
        counted["out"] += output.numel()

    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
            module.register_forward_hook(count)
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))

    params = sum(p.numel() for p in model.parameters())
    assert total_params(layers) == params
    assert sum(layer.weight_bytes for layer in layers) == params  # INT8: a byte a weight
    assert total_macs(layers) == counted["macs"]
    static = [layer for layer in layers if layer.op in STATIC_WEIGHT_KINDS]
    assert sum(layer.act_in_bytes for layer in static) == counted["in"]
    assert sum(layer.act_out_bytes for layer in static) == counted["out"]
    kinds = op_counts(layers)
    assert {kind: kinds[kind] for kind in STATIC_WEIGHT_KINDS} == {kind: counted[kind] for kind in STATIC_WEIGHT_KINDS}
    assert kinds[OpKind.DWCONV] == 1 and kinds[OpKind.POOL] >= 2  # the MBConv's depthwise conv, the two pooling mixers


def test_hwmodels_and_lowering_do_not_import_torch():
    code = (
        "import sys, hwmodels, search_spaces as s\n"
        "s.lower(s.get_preset('caformer_s18'), (3, 224, 224))\n"
        "s.sample_archs(s.get_space(), 3)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- tensor lifetimes ---------------------------------------------------------------------------


def test_held_bytes_counts_what_lives_across_an_op_but_not_what_it_reads():
    # tensor 0 (100 B) from op 0, last read by op 4 (and read by op 2 on the way); tensor 1 (10 B) op 1 -> 2
    held = held_bytes([0, 1], [4, 2], [100, 10], reads=[[], [0], [0, 1], [], [0]])
    assert held == [0, 0, 0, 100, 0]  # op 1 and op 2 read it; op 3 runs while it waits for op 4
    assert held_bytes([0, 1], [1, 2], [5, 5]) == [0, 0, 0]  # consumed at once: nothing held
    assert held_bytes([], [], []) == []


def test_trace_holds_a_skip_and_a_concat_branch_across_the_ops_between():
    import torch
    from torch import nn

    class Branches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = (nn.Conv2d(8, 8, 3, padding=1) for _ in range(3))

        def forward(self, x):
            y = self.a(x)  # kept for the concat
            z = self.c(torch.relu(self.b(y)))
            return torch.cat([y, z], 1)

    layers = ss.trace(Branches(), (8, 16, 16))
    by_name = {layer.name.split(":")[0]: layer for layer in layers}
    y_bytes = 8 * 16 * 16
    assert by_name["b"].held_bytes == 0  # b reads y: an input, not a held tensor
    assert by_name["relu"].held_bytes == by_name["c"].held_bytes == y_bytes
    assert by_name["cat"].held_bytes == 0 and by_name["a"].held_bytes == 0
    # a chain without skips holds nothing, and lowering (which does not track lifetimes) leaves 0
    assert all(layer.held_bytes == 0 for layer in ss.trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (3, 8, 8)))
    assert all(layer.held_bytes == 0 for layer in ss.lower(ss.get_preset("poolformer_s12"), (3, 64, 64)))
