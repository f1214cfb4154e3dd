"""Accelerator descriptions as data: what the chip is (``ChipConfig``) and how the compiler maps a
network onto it (``MappingPolicy``), kept apart as ZigZag keeps hardware and mapping apart.

Both load from YAML in this package (``accelerators/``, ``mappings/``) or from a path. Units are in
the field names (``_mhz``, ``_pj``, ``_gbps`` = GB/s, ``_bytes``, ``_us``, ``_w``); each YAML value
carries its source in a comment.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal, NamedTuple

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, model_validator

from hwmodels._ir import OpKind

PACKAGE_DIR = Path(__file__).parent
ACCELERATORS_DIR = PACKAGE_DIR / "accelerators"
MAPPINGS_DIR = PACKAGE_DIR / "mappings"
DEFAULT_ACCELERATOR = "metis-like"

Unit = Literal["imc", "dwpu", "dpu", "dma", "host"]


class AcceleratorError(ValueError):
    """An accelerator or mapping that cannot be loaded; names the file and the field."""


PHYSICAL = (1e-6, 1e15)  # any non-zero number of a chip (pJ, GB/s, MHz, bytes) lies between these


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN, inf: never a size or bound

    @model_validator(mode="after")
    def _physical(self) -> _Frozen:
        """A denormal clock or a 10^300-byte memory is no chip, and its cost would divide by ~0."""
        low, high = PHYSICAL
        for name, value in self:
            if isinstance(value, int | float) and not isinstance(value, bool) and value and not low <= value <= high:
                raise ValueError(f"{name}: {value:g} is outside {low:g} to {high:g}, the range of a physical chip")
        return self


class ImcConfig(_Frozen):
    """The in-memory-computing matrix engine of one core."""

    rows: PositiveInt  # inputs per array
    cols: PositiveInt  # outputs per array
    weight_sets: PositiveInt  # weight tiles stored per array; one computes while another is rewritten
    gate_rows: PositiveInt  # inputs are gated (powered) in blocks of this many rows
    gate_cols: PositiveInt  # outputs are gated in blocks of this many columns
    input_bits: PositiveInt  # bit-serial activations: cycles per matrix-vector product
    outputs_per_cycle: PositiveInt  # accumulator results read out per cycle (into the DPU)
    mac_energy_pj: PositiveFloat  # per 8-bit MAC of an active (gated-on) cell
    write_gbps: PositiveFloat  # weight (re)write bandwidth per core
    write_energy_pj_per_byte: PositiveFloat

    @property
    def weight_bytes(self) -> int:
        return self.rows * self.cols * self.weight_sets  # INT8: one byte per cell and set


class DwpuConfig(_Frozen):
    """The depthwise / pooling unit of one core."""

    macs_per_cycle: PositiveFloat
    mac_energy_pj: PositiveFloat


class DpuConfig(_Frozen):
    """The vector unit of one core: element-wise ops, activations, norms, softmax, dynamic matmuls."""

    ops_per_cycle: PositiveFloat  # element-wise operations (and MACs of dynamic matmuls) per cycle
    op_energy_pj: PositiveFloat


class MemoryConfig(_Frozen):
    l1_bytes: PositiveInt  # per core
    l1_gbps: PositiveFloat  # per core
    l1_energy_pj_per_byte: PositiveFloat
    l2_bytes: PositiveInt  # shared
    l2_gbps: PositiveFloat  # aggregate, shared by the cores
    l2_energy_pj_per_byte: PositiveFloat
    dram_bytes: int = Field(ge=0)  # 0: no DRAM
    dram_gbps: PositiveFloat
    dram_energy_pj_per_byte: PositiveFloat


class HostConfig(_Frozen):
    """Where ops the chip cannot run go (host fallback): across PCIe to the host CPU."""

    link_gbps: PositiveFloat
    round_trip_us: PositiveFloat  # fixed cost of one hand-off and back
    gops: PositiveFloat  # host throughput on the fallen-back element-wise work
    link_energy_pj_per_byte: PositiveFloat


class AreaConfig(_Frozen):
    """Silicon area per unit at the chip's process node (hwmodels._area adds it up)."""

    node_nm: PositiveFloat
    imc_mm2_per_mib: PositiveFloat  # IMC weight cells with their adder trees, per MiB of weights
    sram_mm2_per_mib: PositiveFloat  # L1 / L2 SRAM macros, per MiB
    core_logic_mm2: PositiveFloat  # DPU, DWPU, control and DMA of one core


class ChipConfig(_Frozen):
    """What the chip is."""

    name: str
    description: str = ""
    clock_mhz: PositiveFloat
    cores: PositiveInt
    imc: ImcConfig
    dwpu: DwpuConfig
    dpu: DpuConfig
    memory: MemoryConfig
    host: HostConfig
    layer_overhead_us: float = Field(ge=0)  # control / DMA set-up per scheduled kernel
    # runtime cost of one inference on a core (start, completion, I/O descriptors); serial with its compute
    frame_overhead_us: float = Field(0.0, ge=0)
    # a global reduction (e.g. squeeze-excite's pool) drains the core's layer pipeline before the next op starts
    sync_overhead_us: float = Field(0.0, ge=0)
    static_power_w: float = Field(ge=0)  # leakage and always-on logic: paid for every second a frame takes
    core_active_power_w: float = Field(ge=0)  # clock tree, control and DMA engines of a busy core
    default_mapping: str
    area: AreaConfig | None = None  # None: no area model for this chip

    @property
    def hz(self) -> float:
        return self.clock_mhz * 1e6


class MappingPolicy(_Frozen):
    """How a compiler maps the IR's op kinds onto the chip's units, and what it does with functions
    the chip's operator tables do not list."""

    name: str
    description: str = ""
    units: dict[OpKind, Unit]  # every op kind of the IR -> the unit that runs it
    supported: dict[Unit, tuple[str, ...]]  # unit -> functions it runs natively ("*": all)
    unsupported: Literal["dpu_emulate", "host_fallback", "infeasible"]
    emulation_passes: dict[str, PositiveFloat]  # function -> DPU passes per element when emulated
    default_emulation_passes: PositiveFloat
    fusable: tuple[OpKind, ...]  # op kinds the DPU applies on a producer's output stream for free
    # emulated functions the compiler still applies on a producer's output stream, with their passes
    # (SiLU exported as Sigmoid + Mul: a LUT and a multiply on the conv's output, no memory round trip)
    fused_emulation: tuple[str, ...] = ()
    matmul_array_rewrite: bool  # may attention's dynamic matmuls be written into the arrays instead
    # most copies of a small layer's weights the compiler lays block-diagonally in one array, each
    # computing another output pixel in the same MVM (1: none)
    weight_replication: float = Field(1.0, ge=1)

    @model_validator(mode="after")
    def _every_kind_has_a_unit(self) -> MappingPolicy:
        missing = [str(kind) for kind in OpKind if kind not in self.units]
        if missing:
            raise ValueError(f"units: no unit for op kinds {missing}; map each to one of {list(Unit.__args__)}")
        return self

    def runs_natively(self, unit: str, fn: str) -> bool:
        listed = self.supported.get(unit, ())
        return "*" in listed or fn in listed


class Accelerator(NamedTuple):
    chip: ChipConfig
    mapping: MappingPolicy

    @property
    def name(self) -> str:
        return (
            self.chip.name
            if self.mapping.name == self.chip.default_mapping
            else f"{self.chip.name}+{self.mapping.name}"
        )


def _read(path: Path, directory: Path, what: str, seen: tuple[Path, ...] = ()) -> dict:
    """The YAML as a dict; a file with ``base: NAME`` is that base with the file's keys laid over it
    (nested mappings merged), so a variant states only what differs."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise AcceleratorError(f"{path}: cannot read the {what}: {err}") from err
    if not isinstance(data, dict):
        raise AcceleratorError(f"{path}: the {what} must be a mapping of fields")
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = _resolve(str(base), directory, what)
    if base_path in seen or base_path == path:
        raise AcceleratorError(f"{path}: base: {base!r} refers back to itself")
    return _merge(_read(base_path, directory, what, (*seen, path)), data)


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _load_yaml(path: Path, directory: Path, model: type[BaseModel], what: str) -> BaseModel:
    data = _read(path, directory, what)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in err.errors()
        )
        raise AcceleratorError(f"{path}: {fields}") from err


def is_path(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a file rather than a shipped entry: a ``Path``, or a string
    with a directory separator or a YAML suffix. A bare word is a name and is never opened as a
    file, whatever files the working directory holds."""
    text = str(name_or_path)
    return isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith((".yaml", ".yml"))


def _resolve(name_or_path: str | Path, directory: Path, what: str) -> Path:
    if not is_path(name_or_path):
        shipped = {p.stem: p for p in directory.glob("*.yaml")}
        if name_or_path in shipped:
            return shipped[name_or_path]
        known = ", ".join(sorted(shipped))
        raise AcceleratorError(f"unknown {what} {str(name_or_path)[:100]!r}; known: {known} (or a YAML path)")
    path = Path(name_or_path)
    if not path.is_file():
        raise AcceleratorError(f"{path}: no such {what} file")
    return path


@cache
def _load_chip(path: Path) -> ChipConfig:
    return _load_yaml(path, ACCELERATORS_DIR, ChipConfig, "accelerator")  # type: ignore[return-value]


@cache
def _load_mapping(path: Path) -> MappingPolicy:
    return _load_yaml(path, MAPPINGS_DIR, MappingPolicy, "mapping policy")  # type: ignore[return-value]


def load_accelerator(
    name_or_path: str | Path | None = None, *, mapping: str | None = None, unsupported: str | None = None
) -> Accelerator:
    """Load a chip (default: ``metis-like``) with its default mapping policy, or the one named;
    a name is a shipped file's stem, a path (``is_path``) a YAML file of the caller's; ``unsupported`` overrides the policy's treatment of functions the chip does not list."""
    chip = _load_chip(_resolve(name_or_path or DEFAULT_ACCELERATOR, ACCELERATORS_DIR, "accelerator"))
    policy = _load_mapping(_resolve(mapping or chip.default_mapping, MAPPINGS_DIR, "mapping policy"))
    if unsupported is not None:
        try:
            policy = MappingPolicy.model_validate(
                {**policy.model_dump(), "unsupported": unsupported, "name": f"{policy.name}/{unsupported}"}
            )
        except ValidationError as err:
            choices = MappingPolicy.model_fields["unsupported"].annotation.__args__
            raise AcceleratorError(f"unsupported: {unsupported!r} is not one of {list(choices)}") from err
    return Accelerator(chip, policy)


def accelerator_names() -> list[str]:
    return sorted(p.stem for p in ACCELERATORS_DIR.glob("*.yaml"))
