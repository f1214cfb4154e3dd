import json

import pytest
from pydantic import ValidationError

from search_spaces import ArchConfig, StageConfig, get_preset

CAFORMER = {
    "stages": [
        {"mixer": "sepconv", "depth": 3, "dim": 64},
        {"mixer": "sepconv", "depth": 3, "dim": 128},
        {"mixer": "attention", "depth": 9, "dim": 320},
        {"mixer": "attention", "depth": 3, "dim": 512},
    ],
}


def test_json_round_trip_and_hash():
    arch = get_preset("swin_tiny_like")
    again = ArchConfig.from_json(arch.to_json())
    assert again == arch and again.arch_hash == arch.arch_hash
    assert hash(again) == hash(arch)
    assert len({arch, again, get_preset("caformer_s18")}) == 2


def test_two_spellings_of_one_network_hash_the_same():
    explicit = {
        "stem": "conv",
        "stem_stride": 4,
        "norm": "layernorm_nobias",
        "stages": [
            {"mixer": "sepconv", "depth": 3, "dim": 64, "kernel_size": 7, "mlp_ratio": 4},
            {"mixer": "pooling", "depth": 0, "dim": 96},  # an empty stage builds nothing
            {"mixer": "sepconv", "depth": 3, "dim": 128, "mlp_ratio": 4.0},
            {"dim": 320, "depth": 9, "mixer": "attention", "head_dim": 32},
            {"mixer": "attention", "depth": 3, "dim": 512},
        ],
    }
    a, b = ArchConfig.model_validate(CAFORMER), ArchConfig.model_validate(explicit)
    assert a == b
    assert a.arch_hash == b.arch_hash
    assert len(b.stages) == 4


def test_different_networks_hash_differently():
    a = ArchConfig.model_validate(CAFORMER)
    changed = json.loads(a.to_json())
    changed["stages"][2]["head_dim"] = 64
    assert ArchConfig.model_validate(changed).arch_hash != a.arch_hash


def test_options_a_mixer_uses_get_defaults():
    stage = StageConfig(mixer="window_attention", depth=2, dim=96)
    assert (stage.window_size, stage.head_dim, stage.kernel_size) == (7, 32, None)
    assert stage.num_heads == 3


def test_name_is_short_and_readable():
    caformer = get_preset("caformer_s18")
    assert caformer.name == f"sep3x64-sep3x128-att9x320-att3x512.{caformer.arch_hash[:6]}"
    assert get_preset("mixer_b16_like").name.startswith("p16-mlp12x768.")
    assert get_preset("swin_tiny_like").name.startswith("p4-win7_2x96")
    # A network the readable part pins down (every other field at its default) prints it alone.
    plain = ArchConfig(
        stages=[StageConfig(mixer="pooling", depth=2, dim=64), StageConfig(mixer="mbconv", depth=1, dim=96)]
    )
    assert plain.name == "pool2x64-mb1x96"
    assert ArchConfig(stem="conv", stem_stride=8, stages=plain.stages).name == "c8-pool2x64-mb1x96"
    assert ArchConfig(stem="patch", stem_stride=8, stages=plain.stages).name == "p8-pool2x64-mb1x96"


def test_networks_that_read_alike_get_different_names():
    # PoolFormer v1 and v2 S12 have the same stages and differ in norms, activation and biases.
    v1, v2 = get_preset("poolformer_s12"), get_preset("poolformerv2_s12")
    assert v1 != v2 and v1._readable_name() == v2._readable_name()
    assert v1.name != v2.name
    # The README front's pair: one readable part, networks that differ in a field it does not show.
    base = {
        "stem": "patch",
        "stages": [{"mixer": "identity", "depth": 1, "dim": 64}, {"mixer": "mbconv", "depth": 1, "dim": 96}],
    }
    changes = [
        {"norm": "batchnorm"},
        {"act": "gelu"},
        {"bias": True},
        {"layer_scale": 1e-5},
        {"head": "mlp"},
        {"head_norm": None},
        {"downsample": "patch"},
        {"downsample_norm": "layernorm_nobias"},
        {"stages": [base["stages"][0], {**base["stages"][1], "kernel_size": 5}]},
        {"stages": [base["stages"][0], {**base["stages"][1], "mlp_ratio": 3}]},
        {"stages": [{**base["stages"][0], "res_scale": True}, base["stages"][1]]},
    ]
    archs = [ArchConfig.model_validate(base)] + [ArchConfig.model_validate({**base, **c}) for c in changes]
    assert len(set(archs)) == len(archs)
    assert {a._readable_name() for a in archs} == {"p4-id1x64-mb1x96"}
    assert len({a.name for a in archs}) == len(archs)
    assert archs[0].name == "p4-id1x64-mb1x96"  # the one with defaults elsewhere: no suffix
    assert all(a.name == f"p4-id1x64-mb1x96.{a.arch_hash[:6]}" for a in archs[1:])
    # Options the readable part does not show, on a mixer whose defaults do not fit the width.
    att = [ArchConfig(stages=[StageConfig(mixer="attention", depth=1, dim=48, head_dim=h)]) for h in (16, 24)]
    assert att[0].name != att[1].name


def test_frozen():
    arch = get_preset("poolformer_s12")
    with pytest.raises(ValidationError):
        arch.norm = "batchnorm"


@pytest.mark.parametrize(
    ("stage", "field", "hint"),
    [
        ({"mixer": "conv", "depth": 1, "dim": 8}, "stages.0.mixer", "'pooling'"),
        (
            {"mixer": "attention", "depth": 1, "dim": 96, "head_dim": 64},
            "head_dim",
            "choose one that does, e.g. [12, 16, 24, 32, 48, 96]",
        ),
        ({"mixer": "attention", "depth": 1, "dim": 10**12}, "stages.0.dim", "less than or equal to 1048576"),
        ({"mixer": "pooling", "depth": 1, "dim": 8, "window_size": 7}, "window_size", "window_attention"),
        ({"mixer": "sepconv", "depth": 1, "dim": 8, "kernel_size": 4}, "kernel_size", "odd"),
        ({"mixer": "pooling", "depth": -1, "dim": 8}, "stages.0.depth", "greater than or equal to 0"),
        ({"mixer": "pooling", "depth": 1, "dim": 8, "colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_bad_configs_name_the_field_and_the_fix(stage, field, hint):
    with pytest.raises(ValidationError) as err:
        ArchConfig.model_validate({"stages": [stage]})
    text = str(err.value)
    assert field in text and hint in text


def test_a_network_needs_a_non_empty_stage():
    with pytest.raises(ValidationError, match="at least one needs depth >= 1"):
        ArchConfig.model_validate({"stages": [{"mixer": "pooling", "depth": 0, "dim": 8}]})
    with pytest.raises(ValidationError, match="stages"):
        ArchConfig.model_validate({"stages": []})


def test_a_classifier_hashes_as_before_dense_parts_existed():
    """Classifier identity is frozen: this hash was computed before ArchConfig gained a neck and
    a task head, which a classifier's JSON does not mention."""
    arch = ArchConfig.model_validate(CAFORMER)
    assert arch.arch_hash == "cdc415b9c7262e7b"
    assert arch.name == "sep3x64-sep3x128-att9x320-att3x512"
    assert "neck" not in arch.to_json() and "task_head" not in arch.to_json()
    assert arch.task == "classification"


def test_dense_parts_are_part_of_the_identity():
    base = {**CAFORMER, "neck": {"kind": "fpn", "width": 64, "depth": 1}}
    det = ArchConfig.model_validate({**base, "task_head": {"task": "detection", "width": 64, "depth": 2}})
    wider = ArchConfig.model_validate({**base, "task_head": {"task": "detection", "width": 96, "depth": 2}})
    seg = ArchConfig.model_validate({**base, "task_head": {"task": "segmentation", "kind": "mlp", "width": 64}})
    assert len({a.arch_hash for a in (ArchConfig.model_validate(CAFORMER), det, wider, seg)}) == 4
    assert det.name == "sep3x64-sep3x128-att9x320-att3x512-fpn64x1-det64x2"
    assert (det.task, seg.task) == ("detection", "segmentation")
    assert ArchConfig.from_json(seg.to_json()) == seg
