import pytest
import timm
import torch

import search_spaces as ss
from hwmodels import total_params
from search_spaces.presets import TIMM_REFERENCE


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("preset", ss.PRESETS.names())
def test_preset_matches_timm_parameter_count(preset):
    timm_name, tolerance = TIMM_REFERENCE[preset]
    with torch.device("meta"):
        ours = _params(ss.build_model(ss.get_preset(preset), num_classes=1000, img_size=224))
        theirs = _params(timm.create_model(timm_name, num_classes=1000))
    if tolerance == 0:
        assert ours == theirs
    else:
        assert abs(ours / theirs - 1) <= tolerance, (ours, theirs)


@pytest.mark.parametrize("preset", ss.PRESETS.names())
def test_preset_lowering_counts_every_parameter(preset):
    arch = ss.get_preset(preset)
    with torch.device("meta"):
        built = _params(ss.build_model(arch, num_classes=1000, img_size=224))
    assert total_params(ss.lower(arch, (3, 224, 224))) == built


def test_every_preset_has_a_timm_reference():
    assert set(TIMM_REFERENCE) == set(ss.PRESETS.names())
