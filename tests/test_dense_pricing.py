"""The model zoo's dense networks, built by ultralytics (the ``zoo`` extra, AGPL: benchmarks and
tests only) from its YAMLs without weights, traced whole at 640x640 and priced on the chip.
benchmarks/dense_pricing.py holds the figures against the zoo's."""

import sys
from pathlib import Path

import pytest

pytest.importorskip("ultralytics", reason="the zoo extra is not installed: pip install -e '.[zoo]'")

import torch

import search_spaces as ss
from hwmodels import estimate, load_accelerator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from dense_models import build_dense
from dense_pricing import before_structure, price, published_ratio, summary, without_lifetimes
from metis_published import DENSE_ZOO

pytestmark = pytest.mark.slow
SIZE = 640
ACC = load_accelerator("metis-like")


@pytest.fixture(scope="module")
def zoo():
    torch.set_num_threads(2)
    points = {p.name: p for p in DENSE_ZOO if p.name in ("YOLOv5n", "YOLOv8n")}
    models = {n: build_dense(p.yaml, p.head) for n, p in points.items()}
    return models, {n: ss.trace(m, (3, SIZE, SIZE)) for n, m in models.items()}


def test_the_deployed_networks_end_at_the_heads_raw_outputs(zoo):
    models, _ = zoo
    with torch.no_grad():
        v5 = models["YOLOv5n"].eval()(torch.zeros(1, 3, SIZE, SIZE))
        v8 = models["YOLOv8n"].eval()(torch.zeros(1, 3, SIZE, SIZE))
    # YOLOv5 v7.0's head: per level (strides 8, 16, 32) 3 anchors x (4 box + 1 objectness + 80 classes)
    assert [tuple(t.shape) for t in v5] == [(1, 255, SIZE // s, SIZE // s) for s in (8, 16, 32)]
    # YOLOv8's decoupled head: box distributions (4 x 16 bins) then class logits, per level; DFL is the host's
    assert [t.shape[1] for t in v8] == [64, 64, 64, 80, 80, 80]


def _textbook_conv_macs(model: torch.nn.Module) -> int:
    """Each conv's output elements x input channels per group x kernel area, counted by hooks."""
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        total += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, SIZE, SIZE))
    for hook in hooks:
        hook.remove()
    return total


def test_the_trace_counts_every_parameter_and_every_conv_mac(zoo):
    models, nets = zoo
    for name, model in models.items():
        layers = nets[name]
        assert sum(x.params for x in layers) == sum(p.numel() for p in model.parameters()), name
        assert sum(x.macs for x in layers) == _textbook_conv_macs(model), name  # conv-only networks


def test_dense_networks_are_priced_whole_with_their_lifetimes(zoo):
    _, nets = zoo
    for name, layers in nets.items():
        report = estimate(layers, ACC)
        assert report.deployable and 0 < report.throughput_fps < float("inf"), name
        assert max(x.held_bytes for x in layers) > 0, name  # skips and concat branches are held
        silu = [r for r in report.layers if r.fn == "silu"]
        assert silu and all(r.mapping == "fused" for r in silu), name  # conv -> BN -> SiLU, one stream
        assert ss.trace(torch.nn.Identity(), (3, 8, 8)) == []


def test_the_benchmark_prices_them_as_ratios_to_resnet50(zoo):
    import torchvision

    _, nets = zoo
    resnet50 = ss.trace(torchvision.models.resnet50(), (3, 224, 224))
    after = price(ACC, nets, resnet50)
    before = price(before_structure(ACC), without_lifetimes(nets), resnet50)
    for name in nets:
        assert 0 < after.ratio[name] < 1 and 0 < published_ratio(name) < 1  # slower than ResNet-50 at 224
        assert after.ratio[name] > before.ratio[name]  # SiLU no longer a kernel of its own
    median, worst, rho = summary(after, list(nets))
    assert 1 <= median <= worst and -1 <= rho <= 1
