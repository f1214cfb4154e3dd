import pytest
import torch

import search_spaces as ss
from search_spaces import ArchConfig


def _one_mixer_net(mixer: str, **options) -> ArchConfig:
    """Two stages: a conv front, then the mixer under test (timm's CAFormer layout)."""
    return ArchConfig.model_validate(
        {
            "stages": [
                {"mixer": "sepconv", "depth": 1, "dim": 32},
                {"mixer": mixer, "depth": 2, "dim": 64, **options},
            ],
        }
    )


@pytest.mark.parametrize("mixer", ss.MIXERS)
@pytest.mark.parametrize("norm", ss.NORMS)
def test_every_mixer_and_norm_builds_and_runs(mixer, norm):
    arch = _one_mixer_net(mixer).model_copy(update={"norm": norm})
    arch = ArchConfig.model_validate(arch.model_dump())  # re-validate the copy
    model = ss.build_model(arch, num_classes=7, img_size=(64, 48)).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 48))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("act", ss.ACTS)
def test_every_activation_trains_one_step(act):
    arch = ArchConfig.model_validate({**_one_mixer_net("attention").model_dump(), "act": act, "head": "mlp"})
    model = ss.build_model(arch, num_classes=5, img_size=32)
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("preset", ss.PRESETS.names())
def test_presets_run_at_low_resolution(preset):
    model = ss.build_model(ss.get_preset(preset), num_classes=10, img_size=64).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


def test_window_larger_than_the_map_is_clamped():
    arch = _one_mixer_net("window_attention", window_size=14)
    model = ss.build_model(arch, img_size=32)  # stage 1 runs at 4x4: the window becomes 4x4
    attn = model.stages[1].blocks[0].mixer
    assert attn.geometry.window == (4, 4) and attn.geometry.shift == (0, 0)
    assert attn.attn.relative_position_bias_table.shape == (7 * 7, 2)


def test_window_attention_pads_maps_that_are_not_whole_windows():
    arch = _one_mixer_net("window_attention", window_size=4)
    model = ss.build_model(arch, img_size=(40, 56)).eval()  # stage 1: 5x7, padded to 8x8
    assert model.stages[1].blocks[1].mixer.geometry.shift == (2, 2)
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, 3, 40, 56))).all()


def test_spatial_mlp_names_the_fix_for_a_wrong_resolution():
    model = ss.build_model(_one_mixer_net("spatial_mlp"), img_size=64)
    with pytest.raises(ValueError, match="build the model with the img_size"):
        model(torch.randn(1, 3, 32, 32))


def test_build_model_rejects_what_is_not_a_config():
    with pytest.raises(TypeError, match="expected an ArchConfig"):
        ss.build_model({"stages": []})
    with pytest.raises(ValueError, match="num_classes"):
        ss.build_model(ss.get_preset("poolformer_s12"), num_classes=-1)
