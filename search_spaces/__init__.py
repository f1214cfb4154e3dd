"""The MetaFormer search space: architecture configs, spaces, presets, the model builder and the
analytical lowering to the layer IR."""

from search_spaces._arch import ArchConfig, StageConfig
from search_spaces.presets import get_preset

__all__ = ["ArchConfig", "StageConfig", "get_preset"]
