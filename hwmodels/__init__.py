"""Hardware models: the layer IR, accelerator descriptions and the analytical cost model of IMC
dataflow accelerators.

This package imports neither torch nor the other packages of the project: the IR is its only input.
"""

from hwmodels._accelerator import (
    DEFAULT_ACCELERATOR,
    Accelerator,
    AcceleratorError,
    ChipConfig,
    MappingPolicy,
    accelerator_names,
    load_accelerator,
)
from hwmodels._estimate import MODES, estimate, imc_tiles
from hwmodels._ir import (
    BYTES_PER_ELEMENT,
    COMPUTE_KINDS,
    STATIC_WEIGHT_KINDS,
    Layer,
    OpKind,
    conv_kind,
    op_counts,
    total_macs,
    total_params,
)
from hwmodels._report import CostReport, LayerCost

__all__ = [
    "BYTES_PER_ELEMENT",
    "COMPUTE_KINDS",
    "DEFAULT_ACCELERATOR",
    "MODES",
    "STATIC_WEIGHT_KINDS",
    "Accelerator",
    "AcceleratorError",
    "ChipConfig",
    "CostReport",
    "Layer",
    "LayerCost",
    "MappingPolicy",
    "OpKind",
    "accelerator_names",
    "conv_kind",
    "estimate",
    "imc_tiles",
    "load_accelerator",
    "op_counts",
    "total_macs",
    "total_params",
]
