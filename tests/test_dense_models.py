"""Dense networks of the search space: detection and segmentation heads on multi-scale backbones.

The output contract (DESIGN: detection levels B x (4 + 1 + K) x h x w at ``model.strides``,
segmentation B x K x H/s x W/s at ``model.output_stride``) is what training, decoding and export
rely on; the lowering must price the whole network as the trace of the built one does.
"""

import math
import textwrap

import pytest
import torch
from test_lowering import _assert_agree

import search_spaces as ss
from hwmodels import OpKind, op_counts, total_params
from search_spaces import ArchConfig, SearchSpace, SpaceError

SPACES = ss.space_names()
DENSE = ("detection", "segmentation")
K = 5

# Drawn with seed 0 by main's code before dense tasks existed (commit 84b7b49): a seeded
# classification search must draw the very same networks.
CLASSIFICATION_SEED0 = {
    "metaformer": [
        "575ef70632407182",
        "daa2b38701f0ac7c",
        "573174acebf37bd7",
        "fc820836d6610ca6",
        "44d556048dd432d8",
        "10e7a9d1771f7214",
        "b3001fab0915ea39",
        "74dd9981c0e060d9",
        "7e88d6440aed85d6",
        "7e2c8b134fb50fe3",
        "2e69ec57e93a2a30",
        "270c37c2662c2abb",
    ],
    "metaformer-tiny": [
        "cdd0004504c42817",
        "4c66e19233cde730",
        "d98646bf5ac22368",
        "04dae7ef7b49bce0",
        "82347df64ff1d298",
        "3b8ef7c113581f26",
        "44ffbc1f8ff0ccf9",
        "e0d3e4764aad20cc",
        "cb4d22b98b046452",
        "8c2c75c4e7762946",
        "a1d9321a46a1b4e4",
        "ab3095d2a7156104",
    ],
}
CLASSIFICATION_SEED0_NAMES = {
    "metaformer": "p8-win7_6x384.575ef7",
    "metaformer-tiny": "mb1x24-pool2x48-sep2x64-att1x160.cdd000",
}


def _dense(arch: ArchConfig, neck: dict, head: dict) -> ArchConfig:
    return ArchConfig.model_validate({**arch.model_dump(), "head": "linear", "neck": neck, "task_head": head})


DET = {"task": "detection", "width": 32, "depth": 1}
SEG = {"task": "segmentation", "kind": "mlp", "width": 32}


def _check_outputs(model, arch, out, batch: int, size: int) -> None:
    if arch.task == "detection":
        assert isinstance(out, list) and len(out) == len(model.strides) >= 1, arch.name
        assert all(s >= 8 for s in model.strides) and list(model.strides) == sorted(model.strides)
        for level, stride in zip(out, model.strides, strict=True):
            h = w = math.ceil(size / stride)  # conv downsampling rounds up
            assert level.shape[0] == batch and level.shape[1] == 4 + 1 + K, arch.name
            assert level.shape[2] in (h, size // stride) and level.shape[3] in (w, size // stride), arch.name
    else:
        s = model.output_stride
        assert s == 4 and out.shape[:2] == (batch, K), arch.name
        assert out.shape[2] in (math.ceil(size / s), size // s), arch.name


# -- configs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
def test_classification_sampling_is_unchanged(name):
    archs = ss.sample_archs(ss.get_space(name), 12, seed=0)
    assert [a.arch_hash for a in archs] == CLASSIFICATION_SEED0[name]
    assert archs[0].name == CLASSIFICATION_SEED0_NAMES[name]
    assert all(a.task == "classification" and a.neck is None and a.task_head is None for a in archs)


def test_a_classifier_keeps_its_json_hash_and_name():
    arch = ss.get_preset("caformer_s18")
    assert arch.arch_hash == "c8b05801b0088610"
    assert arch.name == "sep3x64-sep3x128-att9x320-att3x512.c8b058"
    assert "neck" not in arch.to_json() and "task_head" not in arch.model_dump()


def test_dense_parts_are_in_the_name_hash_and_json():
    base = ss.get_preset("poolformer_s12")
    det = _dense(base, {"kind": "fpn", "width": 64, "depth": 2}, {"task": "detection", "width": 64, "depth": 2})
    seg = _dense(base, {"kind": "none"}, {"task": "segmentation", "kind": "fpn_fuse", "width": 96})
    assert det.task == "detection" and seg.task == "segmentation"
    assert det.name == f"{base._readable_name()}-fpn64x2-det64x2.{det.arch_hash[:6]}"
    assert seg.name == f"{base._readable_name()}-segfpn96.{seg.arch_hash[:6]}"
    bare = ArchConfig(
        stages=[{"mixer": "pooling", "depth": 2, "dim": 32}, {"mixer": "sepconv", "depth": 1, "dim": 64}],
        neck={"kind": "pan", "width": 48, "depth": 1},
        task_head={"task": "segmentation", "kind": "mlp", "width": 64},
    )
    assert bare.name == "pool2x32-sep1x64-pan48x1-segmlp64"  # every field shown: no hash needed
    assert len({base.arch_hash, det.arch_hash, seg.arch_hash}) == 3
    assert ArchConfig.from_json(det.to_json()) == det and ArchConfig.from_json(seg.to_json()).task == "segmentation"


@pytest.mark.parametrize(
    ("neck", "head", "message"),
    [
        ({"kind": "none", "width": 64}, DET, "kind 'none' has no width"),
        ({"kind": "pan"}, DET, "needs a width and a depth"),
        ({"kind": "fpn", "width": 64, "depth": 1}, None, "needs both"),
        ({"kind": "fpn", "width": 64, "depth": 1}, {"task": "segmentation", "kind": "conv", "width": 8}, "fpn_fuse"),
    ],
)
def test_bad_dense_parts_are_refused_with_the_field(neck, head, message):
    data = {**ss.get_preset("poolformer_s12").model_dump(), "neck": neck}
    if head is not None:
        data["task_head"] = head
    with pytest.raises(ValueError, match=message):
        ArchConfig.model_validate(data)


def test_a_dense_network_has_no_classifier_head():
    data = {**ss.get_preset("poolformer_s12").model_dump(), "head": "mlp", "neck": {"kind": "none"}, "task_head": DET}
    with pytest.raises(ValueError, match="head: a detection network has no classifier head"):
        ArchConfig.model_validate(data)


@pytest.mark.parametrize("head", [DET, SEG])
def test_isotropic_networks_are_refused_for_dense_tasks(head):
    iso = ss.get_preset("mixer_b16_like")
    with pytest.raises(ValueError, match=r"needs multi-scale features .* isotropic"):
        _dense(iso, {"kind": "fpn", "width": 32, "depth": 1}, head)


# -- spaces ---------------------------------------------------------------------------------------


def _space_yaml(tmp_path, body: str):
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(body))
    return path


HIER = """
    name: t
    hierarchical:
      num_stages: [2]
      stages:
        - {mixers: [pooling], depth: [1], dim: [16]}
        - {mixers: [pooling], depth: [1], dim: [32]}
"""
ISO = """
    name: t
    isotropic:
      patch_size: [8]
      stage: {mixers: [pooling], depth: [2], dim: [32]}
"""
DENSE_SECTION = """
    dense:
      neck: {kind: [fpn], width: [16], depth: [1]}
      detection_head: {width: [16], depth: [1]}
"""


@pytest.mark.parametrize("task", DENSE)
def test_a_space_without_a_dense_section_says_why(task, tmp_path):
    space = SearchSpace.from_yaml(_space_yaml(tmp_path, HIER))
    with pytest.raises(SpaceError, match=r"no `dense\.\w+_head` section"):
        ss.sample_archs(space, 1, task=task)
    assert ss.sample_archs(space, 1)[0].task == "classification"


def test_a_space_without_the_tasks_head_says_why(tmp_path):
    space = SearchSpace.from_yaml(_space_yaml(tmp_path, HIER + DENSE_SECTION))
    assert ss.sample_archs(space, 1, task="detection")[0].task == "detection"
    with pytest.raises(SpaceError, match=r"no `dense\.segmentation_head` section"):
        ss.sample_archs(space, 1, task="segmentation")


def test_a_space_without_hierarchical_networks_says_why(tmp_path):
    space = SearchSpace.from_yaml(_space_yaml(tmp_path, ISO))
    with pytest.raises(SpaceError, match=r"no hierarchical networks.*multi-scale"):
        ss.sample_archs(space, 1, task="detection")
    with pytest.raises(SpaceError, match="dense: a dense head needs multi-scale features"):
        SearchSpace.from_yaml(_space_yaml(tmp_path, ISO + DENSE_SECTION))


def test_unknown_task_is_refused():
    with pytest.raises(SpaceError, match="task: unknown 'keypoints'"):
        ss.sample_archs(ss.get_space(), 1, task="keypoints")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("dense: {neck: {kind: [fpn]}, detection_head: {width: [8], depth: [1]}}", "need `width` and `depth`"),
        ("dense: {neck: {kind: [none]}}", "give `detection_head`, `segmentation_head` or both"),
        ("dense: {neck: {kind: [none]}, detection_head: {width: [0], depth: [1]}}", "width: choices must be >= 1"),
        (
            "dense: {neck: {kind: [fpn], width: [8], depth: [2000000]}, detection_head: {width: [8], depth: [1]}}",
            "<= 1048576",
        ),
        ("dense: {neck: {kind: [bifpn]}, detection_head: {width: [8], depth: [1]}}", r"dense\.neck\.kind"),
        ("dense: {neck: {kind: [none]}, segmentation_head: {kind: [mlp], width: []}}", "at least one choice"),
    ],
)
def test_bad_dense_sections_are_refused_at_load(section, message, tmp_path):
    with pytest.raises(SpaceError, match=message):
        SearchSpace.from_yaml(_space_yaml(tmp_path, HIER + "    " + section + "\n"))


def test_dense_sampling_skips_stage_counts_that_could_be_single_scale(tmp_path):
    body = HIER.replace("num_stages: [2]", "num_stages: [1, 2]")
    space = SearchSpace.from_yaml(_space_yaml(tmp_path, body + DENSE_SECTION))
    assert {len(a.stages) for a in ss.sample_archs(space, 30, seed=0)} == {1, 2}
    assert {len(a.stages) for a in ss.sample_archs(space, 30, seed=0, task="detection")} == {2}
    assert space.size() == 2 and space.size("detection") == 1  # one network, or it with its one neck and head


def test_dense_size_counts_every_neck_and_head(tmp_path):
    body = """
    dense:
      neck: {kind: [none, fpn], width: [16, 32], depth: [1]}
      detection_head: {width: [16], depth: [1, 2]}
      segmentation_head: {kind: [fpn_fuse, mlp], width: [8, 16, 32]}
    """
    space = SearchSpace.from_yaml(_space_yaml(tmp_path, HIER + body))
    assert (space.size("detection"), space.size("segmentation")) == (3 * 2, 3 * 6)  # necks: none, fpn x 2 widths
    for task in DENSE:
        assert len(set(ss.sample_archs(space, 300, seed=0, task=task))) == space.size(task)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("task", DENSE)
def test_dense_sampling_draws_hierarchical_networks_with_their_parts(name, task):
    archs = ss.sample_archs(ss.get_space(name), 200, seed=5, task=task)
    assert all(a.task == task and not a.isotropic for a in archs)
    assert {a.neck.kind for a in archs} == {"none", "fpn", "pan"}
    assert len({a.arch_hash for a in archs}) > 190
    assert ss.sample_archs(ss.get_space(name), 5, seed=5, task=task) == archs[:5]  # seeded
    space = ss.get_space(name)
    assert len({a.arch_hash for a in archs}) <= space.size(task)


# -- built networks -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("task", DENSE)
def test_sampled_dense_networks_build_and_lower_alike(name, task):
    """200 networks: each builds on the meta device (every module, no weight memory) with the
    lowering's parameter count, and the lowering's outputs keep the contract, at 640 and 96."""
    for arch in ss.sample_archs(ss.get_space(name), 50, seed=7, task=task):
        for size in (640, 96):  # a spatial MLP's weights depend on the map: built for each size
            with torch.device("meta"):
                model = ss.build_model(arch, num_classes=K, img_size=size)
            layers = ss.lower(arch, (3, size, size), num_classes=K)
            assert total_params(layers) == sum(p.numel() for p in model.parameters()), arch.name
            _check_outputs(model, arch, _lowered_outputs(layers, task), 1, size)
        assert [f["reduction"] for f in model.feature_info] == [4 * 2**i for i in range(len(arch.stages))]


def _lowered_outputs(layers, task):
    """The network's outputs as the lowering records them (shapes only, batch 1)."""
    if task == "detection":
        return [torch.empty(1, *x.out_shape, device="meta") for x in layers if x.name.endswith(":cat")]
    return torch.empty(1, *layers[-1].out_shape, device="meta")


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("task", DENSE)
def test_sampled_dense_networks_keep_the_output_contract_on_meta(name, task):
    """A forward pass of every module, shapes only, at a deployment and a training resolution."""
    for arch in ss.sample_archs(ss.get_space(name), 6, seed=8, task=task):
        for size in (640, 96):
            with torch.device("meta"):
                model = ss.build_model(arch, num_classes=K, img_size=size)
                out = model(torch.empty(2, 3, size, size))
            assert model.task == task
            _check_outputs(model, arch, out, 2, size)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("task", DENSE)
def test_sampled_dense_networks_run_for_real(name, task):
    for arch in ss.sample_archs(ss.get_space(name), 2, seed=11, task=task):
        for size in (128, 96):
            model = ss.build_model(arch, num_classes=K, img_size=size).eval()
            with torch.no_grad():
                out = model(torch.randn(2, 3, size, size))
            _check_outputs(model, arch, out, 2, size)
            assert all(torch.isfinite(o).all() for o in (out if isinstance(out, list) else [out])), arch.name


def test_detection_class_logits_start_at_the_focal_prior():
    arch = _dense(ss.get_preset("poolformer_s12"), {"kind": "pan", "width": 32, "depth": 1}, DET)
    model = ss.build_model(arch, num_classes=K, img_size=128)
    prior = -math.log((1 - 0.01) / 0.01)
    for conv in model.head.cls_preds:
        assert torch.allclose(conv.bias, torch.full((K,), prior))
    assert model.strides == (8, 16, 32)
    with torch.no_grad():
        scores = torch.cat([o[:, 5:].flatten() for o in model.eval()(torch.randn(1, 3, 128, 128))]).sigmoid()
    assert 0.002 < scores.median() < 0.05  # background everywhere at first, as focal loss expects


def test_a_two_stage_backbone_gives_one_detection_level():
    arch = ss.sample_archs(ss.get_space(), 60, seed=1, task="detection")
    two = next(a for a in arch if len(a.stages) == 2)
    with torch.device("meta"):
        model = ss.build_model(two, num_classes=K, img_size=128)
        out = model(torch.empty(1, 3, 128, 128))
    assert model.strides == (8,) and len(out) == 1


def test_dense_networks_need_classes():
    arch = _dense(ss.get_preset("poolformer_s12"), {"kind": "none"}, SEG)
    with pytest.raises(ValueError, match="num_classes: a segmentation network needs >= 1"):
        ss.build_model(arch, num_classes=0)


# -- lowering == trace ----------------------------------------------------------------------------


def _neck_and_head(layers):
    """Every field of the neck's and head's records but the name (the two producers name alike
    only up to the op suffix)."""
    return [x[1:] for x in layers if x.name.split(".")[0].split(":")[0] in ("neck", "head")]


def _assert_lowered_is_traced(arch, size):
    model = ss.build_model(arch, num_classes=K, img_size=size)
    lowered = ss.lower(arch, (3, size, size), num_classes=K)
    traced = ss.trace(model, (3, size, size))
    _assert_agree(lowered, traced, label=f"{arch.name} at {size}")
    assert _neck_and_head(lowered) == _neck_and_head(traced), arch.name  # record for record
    assert op_counts(lowered)[OpKind.RESIZE] == op_counts(traced)[OpKind.RESIZE]


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("task", DENSE)
def test_lowering_matches_the_trace_of_sampled_dense_networks(name, task):
    for arch in ss.sample_archs(ss.get_space(name), 2, seed=9, task=task):
        for size in (128, 100):
            _assert_lowered_is_traced(arch, size)


@pytest.mark.slow
@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("task", DENSE)
def test_lowering_matches_the_trace_at_deployment_resolution(name, task):
    for arch in ss.sample_archs(ss.get_space(name), 1, seed=10, task=task):
        _assert_lowered_is_traced(arch, 640)


def test_every_neck_and_head_kind_lowers_as_traced():
    # 2x2 patch merges floor the odd maps of a 100 px input (25 -> 12) where PAN's stride-2 conv
    # rounds up (25 -> 13): the bottom-up path resizes, in both producers
    base = ArchConfig(
        downsample="patch",
        norm="batchnorm",
        stages=[
            {"mixer": m, "depth": 1, "dim": d}
            for m, d in (("mbconv", 16), ("pooling", 24), ("sepconv", 32), ("attention", 64))
        ],
    )
    for neck in ({"kind": "none"}, {"kind": "fpn", "width": 24, "depth": 2}, {"kind": "pan", "width": 16, "depth": 1}):
        for head in (DET, SEG, {**SEG, "kind": "fpn_fuse"}):
            arch = _dense(base, neck, head)
            _assert_lowered_is_traced(arch, 100)
            if neck["kind"] == "pan" and arch.task == "segmentation":  # its levels start at the 25 px map
                assert "neck.down.0:resize" in {x.name for x in ss.lower(arch, (3, 100, 100), num_classes=K)}
