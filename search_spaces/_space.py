"""SearchSpace: which ArchConfigs a search may propose, declared as data (YAML or Python).

Sampling draws from an Optuna trial under flat, stable parameter names (``s2.mixer``,
``s2.window_attention.window_size``, ``iso.patch_size``, ``norm``); an option is suggested only
where the sampled network uses it, and a choice list of one value is fixed rather than suggested.
Every rule that could make a sample invalid (a head_dim that does not divide a width, a stage count
whose stages could all be empty, an option a mixer does not take) is checked when the space is
loaded, so every sample builds.

A space may declare a ``dense:`` section (neck, detection head, segmentation head choices); a
detection or segmentation task samples hierarchical networks only, with their neck and head under
``neck.*``, ``detection_head.*`` and ``segmentation_head.*``. Classification draws exactly what
it drew before the section existed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from search_spaces._arch import (
    DENSE_TASKS,
    MAX_RATIO,
    MAX_SIZE,
    MIXER_OPTIONS,
    TASKS,
    Act,
    ArchConfig,
    Mixer,
    Norm,
    StageConfig,
)
from search_spaces._errors import SpaceError, describe_validation_error


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN, inf: never a size or bound


MAX_CHOICES = 64  # per list: the space's own checks pair choices (head_dim x dim), so lists stay short


def _nonempty(values: tuple) -> tuple:
    if not values:
        raise ValueError("needs at least one choice")
    if len(values) > MAX_CHOICES:
        raise ValueError(f"has {len(values)} choices, over the limit of {MAX_CHOICES}; list fewer")
    if len(set(values)) != len(values):
        raise ValueError(f"has repeated choices: {list(values)}")
    return values


class MixerChoices(_Frozen):
    """The option values a stage may use with one mixer; an omitted option takes its default."""

    kernel_size: tuple[int, ...] | None = None
    window_size: tuple[int, ...] | None = None
    head_dim: tuple[int, ...] | None = None
    token_mlp_ratio: tuple[float, ...] | None = None

    @field_validator("*")
    @classmethod
    def _choices(cls, v: tuple | None) -> tuple | None:
        return v if v is None else _nonempty(v)


class StageSpace(_Frozen):
    mixers: dict[Mixer, MixerChoices]  # a list of names is short for {name: {}}
    depth: tuple[int, ...]
    dim: tuple[int, ...]
    mlp_ratio: tuple[float, ...] = (4.0,)
    res_scale: tuple[bool, ...] = (False,)

    @field_validator("depth", "dim", "mlp_ratio", "res_scale")
    @classmethod
    def _choices(cls, v: tuple) -> tuple:
        return _nonempty(v)

    @model_validator(mode="before")
    @classmethod
    def _expand_mixer_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("mixers"), (list, tuple)):
            data = {**data, "mixers": {name: {} for name in data["mixers"]}}
        return data

    @model_validator(mode="after")
    def _valid_by_construction(self) -> StageSpace:
        if not self.mixers:
            raise ValueError("mixers: needs at least one mixer")
        if min(self.depth) < 0 or min(self.dim) < 1 or not 0 < min(self.mlp_ratio) <= max(self.mlp_ratio) <= MAX_RATIO:
            raise ValueError(f"depth must be >= 0, dim >= 1 and mlp_ratio in (0, {MAX_RATIO:g}]")
        ratios = [r for c in self.mixers.values() for r in c.token_mlp_ratio or ()]
        if ratios and not 0 <= min(ratios) <= max(ratios) <= MAX_RATIO:
            raise ValueError(f"token_mlp_ratio choices must lie in [0, {MAX_RATIO:g}]")
        for mixer, choices in self.mixers.items():
            uses = MIXER_OPTIONS[mixer]
            for option, values in choices.model_dump(exclude_none=True).items():
                if option not in uses:
                    raise ValueError(
                        f"mixers.{mixer}.{option}: {mixer} does not use {option}; "
                        f"it takes {sorted(uses) or 'no options'}"
                    )
                if option == "kernel_size" and any(k % 2 == 0 or k < 1 for k in values):
                    raise ValueError(f"mixers.{mixer}.kernel_size: choices must be odd and positive, got {values}")
                if option == "head_dim":
                    bad = [(h, d) for h in values for d in self.dim if d % h]
                    if bad:
                        raise ValueError(
                            f"mixers.{mixer}.head_dim: {bad[0][0]} does not divide dim choice {bad[0][1]}; "
                            "every head_dim choice must divide every dim choice of the stage"
                        )
            if "head_dim" in uses and choices.head_dim is None:
                bad_dims = [d for d in self.dim if d % uses["head_dim"]]
                if bad_dims:
                    raise ValueError(
                        f"mixers.{mixer}.head_dim: the default {uses['head_dim']} does not divide dim choice "
                        f"{bad_dims[0]}; give head_dim choices that divide every dim"
                    )
        return self

    def option_choices(self, mixer: str) -> dict[str, tuple]:
        """Each option ``mixer`` uses, with the choices for it (its default when not given)."""
        given = self.mixers[mixer].model_dump(exclude_none=True)
        return {option: tuple(given.get(option, (default,))) for option, default in MIXER_OPTIONS[mixer].items()}

    def size(self) -> int:
        per_mixer = sum(math.prod(len(c) for c in self.option_choices(m).values()) for m in self.mixers)
        return len(self.depth) * len(self.dim) * len(self.mlp_ratio) * len(self.res_scale) * per_mixer


class HierarchicalSpace(_Frozen):
    """2-4 (up to 6) stages of falling resolution after a stride-4 stem."""

    num_stages: tuple[int, ...]
    stem: tuple[Literal["conv", "patch"], ...] = ("conv",)
    downsample: tuple[Literal["conv", "patch"], ...] = ("conv",)
    stages: tuple[StageSpace, ...] = Field(min_length=1, max_length=6)

    @field_validator("num_stages", "stem", "downsample")
    @classmethod
    def _choices(cls, v: tuple) -> tuple:
        return _nonempty(v)

    @model_validator(mode="after")
    def _never_empty(self) -> HierarchicalSpace:
        for n in self.num_stages:
            if not 1 <= n <= len(self.stages):
                raise ValueError(f"num_stages: {n} is not in 1..{len(self.stages)} (the stages listed)")
            if all(0 in stage.depth for stage in self.stages[:n]):
                raise ValueError(
                    f"stages: with num_stages={n} every one of the first {n} stages may get depth 0; "
                    "remove 0 from the depth choices of one of them"
                )
        return self

    def size(self, num_stages: tuple[int, ...] | list[int] | None = None) -> int:
        return (
            len(self.stem)
            * len(self.downsample)
            * sum(math.prod(s.size() for s in self.stages[:n]) for n in num_stages or self.num_stages)
        )


class IsotropicSpace(_Frozen):
    """One stage at one resolution after a patch embedding (ViT / Mixer / ResMLP-like)."""

    patch_size: tuple[int, ...]
    stage: StageSpace

    @field_validator("patch_size")
    @classmethod
    def _choices(cls, v: tuple) -> tuple:
        return _nonempty(v)

    @model_validator(mode="after")
    def _never_empty(self) -> IsotropicSpace:
        if 0 in self.stage.depth:
            raise ValueError("stage.depth: an isotropic network has one stage, so depth 0 is not allowed")
        if min(self.patch_size) < 1:
            raise ValueError("patch_size: choices must be >= 1")
        return self

    def size(self) -> int:
        return len(self.patch_size) * self.stage.size()


def _positive(values: tuple[int, ...] | None, field: str) -> tuple[int, ...] | None:
    if values is not None and not 1 <= min(_nonempty(values)) <= max(values) <= MAX_SIZE:
        raise ValueError(f"{field}: choices must be >= 1 and <= {MAX_SIZE}, got {list(values)}")
    return values


class NeckSpace(_Frozen):
    kind: tuple[Literal["none", "fpn", "pan"], ...]
    width: tuple[int, ...] | None = None  # needed unless kind is only `none`
    depth: tuple[int, ...] | None = None

    @model_validator(mode="after")
    def _valid_by_construction(self) -> NeckSpace:
        _nonempty(self.kind)
        _positive(self.width, "width")
        _positive(self.depth, "depth")
        if set(self.kind) - {"none"} and (self.width is None or self.depth is None):
            raise ValueError("kind: fpn and pan need `width` and `depth` choices (e.g. width: [64], depth: [1])")
        return self


class DetectionHeadSpace(_Frozen):
    width: tuple[int, ...]
    depth: tuple[int, ...]

    @model_validator(mode="after")
    def _valid_by_construction(self) -> DetectionHeadSpace:
        _positive(self.width, "width")
        _positive(self.depth, "depth")
        return self


class SegmentationHeadSpace(_Frozen):
    kind: tuple[Literal["fpn_fuse", "mlp"], ...]
    width: tuple[int, ...]

    @model_validator(mode="after")
    def _valid_by_construction(self) -> SegmentationHeadSpace:
        _nonempty(self.kind)
        _positive(self.width, "width")
        return self


class DenseSpace(_Frozen):
    """The necks and heads a dense task may put on a hierarchical backbone."""

    neck: NeckSpace
    detection_head: DetectionHeadSpace | None = None
    segmentation_head: SegmentationHeadSpace | None = None

    @model_validator(mode="after")
    def _some_head(self) -> DenseSpace:
        if self.detection_head is None and self.segmentation_head is None:
            raise ValueError("give `detection_head`, `segmentation_head` or both")
        return self


class SearchSpace(_Frozen):
    """A declarative MetaFormer search space. Network-wide choices apply to every block."""

    name: str
    description: str = ""
    hierarchical: HierarchicalSpace | None = None
    isotropic: IsotropicSpace | None = None
    norm: tuple[Norm, ...] = ("layernorm_nobias",)
    act: tuple[Act, ...] = ("starrelu",)
    bias: tuple[bool, ...] = (False,)
    layer_scale: tuple[float | None, ...] = (None,)
    downsample_norm: tuple[Norm | None, ...] = ("layernorm_nobias",)
    head: tuple[Literal["linear", "mlp"], ...] = ("linear",)
    head_norm: tuple[Norm | None, ...] = ("layernorm",)
    dense: DenseSpace | None = None  # necks and heads for detection / segmentation

    @model_serializer(mode="wrap")
    def _omit_absent_dense(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if data.get("dense", 0) is None:
            del data["dense"]  # a space without one reads as it did before dense tasks existed
        return data

    @field_validator("norm", "act", "bias", "layer_scale", "downsample_norm", "head", "head_norm")
    @classmethod
    def _choices(cls, v: tuple) -> tuple:
        return _nonempty(v)

    @model_validator(mode="after")
    def _some_hierarchy(self) -> SearchSpace:
        if self.hierarchical is None and self.isotropic is None:
            raise ValueError("give `hierarchical`, `isotropic` or both")
        if self.dense is not None and not self._dense_num_stages():
            raise ValueError(
                "dense: a dense head needs multi-scale features, and no `hierarchical.num_stages` choice "
                "guarantees 2 or more non-empty stages; add one (with stages whose depth choices exclude 0)"
            )
        return self

    def _dense_num_stages(self) -> list[int]:
        """The ``num_stages`` choices whose every sample keeps >= 2 stages (multi-scale features)."""
        h = self.hierarchical
        if h is None:
            return []
        return [n for n in h.num_stages if sum(0 not in stage.depth for stage in h.stages[:n]) >= 2]

    def check_task(self, task: str) -> None:
        """Raise ``SpaceError`` saying why this space cannot sample networks for ``task``."""
        if task not in TASKS:
            raise SpaceError(f"task: unknown {task!r}; one of {', '.join(TASKS)}")
        if task not in DENSE_TASKS:
            return
        if self.hierarchical is None:
            raise SpaceError(
                f"space {self.name!r}: has no hierarchical networks, and a {task} head needs multi-scale "
                "features (stage outputs at strides 4 to 32); add a `hierarchical` section"
            )
        head = "detection_head" if task == "detection" else "segmentation_head"
        if self.dense is None or getattr(self.dense, head) is None:
            raise SpaceError(
                f"space {self.name!r}: has no `dense.{head}` section, so it cannot sample {task} networks; "
                f"add `dense:` with `neck` and `{head}` choices (see the shipped metaformer.yaml)"
            )

    def size(self, task: str = "classification") -> int:
        """Number of distinct configs the space can sample for ``task`` (depth-0 stages counted as
        written)."""
        self.check_task(task)
        network_wide = (self.norm, self.act, self.bias, self.layer_scale, self.downsample_norm)
        if task not in DENSE_TASKS:
            structures = (self.hierarchical.size() if self.hierarchical else 0) + (
                self.isotropic.size() if self.isotropic else 0
            )
            return structures * math.prod(len(c) for c in (*network_wide, self.head, self.head_norm))
        neck = self.dense.neck
        necks = sum(1 if kind == "none" else len(neck.width) * len(neck.depth) for kind in neck.kind)
        head = self.dense.detection_head if task == "detection" else self.dense.segmentation_head
        heads = math.prod(len(choices) for _, choices in head)
        backbones = self.hierarchical.size(self._dense_num_stages())
        return backbones * math.prod(len(c) for c in network_wide) * necks * heads

    def sample(self, trial: Any, task: str = "classification") -> ArchConfig:
        """Draw one architecture for ``task`` from an Optuna trial (``optuna.Trial`` or anything
        with ``suggest_categorical``). A dense task draws a hierarchical network, then its neck and
        head; classification draws what it always did."""
        self.check_task(task)
        dense = task in DENSE_TASKS
        hierarchies = [h for h in ("hierarchical", "isotropic") if getattr(self, h) is not None]
        hierarchy = "hierarchical" if dense else _choose(trial, "hierarchy", hierarchies)
        if hierarchy == "hierarchical":
            h = self.hierarchical
            n = _choose(trial, "num_stages", self._dense_num_stages() if dense else h.num_stages)
            structure: dict[str, Any] = {
                "stem": _choose(trial, "stem", h.stem),
                "stem_stride": 4,
                "downsample": _choose(trial, "downsample", h.downsample),
                "stages": [_sample_stage(trial, f"s{i}", h.stages[i]) for i in range(n)],
            }
        else:
            iso = self.isotropic
            structure = {
                "stem": "patch",
                "stem_stride": _choose(trial, "iso.patch_size", iso.patch_size),
                "stages": [_sample_stage(trial, "iso", iso.stage)],
            }
        network_wide = ("norm", "act", "bias", "layer_scale", "downsample_norm")
        classifier = () if dense else ("head", "head_norm")  # a dense network has no classifier head
        fixed = {field: _choose(trial, field, getattr(self, field)) for field in (*network_wide, *classifier)}
        if dense:
            fixed |= _sample_dense(trial, self.dense, task)
        return ArchConfig(**structure, **fixed)

    @classmethod
    def from_yaml(cls, path: str | Path) -> SearchSpace:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise SpaceError(f"{path}: cannot read the space: {err}") from err
        if not isinstance(data, dict):
            raise SpaceError(f"{path}: a space is a mapping with at least `name` and `hierarchical` or `isotropic`")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise SpaceError(f"{path}: {describe_validation_error(err)}") from err


def _choose(trial: Any, name: str, choices: tuple | list) -> Any:
    choices = list(choices)
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, choices)


def _sample_stage(trial: Any, prefix: str, space: StageSpace) -> StageConfig:
    mixer = _choose(trial, f"{prefix}.mixer", list(space.mixers))
    options = {
        option: _choose(trial, f"{prefix}.{mixer}.{option}", choices)
        for option, choices in space.option_choices(mixer).items()
    }
    return StageConfig(
        mixer=mixer,
        depth=_choose(trial, f"{prefix}.depth", space.depth),
        dim=_choose(trial, f"{prefix}.dim", space.dim),
        mlp_ratio=_choose(trial, f"{prefix}.mlp_ratio", space.mlp_ratio),
        res_scale=_choose(trial, f"{prefix}.res_scale", space.res_scale),
        **options,
    )


def _sample_dense(trial: Any, space: DenseSpace, task: str) -> dict[str, Any]:
    kind = _choose(trial, "neck.kind", space.neck.kind)
    neck: dict[str, Any] = {"kind": kind}
    if kind != "none":
        neck |= {
            "width": _choose(trial, "neck.width", space.neck.width),
            "depth": _choose(trial, "neck.depth", space.neck.depth),
        }
    if task == "detection":
        d = space.detection_head
        head = {
            "task": task,
            "width": _choose(trial, "detection_head.width", d.width),
            "depth": _choose(trial, "detection_head.depth", d.depth),
        }
    else:
        g = space.segmentation_head
        head = {
            "task": task,
            "kind": _choose(trial, "segmentation_head.kind", g.kind),
            "width": _choose(trial, "segmentation_head.width", g.width),
        }
    return {"neck": neck, "task_head": head}
