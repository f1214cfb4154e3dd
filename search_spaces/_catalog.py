"""The registry of search spaces: the YAML files shipped in ``spaces/`` plus any registered in code."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import optuna

from hwmodels import is_path
from search_spaces._arch import ArchConfig
from search_spaces._errors import SpaceError, UnknownNameError
from search_spaces._space import SearchSpace

SPACES_DIR = Path(__file__).parent / "spaces"
DEFAULT_SPACE = "metaformer"
_registered: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    """Make a space built in Python available to ``get_space`` by its name."""
    _registered[space.name] = space
    return space


def space_names() -> list[str]:
    return sorted({p.stem for p in SPACES_DIR.glob("*.yaml")} | set(_registered))


@cache
def _shipped(name: str) -> SearchSpace:
    space = SearchSpace.from_yaml(SPACES_DIR / f"{name}.yaml")
    if space.name != name:
        raise SpaceError(f"{SPACES_DIR / name}.yaml: `name` is {space.name!r}, expected {name!r}")
    return space


def get_space(name: str = DEFAULT_SPACE) -> SearchSpace:
    """A registered space by name, or a space YAML file by path (``hwmodels.is_path``)."""
    if is_path(name):  # never a bare word: a name is not opened as a file, whatever the directory holds
        if not Path(name).is_file():
            raise SpaceError(f"{name}: no such file")
        return SearchSpace.from_yaml(name)
    if name in _registered:
        return _registered[name]
    if name in space_names():
        return _shipped(name)
    raise UnknownNameError(f"unknown search space {name[:100]!r}; known: {', '.join(space_names())} (or a YAML path)")


def sample_archs(space: SearchSpace, n: int, *, seed: int = 0, task: str = "classification") -> list[ArchConfig]:
    """``n`` architectures for ``task`` drawn uniformly (Optuna's RandomSampler) — reproducible
    under ``seed``. A dense task on a space that cannot give it raises ``SpaceError`` saying why."""
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    if task != "classification" and hasattr(space, "check_task"):  # a plugin space checks in its sample()
        space.check_task(task)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
    for _ in range(n):
        trial = study.ask()
        # a space's sample(trial) from before dense tasks still serves classification
        archs.append(space.sample(trial) if task == "classification" else space.sample(trial, task=task))
        study.tell(trial, 0.0)
    return archs
