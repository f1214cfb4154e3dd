"""Fit the unpublished constants of the default accelerator to the published measurements.

    python benchmarks/calibrate.py            # fit, print the constants and the table
    python benchmarks/calibrate.py --write    # ... and write them into hwmodels/accelerators/metis-like.yaml
    python benchmarks/calibrate.py --check --out docs/calibration.md   # table for the YAML as it is

Targets (shared/reference/metis.md): ResNet-50 at 224 on the chip, 2502 FPS and 7.07 W (ISSCC24);
the model-zoo networks' FPS relative to ResNet-50 (Voyager SDK, PCIe card). Each fitted constant
stays inside the plausible range written beside it below; a weak prior pulls it to its starting
value, so constants the targets do not pin down stay where the physics put them.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

import timm
import torch
import torchvision

import search_spaces as ss
from hwmodels import estimate, load_accelerator
from hwmodels._accelerator import ACCELERATORS_DIR, Accelerator, ChipConfig

YAML = ACCELERATORS_DIR / "metis-like.yaml"
SHAPE = (3, 224, 224)

# ISSCC24, on-chip, 4 cores: ResNet-50
RESNET50_FPS, RESNET50_W = 2502.0, 7.07
# Voyager SDK v1.2.5 model zoo, FPS over PCIe (for ratios to ResNet-50 only)
ZOO_FPS = {
    "resnet18": 3726,
    "resnet34": 2290,
    "resnet50": 1877,
    "mobilenetv2_100": 3147,
    "efficientnet_b0": 1307,
    "squeezenet1_1": 7124,
}

# Fitted constants: dotted path -> (prior, plausible low, high, why). The fit starts at the prior
# and a weak penalty pulls toward it, so the result does not depend on what the YAML holds.
FITTED = {
    "dwpu.macs_per_cycle": (64, 16, 512, "a digital depthwise unit"),
    "dpu.ops_per_cycle": (256, 64, 1024, "vector lanes; ViT-S attention at ~146 us on the DPU implies ~255"),
    "layer_overhead_us": (10, 0.5, 50, "control + DMA descriptor set-up per kernel"),
    "static_power_w": (2.5, 1.0, 4.0, "reference sheet: expect 1-4 W"),
    "core_active_power_w": (0.5, 0.1, 1.5, "clock tree + control of a busy 12 nm core at 800 MHz"),
    "memory.l1_energy_pj_per_byte": (0.3, 0.1, 1.0, "12 nm SRAM"),
    "memory.l2_energy_pj_per_byte": (2.0, 1.0, 8.0, "large SRAM + NoC"),
    "imc.write_gbps": (100, 25, 400, "third-party board measurement ~100 GB/s"),
    "memory.l1_gbps": (256, 64, 1024, "32 B/cycle per core"),
}
PRIOR_WEIGHT = 0.02
ABSOLUTE_WEIGHT = 4.0


def zoo_networks() -> dict[str, list]:
    torch.set_num_threads(2)
    models = {name: lambda n=name: timm.create_model(n) for name in ZOO_FPS if name != "squeezenet1_1"}
    models["squeezenet1_1"] = torchvision.models.squeezenet1_1
    return {name: ss.trace(make(), SHAPE) for name, make in models.items()}


def with_constants(acc: Accelerator, values: dict[str, float]) -> Accelerator:
    data = acc.chip.model_dump()
    for path, value in values.items():
        *parents, key = path.split(".")
        node = data
        for p in parents:
            node = node[p]
        node[key] = value
    return Accelerator(ChipConfig.model_validate(data), acc.mapping)


def current(acc: Accelerator) -> dict[str, float]:
    data = acc.chip.model_dump()
    out = {}
    for path in FITTED:
        node = data
        for p in path.split("."):
            node = node[p]
        out[path] = float(node)
    return out


def predictions(acc: Accelerator, nets: dict[str, list]) -> dict[str, tuple[float, float]]:
    reports = {name: estimate(layers, acc) for name, layers in nets.items()}
    return {name: (r.throughput_fps, r.power_w) for name, r in reports.items()}


def loss(acc: Accelerator, nets, start: dict[str, float], values: dict[str, float]) -> float:
    pred = predictions(with_constants(acc, values), nets)
    fps50, w50 = pred["resnet50"]
    # the on-chip ISSCC figures weigh more than the zoo ratios, which were measured through PCIe
    terms = [ABSOLUTE_WEIGHT * math.log(fps50 / RESNET50_FPS) ** 2, ABSOLUTE_WEIGHT * math.log(w50 / RESNET50_W) ** 2]
    for name, (fps, _) in pred.items():
        if name != "resnet50":
            measured = ZOO_FPS[name] / ZOO_FPS["resnet50"]
            terms.append(math.log(fps / fps50 / measured) ** 2)
    prior = sum(math.log(values[k] / start[k]) ** 2 for k in values)
    return sum(terms) + PRIOR_WEIGHT * prior


def fit(acc: Accelerator, nets) -> dict[str, float]:
    """Pattern search in log space inside the plausible ranges (no SciPy needed)."""
    start = {key: float(prior) for key, (prior, *_) in FITTED.items()}
    best, best_loss = dict(start), loss(acc, nets, start, start)
    step = 1.0  # log-space step
    while step > 0.01:
        improved = False
        for key, (_, low, high, _) in FITTED.items():
            for direction in (+1, -1):
                trial = dict(best)
                trial[key] = min(high, max(low, best[key] * math.exp(direction * step)))
                trial_loss = loss(acc, nets, start, trial)
                if trial_loss < best_loss - 1e-12:
                    best, best_loss, improved = trial, trial_loss, True
        if not improved:
            step /= 2
    return best


def table(acc: Accelerator, nets) -> str:
    pred = predictions(acc, nets)
    fps50, w50 = pred["resnet50"]
    lines = [
        "| target | published | predicted | error | limit |",
        "|---|---:|---:|---:|---:|",
        f"| ResNet-50 FPS (ISSCC24, 4 cores) | {RESNET50_FPS:.0f} | {fps50:.0f} | {fps50 / RESNET50_FPS - 1:+.1%} | 15 % |",
        f"| ResNet-50 power W (ISSCC24) | {RESNET50_W:.2f} | {w50:.2f} | {w50 / RESNET50_W - 1:+.1%} | 15 % |",
    ]
    measured_rank = sorted(ZOO_FPS, key=lambda n: -ZOO_FPS[n])
    predicted_rank = sorted(pred, key=lambda n: -pred[n][0])
    for name in measured_rank:
        measured = ZOO_FPS[name] / ZOO_FPS["resnet50"]
        ratio = pred[name][0] / fps50
        lines.append(
            f"| {name} FPS / ResNet-50 (Voyager zoo) | {measured:.3f} | {ratio:.3f} | {ratio / measured - 1:+.1%} | 35 % |"
        )
    lines += [
        "",
        f"Ranking by FPS, measured: {' > '.join(measured_rank)}",
        f"Ranking by FPS, predicted: {' > '.join(predicted_rank)} "
        f"({'the same' if measured_rank == predicted_rank else 'DIFFERENT'})",
    ]
    return "\n".join(lines)


def constants_table(acc: Accelerator) -> str:
    values = current(acc)
    lines = ["| constant | fitted | prior | plausible range | why |", "|---|---:|---:|---|---|"]
    for key, (prior, low, high, why) in FITTED.items():
        flag = "" if low <= values[key] <= high else " (OUT OF RANGE)"
        lines.append(f"| `{key}` | {values[key]:.4g}{flag} | {prior:g} | {low:g} - {high:g} | {why} |")
    return "\n".join(lines)


def behaviours(acc: Accelerator, nets: dict[str, list]) -> str:
    """The per-layer effects the reference sheet describes, as the calibrated model shows them."""
    mob = estimate(nets["mobilenetv2_100"], acc)
    dw = [r for r in mob.layers if r.unit == "dwpu"]
    kernels = sum(1 for r in mob.layers if r.mapping != "fused")
    lines = [
        "### Depthwise layers and per-kernel overheads are not free",
        "",
        f"mobilenetv2_100: {mob.macs / 1e9:.2f} GMACs ({mob.macs / estimate(nets['resnet50'], acc).macs:.1%} of "
        f"ResNet-50's) but {mob.throughput_fps / estimate(nets['resnet50'], acc).throughput_fps:.2f}x its FPS. "
        f"Its depthwise and pooling layers hold {sum(r.macs for r in dw) / mob.macs:.1%} of the MACs and "
        f"{sum(r.time_us for r in dw) / (mob.latency_ms * 1e3):.1%} of the time on the DWPU; "
        f"{kernels} kernels x {acc.chip.layer_overhead_us:.2f} us of overhead are "
        f"{kernels * acc.chip.layer_overhead_us / (mob.latency_ms * 1e3):.1%} of the frame.",
        "",
        "### Weights past the arrays stream every frame; past L2 they fall off a further cliff",
        "",
        "| network | weights (MiB) | in arrays | from L2 | from DRAM | FPS | weight-stream energy (mJ/frame) | bound |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    mib = 1 << 20
    cases = {
        "metaformer-tiny sample": ss.lower(ss.sample_archs(ss.get_space("metaformer-tiny"), 1, seed=0)[0], SHAPE),
        "mobilenetv2_100": nets["mobilenetv2_100"],
        "resnet50": nets["resnet50"],
        "poolformer_m36": ss.lower(ss.get_preset("poolformer_m36"), SHAPE),
        "mixer_b16_like": ss.lower(ss.get_preset("mixer_b16_like"), SHAPE),
    }
    for name, layers in cases.items():
        r = estimate(layers, acc)
        w = r.weights_in
        lines.append(
            f"| {name} | {r.weight_bytes / mib:.1f} | {w['imc'] / mib:.2f} | {w['l2'] / mib:.2f} | "
            f"{w['dram'] / mib:.2f} | {r.throughput_fps:,.0f} | {r.energy_split_mj['weights']:.3f} | {r.bound} |"
        )
    caf = estimate(ss.lower(ss.get_preset("caformer_s18"), SHAPE), acc)
    lines += [
        "",
        "### Attention is dominated by its dynamic matmuls and softmax",
        "",
        "caformer_s18, first attention block of stage 2 (14x14 tokens, 10 heads), per-layer table:",
        "",
        "| layer | op | unit | mapping | time (us) | energy (uJ) |",
        "|---|---|---|---|---:|---:|",
    ]
    for r in caf.layers:
        if r.name.startswith("stages.2.blocks.0.mixer"):
            lines.append(f"| {r.name} | {r.op}/{r.fn} | {r.unit} | {r.mapping} | {r.time_us:.2f} | {r.energy_uj:.2f} |")
    return "\n".join(lines)


def write_yaml(values: dict[str, float]) -> None:
    """Replace the fitted values in the YAML, keeping every comment where it was."""
    text = YAML.read_text()
    for path, value in values.items():
        key = path.split(".")[-1]
        pattern = re.compile(rf"^(\s*{re.escape(key)}:\s*)([0-9.eE+-]+\s*)(#.*)$", re.M)
        if len(pattern.findall(text)) != 1:
            raise SystemExit(f"{YAML}: expected one `{key}:` line with a comment")
        new = f"{value:.4g}"
        text = pattern.sub(lambda m, v=new: m.group(1) + v.ljust(max(len(m.group(2)), len(v) + 1)) + m.group(3), text)
    YAML.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only print the table for the YAML as it is")
    parser.add_argument("--write", action="store_true", help="write the fitted constants into the YAML")
    parser.add_argument("--out", type=Path, help="write the tables to this markdown file")
    args = parser.parse_args()
    acc = load_accelerator("metis-like")
    nets = zoo_networks()
    if not args.check:
        fitted = fit(acc, nets)
        acc = with_constants(acc, fitted)
        if args.write:
            write_yaml(fitted)
    report = f"{table(acc, nets)}\n\n{constants_table(acc)}\n\n{behaviours(acc, nets)}\n"
    print(report)
    if args.out:
        args.out.write_text(
            "# Calibration of `metis-like` against published silicon\n\n"
            "Generated by `python benchmarks/calibrate.py --check --out docs/calibration_table.md` "
            "(the fit itself: `python benchmarks/calibrate.py --write`). Method and caveats: docs/calibration.md.\n\n"
            + report
        )


if __name__ == "__main__":
    main()
