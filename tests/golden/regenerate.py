"""Regenerate tests/golden/hw_totals.json ON PURPOSE, after a deliberate change to the cost model or
to an accelerator YAML; review the diff of the JSON before committing it.

    python tests/golden/regenerate.py
"""

from __future__ import annotations

import json
from pathlib import Path

import search_spaces as ss
from hwmodels import accelerator_names, estimate, load_accelerator

PATH = Path(__file__).with_name("hw_totals.json")
NETWORKS = ["poolformer_s12", "caformer_s18", "swin_tiny_like", "mixer_b16_like", "resmlp_12_like"]
FIELDS = ["latency_ms", "throughput_fps", "energy_mj", "power_w", "utilisation", "bound", "weights_in", "deployable"]


def totals() -> dict:
    out = {}
    for accelerator in accelerator_names():
        acc = load_accelerator(accelerator)
        for name in NETWORKS:
            report = estimate(ss.lower(ss.get_preset(name), (3, 224, 224)), acc)
            row = {field: getattr(report, field) for field in FIELDS}
            row["emulated_ops"] = len(report.emulated_ops)
            out[f"{accelerator}/{name}"] = row
    return out


if __name__ == "__main__":
    PATH.write_text(json.dumps(totals(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PATH}")
