"""The job spec: everything a search needs, validated once at the edge.

    name: edge-classifier
    task: classification               # or detection (judged by map), segmentation (by miou)
    space: metaformer                  # a registered space, a space YAML, an inline space, or a plug-in
    input_shape: [3, 224, 224]         # deployment input (C, H, W): the hardware cost is priced here
    num_classes: 10                    # detection: object classes; segmentation: background included
    accelerator: metis-like            # a name (`nas hw list`) or an accelerator YAML; or co-design:
                                       # {base: metis-like, search: {cores: [1, 2, 4], l2_mib: [8, 16, 32]}}
    objectives: [accuracy, latency_ms, energy_mj]
    evaluator: {proxy: default}        # or {plugin: "package.module:object", options: {...}}
    constraints: {min_fps: 800, max_energy_mj: 3, max_params: 8000000}
    budget: {trials: 200, wall_time_s: 3600}
    sampler: tpe
    seed: 0
    workers: {count: 2}                # or {address: "ray://head:10001"}; RAY_ADDRESS also joins a cluster

Unknown keys are errors, and every error names its field (``SpecError``).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hwmodels import KNOBS, MAX_VARIANTS
from nas.objectives import OBJECTIVES, check_objectives
from nas.tasks import DENSE_TASKS, SCENES_CLASSES, SCENES_DATASET, SCENES_SIZE, SCENES_TRAIN, TASK_NAMES, TASKS
from search_spaces import SearchSpace

MAX_OPTIONS_BYTES = 64 << 10  # a plug-in's options, as JSON: settings, not data
SAMPLERS = ("tpe", "nsga2", "nsga3", "gp", "random")
DEFAULT_SAMPLER = "tpe"  # chosen from docs/search_efficiency.md
# package.module:object: a dotted module, then one public name in it (no attribute chains, no dunders)
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z]\w*$")


class FieldError(ValueError):
    """Input that cannot be used, with where: ``errors`` lists (field path, message) pairs (an
    empty path: the input as a whole); the text is one 'field: message' line each. The service
    answers them as 422s with ``loc`` from the path, never by parsing the text.

        raise SpecError("budget.trials", "must be >= 1")       # one field
        raise SpecError(errors=[("num_classes", "..."), ...])   # several
        raise FieldError("fields", "unknown x", where="query")  # a query parameter
    """

    def __init__(
        self,
        field: str = "",
        message: str | None = None,
        *,
        errors: list[tuple[str, str]] | None = None,
        where: str = "body",
    ) -> None:
        if errors is None:
            errors = [(field, message)] if message is not None else [("", field)]
        self.errors, self.where = list(errors), where  # where: body, query or path (HTTP)
        super().__init__("\n".join(f"{f}: {m}" if f else m for f, m in self.errors))


class SpecError(FieldError):
    """A job spec that cannot be used; each error names its field and the fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN, inf: never a size or bound


class PluginRef(_Frozen):
    """An object found by import path, ``package.module:object`` (one public name of the module,
    never an attribute chain), called with ``**options``."""

    plugin: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _small(cls, v: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(v, default=str))
        if size > MAX_OPTIONS_BYTES:
            raise ValueError(
                f"{size:,} bytes of options is over the limit of {MAX_OPTIONS_BYTES:,}; pass a file's name"
            )
        return v

    @field_validator("plugin")
    @classmethod
    def _import_path(cls, v: str) -> str:
        if not _IMPORT_PATH.fullmatch(v):
            shown = v if len(v) <= 200 else v[:200] + "…"
            raise ValueError(
                f"{shown!r} is not an import path; write it as package.module:object (one public name, no dots after ':')"
            )
        return v


class TrainingRecipe(_Frozen):
    """How a candidate is really trained and measured: the recipe its accuracy is stated under.

    The default is the ranking benchmark's truth recipe (docs/proxy_ranking.md): 3 epochs over a
    fixed 10k-image subset of the training split, scored on the test split (10k images).
    """

    epochs: float = Field(default=3, gt=0, le=1000)
    images: int = Field(default=10_000, ge=100)  # a fixed, seeded subset of the training split
    batch_size: int = Field(default=128, ge=2, le=4096)
    lr: float = Field(default=2e-3, gt=0, le=1)
    weight_decay: float = Field(default=0.05, ge=0)
    warmup_steps: int = Field(default=20, ge=0)  # then cosine to zero over the whole run
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    test_images: int | None = Field(default=None, ge=100)  # None: the whole test split

    @property
    def steps(self) -> int:
        return max(1, -(-int(self.epochs * self.images) // self.batch_size))


class Int8Measurement(_Frozen):
    """How a trained candidate is also measured in INT8, as the chip computes (``nas.int8``):
    post-training static quantization (onnxruntime, QDQ, per-channel INT8 weights, INT8 activations
    calibrated on ``calibration_images`` training images drawn under the job's seed) in ``scope``:
    every tensor the chip computes in INT8 (``all``), or only convolutions and matmuls (``matmul``)."""

    measure: bool = True
    calibration_images: int = Field(default=256, ge=1, le=10_000)
    scope: Literal["all", "matmul"] = "all"


class Training(_Frozen):
    """Candidates really trained by the job: ``candidates`` to calibrate its accuracy predictor
    (an initial design, then the ones whose prediction would move the front most), and the top
    ``final`` of its front at the end, whose measured accuracies and weights are stored."""

    candidates: int = Field(default=8, ge=0, le=1000)
    final: int = Field(default=3, ge=0, le=100)
    recipe: TrainingRecipe = TrainingRecipe()
    timeout_s: float = Field(default=1800, gt=0)  # one training running longer is recorded as failed
    # successive halving (docs/training_schedule.md): the shares of the recipe's steps at which a
    # training is scored; it stops at a rung where even an optimistic extrapolation cannot reach the
    # front. [1]: today's full training, scored once. The front's best always train to the end.
    rungs: tuple[float, ...] = (1.0,)
    int8: Int8Measurement = Int8Measurement()  # each fully trained candidate measured in INT8 too

    @field_validator("rungs")
    @classmethod
    def _rungs(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or list(v) != sorted(set(v)) or v[0] <= 0 or v[-1] != 1:
            raise ValueError(
                f"list increasing shares of the recipe's steps in (0, 1], ending at 1 (e.g. [0.25, 0.5, 1]); got {list(v)}"
            )
        return tuple(float(r) for r in v)

    @property
    def enabled(self) -> bool:
        return self.candidates > 0 or self.final > 0


def _train_shorthand(v: Any) -> Any:
    """``train: N`` is short for ``{candidates: N}`` (0: train nothing at all)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return {"candidates": v, "final": 0} if v == 0 else {"candidates": v}
    return v


class ProxyEvaluatorSpec(_Frozen):
    """Score each candidate with an accuracy proxy (``nas proxy list``) on real images, and turn the
    scores into a predicted accuracy with a predictor the job fits on the candidates it trains."""

    proxy: str = "default"
    data: str = "fashion-mnist"  # or an ImageFolder directory
    data_dir: str | None = None  # where Fashion-MNIST's IDX files are (default: the usual places)
    resolution: int = Field(
        default=32, ge=8, le=1024
    )  # proxies and training run here; hardware is priced at input_shape
    batch: int = Field(default=64, ge=2, le=1024)
    train: Training = Training()  # 0: train nothing, and the accuracy objective is the proxy's score

    @field_validator("train", mode="before")
    @classmethod
    def _train_count(cls, v: Any) -> Any:
        return _train_shorthand(v)


class AcceleratorSearch(_Frozen):
    """Co-design: the chip's parameters searched with the network. Each knob (``nas hw sweep``'s:
    cores, array_rows, array_cols, weight_sets, l1_mib, l2_mib, clock_mhz) lists its choices; the
    rest of the chip is ``base``'s."""

    base: str = "metis-like"
    search: dict[str, tuple[int | float, ...]] = Field(min_length=1)

    @field_validator("search")
    @classmethod
    def _knobs(cls, v: dict[str, tuple[int | float, ...]]) -> dict[str, tuple[int | float, ...]]:
        unknown = sorted(set(v) - set(KNOBS))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a chip knob; search some of {', '.join(KNOBS)}")
        size = 1
        for knob, choices in v.items():
            if not choices or len(choices) > 64 or len(set(choices)) != len(choices):
                raise ValueError(f"{knob}: list 1 to 64 distinct choices, got {list(choices)}")
            size *= len(choices)
        if size > MAX_VARIANTS:
            raise ValueError(f"{size:,} chip variants is over the limit of {MAX_VARIANTS:,}; list fewer choices")
        return {k: tuple(int(c) if float(c).is_integer() else c for c in choices) for k, choices in v.items()}


class Constraints(_Frozen):
    """Hard limits, checked on the priced candidate before anything is built or scored."""

    max_latency_ms: float | None = Field(default=None, gt=0)
    min_fps: float | None = Field(default=None, gt=0)
    max_energy_mj: float | None = Field(default=None, gt=0)
    max_params: int | None = Field(default=None, gt=0)
    max_weight_mib: float | None = Field(default=None, gt=0)
    max_area_mm2: float | None = Field(default=None, gt=0)  # the chip's silicon (co-design searches it)
    min_accuracy: float | None = Field(default=None, ge=0, le=1)  # predicted or measured, checked once scored
    # accuracy lost to INT8 (FP32 minus INT8 top-1, 0-1: 0.01 is one point), predicted or measured
    max_int8_drop: float | None = Field(default=None, ge=0, le=1)
    deployable_only: bool = True  # reject networks with ops the accelerator cannot run


class Budget(_Frozen):
    trials: int | None = Field(default=100, ge=1)  # Optuna trials, duplicates and infeasible ones included
    wall_time_s: float | None = Field(default=None, gt=0)
    trial_timeout_s: float = Field(default=600, gt=0)  # an evaluation running longer is recorded as failed

    @model_validator(mode="after")
    def _bounded(self) -> Budget:
        if self.trials is None and self.wall_time_s is None:
            raise ValueError("set trials, wall_time_s or both: a job needs an end")
        return self


class Workers(_Frozen):
    count: int | None = Field(default=None, ge=0)  # evaluations in flight; None: the CPUs Ray sees; 0: no Ray
    address: str | None = None  # a Ray cluster to join; None: RAY_ADDRESS if set, else a local Ray
    cpus_per_worker: float = Field(default=1, gt=0)
    # GPUs Ray reserves for each worker (0.5: two workers share one); its trainings then run on
    # that GPU (mixed precision, channels-last). 0: the worker sees no GPU at all
    gpus_per_worker: float = Field(default=0, ge=0)

    @field_validator("gpus_per_worker")
    @classmethod
    def _gpu_share(cls, v: float, info: ValidationInfo) -> float:
        if 0 < v < 0.01:
            raise ValueError(f"{v:g}: a share below 0.01 of a GPU is not a reservation; ask >= 0.01, or 0 for none")
        if v > 1 and v != int(v):
            raise ValueError(f"{v:g}: a worker's share is a fraction of one GPU (below 1) or whole GPUs; say {v:.0f}")
        if v > 0 and info.data.get("count") == 0:  # count is validated first: it is declared first
            raise ValueError(
                f"{v:g} GPUs asked, but workers.count: 0 evaluates in the job's own process, where Ray "
                "assigns no GPU; set count >= 1 (or omit it), or gpus_per_worker: 0"
            )
        return v


def _kind(default: str):
    """Pick the union member from the data, so an error speaks of the member the user wrote."""

    def pick(v: Any) -> str:
        if (isinstance(v, dict) and "plugin" in v) or isinstance(v, PluginRef):
            return "plugin"
        return "name" if isinstance(v, str) else default

    return Discriminator(pick)


SpaceField = Annotated[
    Annotated[str, Tag("name")] | Annotated[SearchSpace, Tag("inline")] | Annotated[PluginRef, Tag("plugin")],
    _kind("inline"),
]
EvaluatorField = Annotated[
    Annotated[ProxyEvaluatorSpec, Tag("proxy")] | Annotated[PluginRef, Tag("plugin")],
    _kind("proxy"),
]
AcceleratorField = Annotated[
    Annotated[str, Tag("name")] | Annotated[AcceleratorSearch, Tag("search")],
    Discriminator(lambda v: "name" if isinstance(v, str) else "search"),
]
_TAGS = {"name", "inline", "plugin", "proxy", "search"}


# a dense task's evaluator defaults, where classification's would not do: the generated scenes
# (nas.tasks.scenes: 2000 training scenes), trained and scored at their canvas size
DENSE_EVALUATOR_DEFAULTS: dict[str, Any] = {
    "data": SCENES_DATASET,
    "resolution": SCENES_SIZE,
    "train": {"recipe": {"images": SCENES_TRAIN}},
}


def _with_defaults(given: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``given`` with ``defaults`` filled in where it says nothing, nested mappings merged."""
    out = dict(given)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = _with_defaults(out[key], value)
    return out


class JobSpec(_Frozen):
    name: str = Field(default="search", min_length=1, max_length=200)
    tags: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = Field(default=(), max_length=32)
    # what the networks do (nas.tasks): the job's `accuracy` objective is the task's metric, which the
    # spec may name as such (`map`, `miou`; `min_map`, `min_miou`)
    task: Literal[TASK_NAMES] = "classification"  # type: ignore[valid-type]
    space: SpaceField = "metaformer"
    input_shape: tuple[int, int, int] = (3, 224, 224)
    num_classes: int = Field(default=10, ge=1)
    accelerator: AcceleratorField = "metis-like"  # a chip, or a chip search (co-design)
    mode: Literal["throughput", "latency"] = "throughput"
    batch: int = Field(default=1, ge=1)
    objectives: tuple[str, ...] = ("accuracy", "latency_ms", "energy_mj")
    evaluator: EvaluatorField = ProxyEvaluatorSpec()
    constraints: Constraints = Constraints()
    reference_point: dict[str, float] = Field(default_factory=dict)  # hypervolume's; see nas.search
    budget: Budget = Budget()
    sampler: Literal[SAMPLERS] = DEFAULT_SAMPLER  # type: ignore[valid-type]
    seed: int = Field(default=0, ge=0, lt=2**31)
    workers: Workers = Workers()

    @model_validator(mode="before")
    @classmethod
    def _task_metric_names(cls, data: Any) -> Any:
        """The task's metric by its own name (objective ``map``, constraint ``min_map``) is the job's
        ``accuracy``, stored and ranked as such; another task's metric name is an error."""
        if not isinstance(data, dict):
            return data
        task = TASKS.get(str(data.get("task", "classification")))
        if task is None:
            return data  # the field's own check names the tasks
        own = task.metric
        if task.name in DENSE_TASKS:  # the evaluator's defaults are classification's: a dense task has its own
            evaluator = data.get("evaluator", {})
            if isinstance(evaluator, dict) and "plugin" not in evaluator:
                evaluator = {
                    **evaluator,
                    **({"train": _train_shorthand(evaluator["train"])} if "train" in evaluator else {}),
                }
                data = {**data, "evaluator": _with_defaults(evaluator, DENSE_EVALUATOR_DEFAULTS)}
                if evaluator.get("data", SCENES_DATASET) == SCENES_DATASET and "num_classes" not in data:
                    # the scenes' classes (the background too, for segmentation)
                    data = {**data, "num_classes": SCENES_CLASSES + (task.name == "segmentation")}
        others = {t.metric: t.name for t in TASKS.values() if t.metric not in (own, "accuracy")}
        objectives = data.get("objectives")
        if isinstance(objectives, (list, tuple)):
            for name in objectives:
                if name in others:
                    raise ValueError(
                        f"objectives: {name} is the metric of {others[name]}; set task: {others[name]}, "
                        f"or name this {task.name} job's metric {own}"
                    )
            data = {**data, "objectives": ["accuracy" if o == own else o for o in objectives]}
        constraints = data.get("constraints")
        reference = data.get("reference_point")
        if own != "accuracy" and isinstance(reference, dict) and own in reference:
            data = {**data, "reference_point": {("accuracy" if k == own else k): v for k, v in reference.items()}}
        if isinstance(constraints, dict):
            for name, owner in others.items():
                if f"min_{name}" in constraints:
                    raise ValueError(
                        f"constraints.min_{name}: {name} is the metric of {owner}; set task: {owner}, "
                        f"or bound this {task.name} job's metric with min_{own}"
                    )
            if own != "accuracy" and f"min_{own}" in constraints:
                if "min_accuracy" in constraints:
                    raise ValueError(f"constraints: min_{own} and min_accuracy are one bound here; give one")
                constraints = {k: v for k, v in constraints.items() if k != f"min_{own}"}
                data = {**data, "constraints": {**constraints, "min_accuracy": data["constraints"][f"min_{own}"]}}
        return data

    @model_validator(mode="after")
    def _dense_task(self) -> JobSpec:
        data = getattr(self.evaluator, "data", None)
        if self.task not in DENSE_TASKS:
            if data == SCENES_DATASET:
                raise ValueError(
                    f"evaluator.data: {SCENES_DATASET} holds detection and segmentation scenes; set task: "
                    "detection or segmentation, or train a classifier on fashion-mnist or an image folder"
                )
            return self
        metric = TASKS[self.task].metric
        if isinstance(self.space, PluginRef) or isinstance(self.evaluator, PluginRef):
            field = "space" if isinstance(self.space, PluginRef) else "evaluator"
            raise ValueError(
                f"{field}: a {self.task} job searches the MetaFormer space's dense networks with the proxy "
                "evaluator; plug-ins serve classification jobs. Use a MetaFormer space, or task: classification"
            )
        if field := self._int8_field():
            raise ValueError(
                f"{field}: INT8 {metric} is not measured for {self.task} yet (INT8 is measured on classifiers); "
                "drop accuracy_int8 / max_int8_drop"
            )
        if data == "fashion-mnist":
            raise ValueError(
                f"evaluator.data: fashion-mnist is a classification set; a {self.task} job trains on "
                f"{SCENES_DATASET} (generated here) or a folder in COCO / mask format (docs/dense_data.md)"
            )
        scenes = SCENES_CLASSES + (self.task == "segmentation")
        if data == SCENES_DATASET and self.num_classes != scenes:
            raise ValueError(
                f"num_classes: {SCENES_DATASET} has {scenes} classes for {self.task}"
                f"{' (10 objects and the background, class 0)' if self.task == 'segmentation' else ''}; "
                f"set num_classes: {scenes} (or omit it)"
            )
        return self

    @field_validator("input_shape")
    @classmethod
    def _positive(cls, v: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(v) < 1:
            raise ValueError(f"every size must be >= 1, got {list(v)} (C, H, W)")
        return v

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError(f"name at least one of {', '.join(OBJECTIVES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"an objective is listed twice: {list(v)}")
        check_objectives(v)
        return v

    @model_validator(mode="after")
    def _accuracy_bound(self) -> JobSpec:
        if self.accuracy_kind() == "predicted":
            return self
        if self.constraints.min_accuracy is not None and self.accuracy_kind() == "score":
            raise ValueError(
                "constraints.min_accuracy: this job's accuracy is a proxy score without units; "
                "train candidates (evaluator.train > 0) so that it is a predicted accuracy, or drop the bound"
            )
        if field := self._int8_field():
            raise ValueError(
                f"{field}: INT8 accuracy is measured on the networks a job trains and predicted from them; this "
                "job trains none (a plug-in evaluator's or evaluator.train: 0): train candidates with the proxy "
                "evaluator (evaluator.train > 0), or drop accuracy_int8 / max_int8_drop"
            )
        return self

    @model_validator(mode="after")
    def _reference_point(self) -> JobSpec:
        extra = sorted(set(self.reference_point) - set(self.objectives))
        if extra:
            raise ValueError(f"reference_point: {', '.join(extra)} is not among the objectives {list(self.objectives)}")
        return self

    def _int8_field(self) -> str | None:
        """The field that asks for INT8 accuracy (a bound on its drop, or the objective), if any."""
        if self.constraints.max_int8_drop is not None:
            return "constraints.max_int8_drop"
        return "objectives" if "accuracy_int8" in self.objectives else None

    def to_json(self) -> str:
        return self.model_dump_json()

    def accuracy_kind(self) -> str:
        """What the ``accuracy`` objective is: ``predicted`` (0-1, from the job's calibrated
        predictor, measured where trained), ``score`` (a proxy's ranking score, no units) or
        ``evaluator`` (whatever a plug-in evaluator returns, e.g. a table's accuracy)."""
        if isinstance(self.evaluator, PluginRef):
            return "evaluator"
        return "predicted" if self.evaluator.train.enabled else "score"

    @property
    def accelerator_name(self) -> str:
        """The chip (co-design: the base the searched knobs are laid over)."""
        return self.accelerator if isinstance(self.accelerator, str) else self.accelerator.base

    @property
    def chip_search(self) -> dict[str, tuple[float, ...]]:
        """knob -> choices of a co-design job; empty otherwise."""
        return {} if isinstance(self.accelerator, str) else dict(self.accelerator.search)

    def ray_address(self) -> str | None:
        return self.workers.address or os.environ.get("RAY_ADDRESS") or None


def load_spec(source: str | Path | dict[str, Any], **overrides: Any) -> JobSpec:
    """A spec from a YAML/JSON file or a mapping; ``overrides`` replace top-level keys.

    Names (space, accelerator, proxy, plug-ins) are checked when the job resolves them
    (``nas.search.resolve``), where their registries load.
    """
    where = ""
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        where = f"{path}: "
        try:
            text = path.read_text()
        except OSError as err:
            raise SpecError(f"{path}: cannot read the job spec: {err.strerror or err}") from err
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as err:
            raise SpecError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from err
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise SpecError(f"{where}a job spec is a mapping of fields (name, space, objectives, ...)")
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return JobSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(where + describe_spec_error(err)) from err


def describe_spec_error(err: ValidationError) -> str:
    """One 'field.path: message' line per error, without pydantic's union-member tags."""
    lines = []
    for e in spec_error_details(err):
        loc = ".".join(str(p) for p in e["loc"][1:])
        lines.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    return "\n  ".join(lines)


def spec_error_details(err: ValidationError) -> list[dict[str, Any]]:
    """The errors in FastAPI's shape (``loc`` from ``body``, ``msg``, ``type``), without pydantic's
    union-member tags; an unknown key gets the nearest valid name (``max_energy_mJ``: did you mean
    ``max_energy_mj``?)."""
    details = []
    for e in err.errors(include_url=False, include_context=False, include_input=False):
        loc = e["loc"]
        if e["type"] == "extra_forbidden" and (near := nearest_field(loc)):
            e = {**e, "msg": f"{e['msg']}; did you mean `{near}`?"}
        if len(loc) >= 2 and loc[0] in ("space", "evaluator", "accelerator") and loc[1] in _TAGS:
            loc = loc[:1] + loc[2:]
        loc = [p for p in loc if not str(p).startswith("function-")]
        details.append({"loc": ["body", *loc], "msg": e["msg"].removeprefix("Value error, "), "type": e["type"]})
    return details


def nearest_field(loc: tuple[str | int, ...]) -> str | None:
    """The valid field name nearest to the unknown key at ``loc`` (a pydantic error location in a
    JobSpec, union tags included), or None when none is close."""
    import difflib

    models: list[tuple[str | None, type[BaseModel]]] = [(None, JobSpec)]
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if any(tag == part for tag, _ in models):  # a union's member, named by its tag
            models = [(None, m) for tag, m in models if tag == part]
            continue
        fields = [m.model_fields[part] for _, m in models if part in m.model_fields]
        models = [found for f in fields for found in _models_in(f.annotation)]
    names = {n for _, m in models for n in m.model_fields}
    key = str(loc[-1]) if loc else ""
    exact = [n for n in names if n.lower() == key.lower()]
    close = exact or difflib.get_close_matches(key.lower(), sorted(names), n=1, cutoff=0.6)
    return close[0] if close else None


def _models_in(annotation: Any, tag: str | None = None) -> list[tuple[str | None, type[BaseModel]]]:
    """The models a field's annotation can hold, each with its union tag (``Tag("proxy")``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(tag, annotation)]
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        return _models_in(base, next((m.tag for m in meta if isinstance(m, Tag)), tag))
    return [found for arg in get_args(annotation) for found in _models_in(arg, tag)]
