"""ArchConfig: one MetaFormer-family network, as data.

A network is a stem, then stages (each: downsampling, then ``depth`` blocks of one kind), then a
classification head, or, for a dense task, a neck over the stages' outputs and a detection or
segmentation head (``neck``, ``task_head``; both None for a classifier, whose JSON, hash and name
do not mention them). A MetaFormer block is norm -> token mixer -> residual, norm -> MLP -> residual;
an ``mbconv`` stage uses MobileNetV2 inverted-residual blocks instead (the hybrid conv stages).

The config is canonical on construction: options a mixer does not use are rejected, the ones it
uses get their defaults, and stages of depth 0 are dropped (they build nothing). So two spellings
of one network compare equal and share ``arch_hash``. The input shape and the number of classes
are not part of the architecture: they come from the job.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

Mixer = Literal["identity", "pooling", "sepconv", "dwconv", "spatial_mlp", "attention", "window_attention", "mbconv"]
Norm = Literal["layernorm", "layernorm_nobias", "groupnorm1", "groupnorm1_nobias", "batchnorm"]
Act = Literal["gelu", "starrelu", "relu"]

Task = Literal["classification", "detection", "segmentation"]

TASKS: tuple[str, ...] = Task.__args__
DENSE_TASKS: tuple[str, ...] = ("detection", "segmentation")
MIXERS: tuple[str, ...] = Mixer.__args__
NORMS: tuple[str, ...] = Norm.__args__
ACTS: tuple[str, ...] = Act.__args__

# Mixers whose blocks run channels-last (tokens x channels); the others run NCHW.
CHANNELS_LAST_MIXERS = frozenset({"attention", "window_attention", "spatial_mlp"})

# Which per-stage options each mixer uses, and their defaults (from the papers' reference models).
MIXER_OPTIONS: dict[str, dict[str, Any]] = {
    "identity": {},
    "pooling": {"kernel_size": 3},  # PoolFormer
    "sepconv": {"kernel_size": 7},  # ConvFormer: pw -> act -> dw7x7 -> pw, expansion 2
    "dwconv": {"kernel_size": 7},  # ConvNeXt-style depthwise conv
    "spatial_mlp": {"token_mlp_ratio": 0.5},  # MLP-Mixer (0.5 x dim hidden); 0 = one Linear (ResMLP)
    "attention": {"head_dim": 32},  # CAFormer
    "window_attention": {"head_dim": 32, "window_size": 7},  # Swin
    "mbconv": {"kernel_size": 3},  # MobileNetV2 inverted residual; mlp_ratio is its expansion
}
# Past any network anyone builds; a deployment's own bounds are tighter (``nas.limits``). It keeps
# every check on a config (and its error message) cheap, whatever number it is given.
MAX_SIZE = 1 << 20
MAX_RATIO = 64.0  # an MLP's hidden width over its input's
MIN_DETECTION_STRIDE = 8  # detection levels: the stage outputs at strides >= 8 (8, 16, 32 in the shipped spaces)
_OPTION_NAMES = ("kernel_size", "window_size", "head_dim", "token_mlp_ratio")

NAME_HASH_DIGITS = 6  # of arch_hash, after a name whose readable part does not pin the network down

MIXER_ABBREVIATIONS = {
    "identity": "id",
    "pooling": "pool",
    "sepconv": "sep",
    "dwconv": "dw",
    "spatial_mlp": "mlp",
    "attention": "att",
    "window_attention": "win",
    "mbconv": "mb",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN, inf: never a size or bound


class StageConfig(_Frozen):
    """One stage: ``depth`` blocks of width ``dim``, after a stride-2 downsampling (except stage 0,
    which follows the stem)."""

    mixer: Mixer
    depth: int = Field(ge=0, le=MAX_SIZE)  # 0: the stage is dropped
    dim: int = Field(ge=1, le=MAX_SIZE)
    mlp_ratio: float = Field(default=4.0, gt=0, le=MAX_RATIO)  # MLP hidden = int(mlp_ratio * dim)
    kernel_size: int | None = Field(default=None, ge=1, le=MAX_SIZE)  # pooling, sepconv, dwconv, mbconv
    window_size: int | None = Field(default=None, ge=1, le=MAX_SIZE)  # window_attention; clamped to the map
    head_dim: int | None = Field(default=None, ge=1, le=MAX_SIZE)  # attention mixers; heads = dim // head_dim
    token_mlp_ratio: float | None = Field(default=None, ge=0, le=MAX_RATIO)  # spatial_mlp
    res_scale: bool = False  # learnable per-channel scale on the residual branch (MetaFormer v2)

    @model_validator(mode="before")
    @classmethod
    def _fill_mixer_options(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("mixer") not in MIXER_OPTIONS:
            return data  # the field validators report the problem
        uses = MIXER_OPTIONS[data["mixer"]]
        data = dict(data)
        for option in _OPTION_NAMES:
            if option in uses:
                if data.get(option) is None:
                    data[option] = uses[option]
            elif data.get(option) is not None:
                users = sorted(m for m, opts in MIXER_OPTIONS.items() if option in opts)
                raise ValueError(
                    f"{option}: mixer {data['mixer']!r} does not use it; remove it, or use one of "
                    f"the mixers that do: {users}"
                )
        return data

    @model_validator(mode="after")
    def _check(self) -> StageConfig:
        if self.head_dim is not None and self.dim % self.head_dim:
            raise ValueError(
                f"head_dim: {self.head_dim} does not divide dim={self.dim}; choose one that does, "
                f"e.g. {_divisors_near(self.dim, self.head_dim)}"
            )
        if self.kernel_size is not None and self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: must be odd (got {self.kernel_size}) so the map keeps its size")
        return self

    @property
    def channels_last(self) -> bool:
        return self.mixer in CHANNELS_LAST_MIXERS

    @property
    def num_heads(self) -> int | None:
        return None if self.head_dim is None else self.dim // self.head_dim

    def short_name(self) -> str:
        abbr = MIXER_ABBREVIATIONS[self.mixer]
        if self.mixer == "window_attention":
            abbr += f"{self.window_size}_"
        return f"{abbr}{self.depth}x{self.dim}"


class NeckConfig(_Frozen):
    """What joins the backbone's stage outputs before a dense head: ``none`` (the head reads them
    as they are), ``fpn`` (1x1 laterals to ``width``, top-down nearest upsampling and adds, then
    ``depth`` 3x3 conv-BN-ReLU per level) or ``pan`` (FPN, then a bottom-up path of stride-2 convs
    and adds, ``depth`` 3x3 convs per level again)."""

    kind: Literal["none", "fpn", "pan"]
    width: int | None = Field(default=None, ge=1, le=MAX_SIZE)
    depth: int | None = Field(default=None, ge=1, le=MAX_SIZE)

    @model_validator(mode="after")
    def _check(self) -> NeckConfig:
        given = self.width is not None and self.depth is not None
        if self.kind == "none" and (self.width is not None or self.depth is not None):
            raise ValueError("neck: kind 'none' has no width or depth; remove them, or choose kind fpn or pan")
        if self.kind != "none" and not given:
            raise ValueError(f"neck: kind {self.kind!r} needs a width and a depth (e.g. width: 64, depth: 1)")
        return self

    def short_name(self) -> str:
        return "" if self.kind == "none" else f"{self.kind}{self.width}x{self.depth}"


class DetectionHeadConfig(_Frozen):
    """Anchor-free, decoupled (YOLOX / YOLOv8 style): per level a 1x1 conv to ``width``, then a
    class branch and a box branch of ``depth`` 3x3 conv-BN-ReLU each; the box branch predicts 4
    distances and a centerness logit, the class branch one logit per class."""

    task: Literal["detection"] = "detection"
    width: int = Field(ge=1, le=MAX_SIZE)
    depth: int = Field(ge=1, le=MAX_SIZE)

    def short_name(self) -> str:
        return f"det{self.width}x{self.depth}"


class SegmentationHeadConfig(_Frozen):
    """A light decoder to stride-4 class logits: ``fpn_fuse`` (per level a 3x3 conv-BN-ReLU to
    ``width``, upsample, sum, 3x3 conv-BN-ReLU, 1x1 classifier; Panoptic-FPN's semantic branch, lighter)
    or ``mlp`` (SegFormer's all-MLP decoder: per level a 1x1 projection to ``width``, upsample,
    concat, 1x1 conv-BN-ReLU fuse, 1x1 classifier)."""

    task: Literal["segmentation"] = "segmentation"
    kind: Literal["fpn_fuse", "mlp"]
    width: int = Field(ge=1, le=MAX_SIZE)

    def short_name(self) -> str:
        return f"seg{'fpn' if self.kind == 'fpn_fuse' else 'mlp'}{self.width}"


TaskHead = Annotated[DetectionHeadConfig | SegmentationHeadConfig, Field(discriminator="task")]
DENSE_FIELDS = ("neck", "task_head")  # absent from a classifier's JSON, so its hash never changed
# A dense network has no classifier: these stay at their defaults (one network, one hash).
_CLASSIFIER_DEFAULTS = {"head": "linear", "head_norm": "layernorm"}


class ArchConfig(_Frozen):
    """A whole network. Frozen and hashable; ``arch_hash`` is the canonical identity."""

    stem: Literal["conv", "patch"] = "conv"  # conv: overlapping (stride+3)x(stride+3), padding 2
    stem_stride: int = Field(default=4, ge=1, le=MAX_SIZE)  # the patch size of an isotropic network
    downsample: Literal["conv", "patch"] = "conv"  # conv: 3x3 stride 2; patch: 2x2 stride 2
    downsample_norm: Norm | None = None  # after the stem, before each downsampling conv
    stages: tuple[StageConfig, ...] = Field(min_length=1, max_length=6)
    norm: Norm = "layernorm_nobias"  # the norms of the MetaFormer blocks
    act: Act = "starrelu"  # the MLPs' (and sepconv's / mbconv's) activation
    bias: bool = False  # biases of the MLPs and mixers' projections
    layer_scale: float | None = Field(default=None, gt=0)  # LayerScale init value; None: off
    head: Literal["linear", "mlp"] = "linear"  # mlp: Linear(4x) -> SquaredReLU -> LayerNorm -> Linear
    head_norm: Norm | None = "layernorm"  # on the pooled features
    neck: NeckConfig | None = None  # dense networks only
    task_head: TaskHead | None = None  # dense networks only; its kind is the task

    @model_serializer(mode="wrap")
    def _omit_absent_dense_parts(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for key in DENSE_FIELDS:
            if data.get(key, 0) is None:
                del data[key]
        return data

    @model_validator(mode="after")
    def _check_dense(self) -> ArchConfig:
        if (self.neck is None) != (self.task_head is None):
            raise ValueError("neck, task_head: a dense network needs both (a classifier neither)")
        if self.task_head is None:
            return self
        task = self.task_head.task
        if self.isotropic:
            raise ValueError(
                f"task_head: a {task} head needs multi-scale features (stage outputs at strides 4 to 32), "
                f"and this network is isotropic (one stage, at stride {self.stem_stride}); use a "
                "hierarchical network of 2 or more stages for a dense task"
            )
        if task == "detection" and not any(s >= MIN_DETECTION_STRIDE for s in self.stage_strides):
            raise ValueError(
                f"task_head: detection reads the stage outputs at strides >= {MIN_DETECTION_STRIDE}, and this "
                f"network's are at {list(self.stage_strides)}; add a stage or use a larger stem stride"
            )
        for field, default in _CLASSIFIER_DEFAULTS.items():
            if getattr(self, field) != default:
                raise ValueError(
                    f"{field}: a {task} network has no classifier head; leave {field} at its default {default!r}"
                )
        return self

    @model_validator(mode="before")
    @classmethod
    def _drop_empty_stages(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("stages"), (list, tuple)):
            stages = [s for s in data["stages"] if not _is_empty_stage(s)]
            if not stages and data["stages"]:
                raise ValueError("stages: every stage has depth 0; at least one needs depth >= 1")
            data = {**data, "stages": stages}
        return data

    @cached_property
    def arch_hash(self) -> str:
        """Hex digest of the canonical JSON; equal for every spelling of one network."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @property
    def isotropic(self) -> bool:
        return len(self.stages) == 1

    @property
    def task(self) -> str:
        """``classification``, or the dense task its head is for."""
        return "classification" if self.task_head is None else self.task_head.task

    @property
    def stage_strides(self) -> tuple[int, ...]:
        """Each stage's output stride relative to the input (the stem's, then x2 per stage)."""
        return tuple(self.stem_stride * 2**i for i in range(len(self.stages)))

    @property
    def name(self) -> str:
        """Short, human-readable and unique per network, for tables and logs.

        The readable part names the stem and each stage's mixer, depth and width (``p4-`` a
        patch-4 stem, ``c8-`` a stride-8 conv stem, none the stride-4 conv stem). It is the whole
        name only when every field it does not show has its default; otherwise ``.`` and the first
        six digits of ``arch_hash`` follow, so two networks that read alike never print alike
        (``p4-id1x64-mb1x96.3f9a0c``). A dense network's neck and head follow
        (``...-fpn64x2-det64x2``, ``...-segmlp128``). ``arch_hash`` stays the identity."""
        readable = self._readable_name() + "".join(
            f"-{part.short_name()}" for part in (self.neck, self.task_head) if part is not None and part.short_name()
        )
        return readable if self == self._bare() else f"{readable}.{self.arch_hash[:NAME_HASH_DIGITS]}"

    def _readable_name(self) -> str:
        body = "-".join(stage.short_name() for stage in self.stages)
        if self.stem == "patch":
            return f"p{self.stem_stride}-{body}"
        return body if self.stem_stride == 4 else f"c{self.stem_stride}-{body}"

    def _bare(self) -> ArchConfig | None:
        """The network the readable name describes alone: its shown fields, defaults elsewhere
        (None where those defaults do not make a valid network)."""
        try:
            return ArchConfig(
                stem=self.stem,
                stem_stride=self.stem_stride,
                stages=[
                    StageConfig(
                        mixer=s.mixer,
                        depth=s.depth,
                        dim=s.dim,
                        window_size=s.window_size if s.mixer == "window_attention" else None,
                    )
                    for s in self.stages
                ],
                neck=self.neck,
                task_head=self.task_head,
            )
        except ValueError:  # e.g. the default head_dim does not divide the width: not this network
            return None

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=indent)

    @classmethod
    def from_json(cls, text: str | bytes) -> ArchConfig:
        return cls.model_validate_json(text)


def _divisors_near(n: int, wanted: int, count: int = 6) -> list[int]:
    """The ``count`` divisors of ``n`` closest to ``wanted``, in O(sqrt(n)) (an error message's cost
    stays bounded whatever ``n`` a request sends)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    divisors = sorted({*small, *(n // d for d in small)})
    return sorted(sorted(divisors, key=lambda d: abs(d - wanted))[:count])


def _is_empty_stage(stage: Any) -> bool:
    depth = stage.get("depth") if isinstance(stage, dict) else getattr(stage, "depth", None)
    return depth == 0
