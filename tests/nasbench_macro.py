"""NAS-Bench-Macro through the plug-in protocol (``nas.plugins``): its 6,561 networks as a search
space, their trained CIFAR-10 accuracy as the evaluator, latency and energy from our hardware model.

    PYTHONPATH=tests nas run docs/examples/nas-bench-macro.yaml

The space's IR is exact and cheap: a layer's IR depends only on its position and choice (the
shapes at each position are fixed), so three traced networks ("0"*8, "1"*8, "2"*8) hold every
block, and a code's IR is the concatenation of its blocks (tests/test_plugins.py checks it against
tracing the whole network). It lives with the tests, which search through it, and
benchmarks/search_efficiency.py imports it from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from hwmodels import Layer

TABLE = Path(__file__).resolve().parents[1] / "benchmarks" / "data" / "nas-bench-macro_cifar10.json"
CHOICES = ("0", "1", "2")  # identity, inverted residual k3 e3, inverted residual k5 e6
LAYERS = 8


@dataclass(frozen=True)
class MacroArch:
    code: str  # 8 digits of 0/1/2, one per searchable layer

    @property
    def arch_hash(self) -> str:
        return self.code

    @property
    def name(self) -> str:
        return f"macro-{self.code}"

    def to_json(self) -> str:
        return json.dumps({"code": self.code})


class MacroSpace:
    name = "nas-bench-macro"

    def sample(self, trial: Any) -> MacroArch:
        return MacroArch("".join(trial.suggest_categorical(f"layer{i}", CHOICES) for i in range(LAYERS)))

    def lower(self, arch: MacroArch, input_shape, num_classes: int) -> list[Layer]:
        blocks = _blocks(tuple(input_shape), num_classes)
        return [layer for i, choice in enumerate(("stem", *arch.code, "head")) for layer in blocks[(i, choice)]]

    def arch_from_json(self, text: str) -> MacroArch:
        return MacroArch(json.loads(text)["code"])


class MacroTable:
    """The table's mean test accuracy (%, 3 seeds, 50 epochs) of each network."""

    accuracy_floor = 0.0

    def __init__(self) -> None:
        self.table = load_table()

    def __call__(self, arch: MacroArch) -> dict[str, float]:
        row = self.table[arch.code]
        return {"accuracy": row["mean_acc"], "accuracy_std": row["std"]}


@cache
def load_table() -> dict[str, dict]:
    return json.loads(TABLE.read_text())


@cache
def _blocks(input_shape: tuple[int, ...], num_classes: int) -> dict[tuple[int, str], list[Layer]]:
    """(position, choice) -> its layers; position 0 is the stem, 9 the head."""
    from reference_networks import macro_network  # torch: only the three traces below need it

    from search_spaces import trace

    blocks: dict[tuple[int, str], list[Layer]] = {}
    for choice in CHOICES:
        for layer in trace(macro_network(choice * LAYERS, num_classes), input_shape):
            head = layer.name.split(":")[0].split(".")
            k = int(head[1]) if head[0] == "features" else 13
            position = 0 if k < 3 else 9 if k >= 11 else k - 2
            if 1 <= position <= LAYERS:
                blocks.setdefault((position, choice), []).append(layer)
            elif choice == CHOICES[0]:  # the stem and head are the same in every network
                blocks.setdefault((position, "stem" if position == 0 else "head"), []).append(layer)
    for position in range(1, LAYERS + 1):
        for choice in CHOICES:
            blocks.setdefault((position, choice), [])  # a stride-1 identity has no layers
    return blocks
