"""The MetaFormer search space: architecture configs, spaces, presets, the model builder and the
layer IR producers; classifiers, and detection / segmentation networks (a neck and a head on a
hierarchical backbone).

Importing this package does not import torch: ``build_model`` and ``trace`` load it on first call,
so pricing a config (``lower``) stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from search_spaces._arch import (
    ACTS,
    DENSE_TASKS,
    MIXERS,
    NORMS,
    TASKS,
    ArchConfig,
    DetectionHeadConfig,
    NeckConfig,
    SegmentationHeadConfig,
    StageConfig,
)
from search_spaces._catalog import DEFAULT_SPACE, get_space, register_space, sample_archs, space_names
from search_spaces._errors import SpaceError, UnknownNameError, describe_validation_error
from search_spaces._lower import lower
from search_spaces._space import SearchSpace
from search_spaces.presets import PRESETS, get_preset

if TYPE_CHECKING:
    from torch import nn

    from hwmodels import Layer


def build_model(arch: ArchConfig, **kwargs: Any) -> nn.Module:
    """``ArchConfig`` -> initialised ``nn.Module``; see ``search_spaces._builder.build_model``."""
    from search_spaces._builder import build_model as _build

    return _build(arch, **kwargs)


def trace(module: nn.Module, input_shape: Sequence[int]) -> list[Layer]:
    """Layer IR of any PyTorch module; see ``search_spaces._trace.trace``."""
    from search_spaces._trace import trace as _trace

    return _trace(module, input_shape)


__all__ = [
    "ACTS",
    "DEFAULT_SPACE",
    "DENSE_TASKS",
    "MIXERS",
    "NORMS",
    "PRESETS",
    "TASKS",
    "ArchConfig",
    "DetectionHeadConfig",
    "NeckConfig",
    "SearchSpace",
    "SegmentationHeadConfig",
    "SpaceError",
    "StageConfig",
    "UnknownNameError",
    "build_model",
    "describe_validation_error",
    "get_preset",
    "get_space",
    "lower",
    "register_space",
    "sample_archs",
    "space_names",
    "trace",
]
