"""Chip area from the per-unit figures of a chip's ``area`` section: what a co-design search trades
against speed and energy. The model counts the AI cores (IMC arrays, L1, vector and depthwise units,
control) and the shared L2; the SoC's host CPUs, PCIe and DRAM interfaces are not in it."""

from __future__ import annotations

from hwmodels._accelerator import ChipConfig

_MIB = 1 << 20


def area_split_mm2(chip: ChipConfig) -> dict[str, float] | None:
    """mm² per part (imc, l1, core_logic, l2) and the total; None if the chip has no area model."""
    a = chip.area
    if a is None:
        return None
    parts = {
        "imc": chip.cores * chip.imc.weight_bytes / _MIB * a.imc_mm2_per_mib,
        "l1": chip.cores * chip.memory.l1_bytes / _MIB * a.sram_mm2_per_mib,
        "core_logic": chip.cores * a.core_logic_mm2,
        "l2": chip.memory.l2_bytes / _MIB * a.sram_mm2_per_mib,
    }
    return {**parts, "total": sum(parts.values())}


def area_mm2(chip: ChipConfig) -> float | None:
    split = area_split_mm2(chip)
    return None if split is None else split["total"]


def peak_tops(chip: ChipConfig) -> float:
    """Peak INT8 tera-operations per second (2 per MAC) of the chip's arrays."""
    return 2 * chip.cores * chip.imc.rows * chip.imc.cols / chip.imc.input_bits * chip.hz / 1e12
