"""Plug-ins: a job can search its own space and score with its own evaluator, named by import path
(``package.module:object``) in the job spec. See ``docs/plugins.md`` for a worked example.

The protocols, in full:

- a **space** has ``name``, ``sample(trial) -> arch``, ``lower(arch, input_shape, num_classes) ->
  list[hwmodels.Layer]`` (the hardware model prices this IR) and ``arch_from_json(text) -> arch``;
  optionally ``build(arch, input_shape, num_classes) -> nn.Module``, which exports need. An arch
  has ``arch_hash`` (its identity: equal hashes are one network, evaluated once), ``name`` and
  ``to_json()``. ``sample`` draws with ``trial.suggest_categorical`` / ``suggest_int`` /
  ``suggest_float`` so that every Optuna sampler can search it.
- an **evaluator** is a callable ``evaluator(arch) -> {"accuracy": float, ...}``: higher accuracy is
  better, other keys are stored as the candidate's scores. It is built once per worker, so loading
  data belongs in its constructor. An optional ``accuracy_floor`` attribute (the worst accuracy it
  can return, e.g. 0.0 for a table of accuracies) anchors the hypervolume's reference point.

The plug-in object named in the spec is called with the spec's ``options`` as keyword arguments and
returns the space or evaluator (a class is such a callable).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from hwmodels import Layer
from nas.spec import JobSpec, PluginRef, SpecError
from search_spaces import ArchConfig, SearchSpace, get_space, lower


@runtime_checkable
class Arch(Protocol):
    @property
    def arch_hash(self) -> str: ...

    @property
    def name(self) -> str: ...

    def to_json(self) -> str: ...


@runtime_checkable
class Space(Protocol):
    name: str

    def sample(self, trial: Any) -> Arch: ...

    def lower(self, arch: Any, input_shape: Sequence[int], num_classes: int) -> list[Layer]: ...

    def arch_from_json(self, text: str) -> Arch: ...


class Evaluator(Protocol):
    def __call__(self, arch: Any) -> Mapping[str, float]: ...


class MetaFormerSpace:
    """The shipped MetaFormer spaces, seen through the plug-in protocol; a dense ``task`` samples
    the space's hierarchical backbones with its necks and the task's heads."""

    def __init__(self, space: SearchSpace, task: str = "classification") -> None:
        self.space, self.task = space, task
        self.name = space.name

    def sample(self, trial: Any) -> ArchConfig:
        return self.space.sample(trial, task=self.task)

    def lower(self, arch: ArchConfig, input_shape: Sequence[int], num_classes: int) -> list[Layer]:
        return lower(arch, input_shape, num_classes=num_classes)

    def arch_from_json(self, text: str) -> ArchConfig:
        return ArchConfig.from_json(text)

    def build(self, arch: ArchConfig, input_shape: Sequence[int], num_classes: int) -> Any:
        """The initialised ``nn.Module`` at the deployment input shape (what an export ships)."""
        from search_spaces import build_model  # torch loads here

        return build_model(arch, num_classes=num_classes, in_chans=input_shape[0], img_size=tuple(input_shape[1:]))


def load_object(path: str, *, field: str) -> Any:
    """The object at ``package.module:object``; errors name the spec ``field``."""
    module_name, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise SpecError(
            f"{field}", f"cannot import module {module_name!r} ({err}); is its package installed or on PYTHONPATH?"
        ) from err
    try:
        return getattr(obj, attr)  # one name of the module (PluginRef refuses attribute chains)
    except AttributeError as err:
        raise SpecError(f"{field}", f"module {module_name!r} has no {attr!r}") from err


def _call_plugin(ref: PluginRef, field: str) -> Any:
    factory = load_object(ref.plugin, field=f"{field}.plugin")
    if not callable(factory):
        raise SpecError(
            f"{field}.plugin", f"{ref.plugin} is a {type(factory).__name__}, not a callable that builds one"
        )
    try:
        return factory(**ref.options)
    except TypeError as err:
        raise SpecError(f"{field}.options", f"{ref.plugin} rejected them: {err}") from err


def resolve_space(spec: JobSpec) -> Space:
    """The spec's space: a registered name or YAML path, an inline space, or a plug-in."""
    if isinstance(spec.space, PluginRef):
        space = _call_plugin(spec.space, "space")
        if not isinstance(space, Space):
            missing = [m for m in ("name", "sample", "lower", "arch_from_json") if not hasattr(space, m)]
            raise SpecError("space.plugin", f"{spec.space.plugin} lacks {', '.join(missing)} (see nas.plugins)")
        return space
    try:
        space = spec.space if isinstance(spec.space, SearchSpace) else get_space(spec.space)
        space.check_task(spec.task)
    except (KeyError, ValueError) as err:  # SpaceError is a ValueError: an unknown name, or no dense part
        raise SpecError("space", f"{err}") from err
    return MetaFormerSpace(space, spec.task)


def make_evaluator(spec: JobSpec) -> Evaluator:
    """The spec's evaluator, built where it will run (a worker)."""
    if isinstance(spec.evaluator, PluginRef):
        evaluator = _call_plugin(spec.evaluator, "evaluator")
        if not callable(evaluator):
            raise SpecError(
                "evaluator.plugin", f"{spec.evaluator.plugin} built a non-callable {type(evaluator).__name__}"
            )
        return evaluator
    if isinstance(spec.space, PluginRef):
        raise SpecError(
            "evaluator", "the proxy evaluator builds MetaFormer networks; a plug-in space needs a plug-in evaluator"
        )
    from nas.evaluators import ProxyEvaluator  # torch loads here, in the worker

    e = spec.evaluator
    dense_data = None
    if spec.task != "classification":  # the task's own images, from its folder (the scenes: made on first use)
        from nas.tasks.scenes import dataset_path

        dense_data = dataset_path(e.data, data_dir=e.data_dir)
    return ProxyEvaluator(
        proxy=e.proxy, data=e.data, data_dir=e.data_dir, resolution=e.resolution, batch=e.batch, seed=spec.seed,
        task=spec.task, dense_data=dense_data,
    )  # fmt: skip
