"""Hardware models: the layer IR and (next) the analytical cost model of IMC dataflow accelerators.

This package imports neither torch nor the other packages of the project: the IR is its only input.
"""

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

__all__ = [
    "BYTES_PER_ELEMENT",
    "COMPUTE_KINDS",
    "STATIC_WEIGHT_KINDS",
    "Layer",
    "OpKind",
    "conv_kind",
    "op_counts",
    "total_macs",
    "total_params",
]
