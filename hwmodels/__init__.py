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
    is_path,
    load_accelerator,
)
from hwmodels._area import area_mm2, area_split_mm2, peak_tops
from hwmodels._batched import Totals, estimate_many
from hwmodels._estimate import estimate, imc_tiles
from hwmodels._ir import (
    BYTES_PER_ELEMENT,
    COMPUTE_KINDS,
    STATIC_WEIGHT_KINDS,
    Layer,
    OpKind,
    conv_kind,
    held_bytes,
    op_counts,
    total_macs,
    total_params,
)
from hwmodels._model import MODES
from hwmodels._report import CostReport, LayerCost
from hwmodels._variants import KNOBS, MAX_VARIANTS, chip_grid, chip_variant

__all__ = [
    "BYTES_PER_ELEMENT",
    "COMPUTE_KINDS",
    "DEFAULT_ACCELERATOR",
    "KNOBS",
    "MAX_VARIANTS",
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
    "Totals",
    "accelerator_names",
    "area_mm2",
    "area_split_mm2",
    "chip_grid",
    "chip_variant",
    "conv_kind",
    "estimate",
    "estimate_many",
    "held_bytes",
    "imc_tiles",
    "is_path",
    "load_accelerator",
    "op_counts",
    "peak_tops",
    "total_macs",
    "total_params",
]
