import textwrap
from collections import Counter

import optuna
import pytest
import torch

import search_spaces as ss
from hwmodels import total_params
from search_spaces import SearchSpace, SpaceError, UnknownNameError
from search_spaces._arch import MIXER_OPTIONS

SPACES = ss.space_names()


def test_shipped_spaces_are_registered():
    assert {"metaformer", "metaformer-tiny"} <= set(SPACES)
    assert ss.get_space().name == ss.DEFAULT_SPACE
    with pytest.raises(UnknownNameError, match=r"known: .*metaformer"):
        ss.get_space("no-such-space")


@pytest.mark.parametrize("name", SPACES)
def test_1000_samples_build_and_lower(name):
    """Every sample builds and runs a forward pass on the meta device (every module and shape,
    no weight memory), produces logits of the right shape, and lowers to an IR with exactly the
    built parameter count."""
    archs = ss.sample_archs(ss.get_space(name), 1000, seed=1)
    assert len({a.arch_hash for a in archs}) > 900  # the space is large: few repeats
    for arch in archs:
        layers = ss.lower(arch, (3, 224, 224), num_classes=10)
        with torch.device("meta"):
            model = ss.build_model(arch, num_classes=10)
            out = model(torch.empty(2, 3, 224, 224))
        assert out.shape == (2, 10), arch.name
        assert sum(p.numel() for p in model.parameters()) == total_params(layers), arch.name


@pytest.mark.parametrize("name", SPACES)
def test_samples_run_at_low_resolution(name):
    """A real forward pass (random weights) at a proxy-like resolution: finite logits."""
    for arch in ss.sample_archs(ss.get_space(name), 12, seed=2):
        model = ss.build_model(arch, num_classes=10, in_chans=1, img_size=32).eval()
        with torch.no_grad():
            out = model(torch.randn(2, 1, 32, 32))
        assert out.shape == (2, 10) and torch.isfinite(out).all(), arch.name


@pytest.mark.parametrize("name", SPACES)
def test_names_are_unique_per_architecture(name):
    """Two different sampled networks never print the same name, although many share the readable
    part (the stages' mixers, depths and widths) that the name starts with."""
    archs = set(ss.sample_archs(ss.get_space(name), 3000, seed=3))
    by_name: dict[str, set] = {}
    for arch in archs:
        by_name.setdefault(arch.name, set()).add(arch)
    assert all(len(same) == 1 for same in by_name.values()), [n for n, same in by_name.items() if len(same) > 1]
    readable = Counter(arch._readable_name() for arch in archs)
    assert readable.most_common(1)[0][1] > 1  # the readable part alone would have collided
    assert max(len(n) for n in by_name) <= max(len(r) for r in readable) + 7  # short: at most 7 more characters


def test_sampling_is_deterministic_under_a_seed():
    space = ss.get_space()
    assert ss.sample_archs(space, 20, seed=7) == ss.sample_archs(space, 20, seed=7)
    assert ss.sample_archs(space, 20, seed=7) != ss.sample_archs(space, 20, seed=8)


def test_parameter_names_are_flat_stable_and_conditional():
    space = ss.get_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_window = False
    for _ in range(300):
        trial = study.ask()
        arch = space.sample(trial)
        params = trial.params
        if arch.isotropic:
            assert params["hierarchy"] == "isotropic" and "iso.patch_size" in params
            assert not any(k.startswith("s0.") for k in params)
        else:
            assert params["num_stages"] >= len(arch.stages)
            for i in range(params["num_stages"]):
                mixer = params[f"s{i}.mixer"]
                # an option is suggested only under the mixer that uses it
                options = {k.split(".")[2] for k in params if k.startswith(f"s{i}.") and k.count(".") == 2}
                assert all(
                    k.startswith(f"s{i}.{mixer}.") for k in params if k.startswith(f"s{i}.") and k.count(".") == 2
                )
                assert options <= set(MIXER_OPTIONS[mixer])
        seen_window |= "s2.window_attention.window_size" in params  # [7, 14]: suggested
        study.tell(trial, 0.0)
    assert seen_window


@pytest.mark.parametrize("task", ["detection", "segmentation"])
def test_dense_parameter_names_are_flat_and_only_for_dense_tasks(task):
    """A dense task draws no hierarchy (hierarchical only) and no classifier head; its neck and
    head come under their own names, the neck's width and depth only when it has one."""
    space = ss.get_space()
    head = {f"{task}_head.{p}" for p in (("width", "depth") if task == "detection" else ("kind", "width"))}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    kinds = set()
    for _ in range(100):
        trial = study.ask()
        arch = space.sample(trial, task=task)
        params = trial.params
        assert not {"hierarchy", "head", "head_norm"} & set(params)
        dense = {k for k in params if k.startswith(("neck.", "detection_head.", "segmentation_head."))}
        neck = {"neck.kind"} | ({"neck.width", "neck.depth"} if arch.neck.kind != "none" else set())
        assert dense == neck | head
        kinds.add(params["neck.kind"])
        study.tell(trial, 0.0)
    assert kinds == {"none", "fpn", "pan"}
    classification = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(50):
        trial = classification.ask()
        space.sample(trial)
        assert not any(k.startswith(("neck.", "detection_head.", "segmentation_head.")) for k in trial.params)
        classification.tell(trial, 0.0)


def _space(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(text))
    return path


BASE = """
name: custom
hierarchical:
  num_stages: [2]
  stages:
    - {mixers: [pooling], depth: [1, 2], dim: [32]}
    - {mixers: %s, depth: %s, dim: [48, 64]}
"""


def test_a_space_loads_from_a_yaml_path(tmp_path):
    path = _space(tmp_path, BASE % ("{sepconv: {kernel_size: [3, 7]}, attention: {head_dim: [16]}}", "[1]"))
    space = ss.get_space(str(path))
    # stage 0: 2 depths; stage 1: 2 dims x (2 sepconv kernels + 1 attention)
    assert space.name == "custom" and space.size() == 2 * (2 * 3)
    archs = ss.sample_archs(space, 30)
    assert {a.stages[1].dim for a in archs} == {48, 64}
    assert {a.stages[1].mixer for a in archs} == {"sepconv", "attention"}


@pytest.mark.parametrize(
    ("mixers", "depth", "message"),
    [
        (
            "{attention: {head_dim: [32]}}",
            "[1]",
            "stages.1: Value error, mixers.attention.head_dim: 32 does not divide dim choice 48",
        ),
        ("{pooling: {window_size: [7]}}", "[1]", "mixers.pooling.window_size: pooling does not use window_size"),
        ("{sepconv: {kernel_size: [4]}}", "[1]", "kernel_size: choices must be odd"),
        ("[convolution]", "[1]", "hierarchical.stages.1.mixers.convolution"),
        ("[pooling]", "[0, 1]", None),  # fine: stage 0 can never be empty
    ],
)
def test_bad_spaces_name_the_field(tmp_path, mixers, depth, message):
    path = _space(tmp_path, BASE % (mixers, depth))
    if message is None:
        SearchSpace.from_yaml(path)
        return
    with pytest.raises(SpaceError) as err:
        SearchSpace.from_yaml(path)
    assert str(path) in str(err.value)
    assert message.replace("Value error, ", "") in str(err.value)


def test_a_space_whose_stages_could_all_be_empty_is_rejected(tmp_path):
    text = BASE.replace("depth: [1, 2]", "depth: [0, 1]") % ("[pooling]", "[0, 2]")
    with pytest.raises(SpaceError, match="remove 0 from the depth choices"):
        SearchSpace.from_yaml(_space(tmp_path, text))


def test_unknown_keys_are_rejected(tmp_path):
    path = _space(tmp_path, BASE % ("[pooling]", "[1]") + "optimizer: [adam]\n")
    with pytest.raises(SpaceError, match="optimizer: Extra inputs are not permitted"):
        SearchSpace.from_yaml(path)
