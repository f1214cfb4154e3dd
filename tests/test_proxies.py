"""Zero-cost proxies on tiny models: every proxy scores, repeats under a seed, leaves the model alone,
and fails with a clear error where it cannot score."""

import gc
import math

import pytest
import torch
from torch import nn

import search_spaces as ss
from nas.data import load_dataset
from nas.proxies import PROXIES, ProxyError, needs_data, proxy_names, score
from nas.proxies._default import load_default


def tiny_cnn(num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, num_classes),
    )  # fmt: skip


def tiny_metaformer() -> nn.Module:
    torch.manual_seed(0)
    arch = ss.sample_archs(ss.get_space("metaformer-tiny"), 1, seed=1)[0]
    return ss.build_model(arch, num_classes=10, img_size=16)


@pytest.fixture(scope="module")
def batch():
    return load_dataset(split="train").batch(torch.arange(16), resolution=16)


@pytest.mark.parametrize("model_fn", [tiny_cnn, tiny_metaformer])
@pytest.mark.parametrize("name", proxy_names())
def test_every_proxy_scores_tiny_models_and_repeats_under_a_seed(name, model_fn, batch):
    model = model_fn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = score(model, *batch, names=[name], seed=0)
    assert set(first) == {name} and math.isfinite(first[name])
    assert score(model, *batch, names=[name], seed=0) == first
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), f"{name} changed the model"


def test_params_and_flops_are_the_counts(batch):
    model = tiny_cnn()
    s = score(model, *batch, names=["params", "flops"])
    assert s["params"] == sum(p.numel() for p in model.parameters())
    assert s["flops"] == 3 * 8 * 9 * 16 * 16 + 8 * 16 * 9 * 8 * 8 + 16 * 10  # convs + classifier, MACs


def test_data_free_proxies_ignore_the_data(batch):
    model = tiny_metaformer()
    x, y = batch
    noise = torch.randn_like(x)
    for name in ("synflow", "dss", "zen", "params", "flops"):
        assert not needs_data([name])
        real = score(model, x, y, names=[name])[name]
        assert score(model, noise, y, names=[name])[name] == real
        assert score(model, tuple(x.shape), names=[name])[name] == real  # the shape alone is enough


def test_data_proxies_use_the_data(batch):
    model = tiny_cnn()
    x, y = batch
    other = load_dataset(split="test").batch(torch.arange(16), resolution=16)
    for name in ("snip", "grad_norm", "fisher", "jacob_cov", "nwot", "zico"):
        assert needs_data([name])
        assert score(model, x, y, names=[name])[name] != score(model, *other, names=[name])[name], name


def test_seed_changes_random_proxies(batch):
    model = tiny_cnn()
    assert score(model, *batch, names=["zen"], seed=0) != score(model, *batch, names=["zen"], seed=1)


def test_default_is_the_shipped_combination_of_its_components(batch):
    model = tiny_metaformer()
    default = load_default()
    assert default.components and set(default.components) <= set(PROXIES)
    parts = score(model, *batch, names=default.components)
    assert score(model, *batch)["default"] == pytest.approx(default.combine(parts))
    assert list(score(model, *batch, names=["params", "default"])) == ["params", "default"]


def test_synflow_matches_a_hand_computed_value():
    # One linear layer y = W x on an all-ones input: synflow = sum |w * dR/dw| = sum |w| (dR/dw = 1).
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False))
    expected = math.log(float(model[1].weight.detach().abs().sum()))
    assert score(model, (2, 1, 2, 2), names=["synflow"])["synflow"] == pytest.approx(expected)


def test_unknown_names_and_bad_inputs(batch):
    model = tiny_cnn()
    with pytest.raises(ValueError, match="unknown proxy 'snipp'; known: synflow"):
        score(model, *batch, names=["snipp"])
    with pytest.raises(ProxyError, match="snip: need real images and labels, not just a shape"):
        score(model, (8, 3, 16, 16), names=["snip"])
    with pytest.raises(ValueError, match="targets: snip need"):
        score(model, batch[0], None, names=["snip"])
    with pytest.raises(ValueError, match="inputs: expected a \\(B, C, H, W\\) batch"):
        score(model, batch[0][0], batch[1], names=["snip"])
    with pytest.raises(TypeError, match=r"model: expected an nn\.Module"):
        score("resnet", *batch, names=["params"])


def test_models_a_proxy_cannot_handle(batch):
    x, y = batch
    with pytest.raises(ProxyError, match="synflow: the model has no Conv/Linear layers"):
        score(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), x, y, names=["synflow"])
    with pytest.raises(ProxyError, match="nwot: the model has no activation modules"):
        score(nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10)), x, y, names=["nwot"])
    with pytest.raises(ProxyError, match="expected \\(batch, classes\\) logits"):
        score(nn.Conv2d(3, 10, 3), x, y, names=["snip"])
    with pytest.raises(ProxyError, match="build it with num_classes=10 or more"):
        score(tiny_cnn(num_classes=5), x, y, names=["grad_norm"])
    with pytest.raises(ProxyError, match="fisher: the model failed on inputs of shape \\(16, 3, 16, 16\\)"):
        score(nn.Sequential(nn.Flatten(), nn.Linear(7, 10)), x, y, names=["fisher"])


TENSOR_TYPES = (torch.Tensor, nn.Parameter)  # exact types: isinstance() on every object trips deprecation shims


@pytest.mark.parametrize("name", proxy_names())
def test_proxies_leave_nothing_alive(name, batch):
    # A search scores thousands of candidates: a reference cycle holding activations (a grad hook that
    # captures its own tensor) would pile them up between garbage collections.
    model = tiny_cnn()
    score(model, *batch, names=[name])  # warm up lazy imports and caches
    gc.collect()
    gc.disable()
    try:
        before = sum(1 for o in gc.get_objects() if type(o) in TENSOR_TYPES)
        score(model, *batch, names=[name])
        after = sum(1 for o in gc.get_objects() if type(o) in TENSOR_TYPES)
    finally:
        gc.enable()
    assert after <= before, f"{name} left {after - before} tensors in reference cycles"
