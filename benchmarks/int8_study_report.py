"""docs/int8.md from the INT8 study's results CSV: the ``report`` stage of ``benchmarks/int8_study.py``
(``python benchmarks/int8_study.py report --out docs/int8.md``), its tables in a module of their own."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from int8_study import (
    ATTRIBUTION_IMAGES,
    DROP_CLIP,
    README_JOB,
    README_RESULT_CSV,
    _dominant_family,
    measurement_noise,
    networks,
)

SIZES = ((0, 3e5, "< 0.3 M"), (3e5, 1e6, "0.3-1 M"), (1e6, 3e6, "1-3 M"), (3e6, 1e12, ">= 3 M"))


def report_stage(path: Path, out: Path) -> None:
    """docs/int8.md from the study's CSV (and the shipped prior's held-out errors)."""

    from nas.int8 import FAMILIES, SCOPES, Int8Recipe
    from nas.int8_drop import PRIOR_JSON

    nets = networks(path)
    noise = measurement_noise(nets)
    pts = lambda v: f"{100 * v:+.2f}"  # noqa: E731  accuracy 0-1 -> points
    params = [n["params"] for n in nets]
    recipe = Int8Recipe().describe()
    lines = [
        "# FP32 against INT8 accuracy: the ranking benchmark's networks quantized",
        "",
        "Printed by `python benchmarks/int8_study.py report` from `benchmarks/results/int8_study.csv`",
        "(written by its `quantize` stage; the networks by its `train` stage). Accuracy is top-1 (0-1, shown",
        "in points) on the full Fashion-MNIST test split (10,000 images, 32x32), FP32 and INT8 both run in",
        f"onnxruntime on the CPU; a drop is FP32 minus INT8 (positive: INT8 is worse). {len(nets)} of the 64",
        f"networks ({min(params) / 1e6:.2f} M to {max(params) / 1e6:.2f} M parameters) are covered, each trained",
        "under the ranking benchmark's truth recipe (3 epochs over a fixed 10k-image subset).",
        "",
        "INT8 is `nas.int8`'s recipe: "
        + ", ".join(f"{k} {v}" for k, v in recipe["method"].items())
        + f"; {recipe['calibration_images']} calibration images drawn from the training split under seed"
        f" {recipe['seed']}. The FP32 ONNX graph's accuracy equals the PyTorch model's on every network:"
        f" {sum(abs(n['fp32'] - _torch_fp32(path, n['arch_hash'])) < 1e-9 for n in nets)} of {len(nets)}.",
        "",
        "## How an INT8 accuracy is measured (`nas.int8`)",
        "",
        "```python",
        "from nas.int8 import Int8Recipe, calibration_set, quantize, onnx_accuracy",
        "",
        'recipe = Int8Recipe()  # calibration_images=256, seed=0, scope="all"; recipe.describe() is its provenance',
        "onnx = quantize(model, calibration_set(train, recipe), resolution=32, recipe=recipe)  # INT8 QDQ ONNX, bytes",
        "accuracy = onnx_accuracy(onnx, test, resolution=32)  # top-1, 0-1",
        "```",
        "",
        "The network is exported as `nas.export` exports it (TorchScript-based exporter, the same opset,",
        "input `image` with a free batch, output `logits`), its literals made initializers, then",
        "`onnxruntime.quantization.quantize_static` writes the QDQ graph: QuantizeLinear/DequantizeLinear",
        "pairs around every INT8 tensor. onnxruntime's CPU provider runs DQ -> Conv/MatMul -> Q in integer",
        "kernels where it has them; the other ops run in FP32 between the pairs, so their tensors are INT8",
        "at their boundaries, as a chip stores them. The graph runs in plain onnxruntime. Same model and recipe give",
        'the same bytes and the same accuracy (scored with one onnxruntime thread). `scope="matmul"`',
        'quantizes only convolutions, matmuls and the head; `"all"` (the default: the hardware model',
        "prices every weight and activation at one byte) every op type listed in `nas.int8.SCOPES`.",
        '`quantize(..., keep_fp32=("norm",))` leaves an operation family in FP32 (the attribution below).',
        "",
        "## Headline",
        "",
        f"One INT8 measurement's noise is {pts(noise)[1:]} points (std): the spread of the drop over three",
        "calibration draws (seeds 0, 1, 2) and the test split's sampling of the flipped predictions.",
        "",
        "| scope | median drop | mean | max | min | networks with drop > 2 noise | median flipped predictions | median logit SNR (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for scope in SCOPES:
        d = np.array([n["configs"][scope]["drop"] for n in nets])
        flips = np.median([n["configs"][scope]["flips"] for n in nets])
        snr = np.median([n["configs"][scope]["snr"] for n in nets])
        lines.append(
            f"| {scope} | {pts(np.median(d))} | {pts(d.mean())} | {pts(d.max())} | {pts(d.min())} |"
            f" {(d > 2 * noise).sum()} of {len(d)} | {100 * flips:.2f} % | {snr:.1f} |"
        )
    both = np.array([n["configs"]["all"]["drop"] - n["configs"]["matmul"]["drop"] for n in nets])
    worst = max(nets, key=lambda n: n["configs"]["all"]["drop"])
    above = sum(n["configs"]["all"]["drop"] > 2 * noise for n in nets)
    verdict = (
        "On this task INT8 costs nothing measurable: every drop is within twice the noise of one measurement."
        if above == 0
        else f'{above} of {len(nets)} networks lose more than twice the noise in "all" (chance alone gives'
        f" {0.023 * len(nets):.1f}: 2.3 % of networks at two std); the worst is {worst['name']}"
        f" ({pts(worst['configs']['all']['drop'])} points)."
    )
    d = np.array([n["configs"]["all"]["drop"] for n in nets])
    se = d.std(ddof=1) / np.sqrt(len(d))
    verdict += (
        f' The mean drop in "all" is {pts(d.mean())} +- {100 * se:.2f} points (standard error over networks):'
        f" on average INT8 loses less than {100 * (d.mean() + 2 * se):.2f} points on this task (two standard errors)."
    )
    spread = sorted(
        ((max(n["seed_drops"]) - min(n["seed_drops"]), n) for n in nets if len(n["seed_drops"]) > 1),
        key=lambda t: -t[0],
    )
    unstable = [f"{n['name']} ({', '.join(pts(v) for v in n['seed_drops'])})" for r, n in spread if r > 4 * noise]
    lines += [
        "",
        verdict,
        "",
        "Networks whose drop moves by more than four noise std with the calibration images alone (drops under"
        " seeds 0, 1, 2): " + ("; ".join(unstable) if unstable else "none") + ".",
        "",
        f'Quantizing every tensor ("all") instead of only the convolutions and matmuls costs {pts(np.median(both))}'
        f" points in the median network (max {pts(both.max())}).",
        "",
        "## Which tensors are INT8 in each scope",
        "",
        "Measured in the quantized graphs (onnxruntime "
        + recipe["method"]["tool"].split("onnxruntime ")[-1].rstrip(")")
        + "): per op type, summed over the networks, the nodes whose",
        "data input is dequantized from INT8 (in) and whose output is quantized to INT8 (out). Weights of",
        "Conv, MatMul and Gemm are INT8 per output channel in both scopes; a norm's scale vector is INT8 per",
        'channel and its bias INT32 in "all". ONNX Runtime has no integer kernel for most of these ops: it',
        "runs them in FP32 between a DequantizeLinear and a QuantizeLinear, so their inputs and outputs are",
        "rounded to INT8 as the chip would store them (the hardware model prices every tensor at one byte).",
        'Ops with no INT8 in "all" compute shapes (int64), not values. A Relu whose output is quantized',
        'is removed (its INT8 range starts at zero), so "all" has fewer Relu nodes. A matmul\'s inputs and',
        'output are INT8 in both scopes, so in "matmul" an op right before or after one reads or writes INT8.',
        "",
        "| op type | nodes (matmul / all) | matmul: in / out | all: in / out |",
        "|---|---|---|---|",
    ]
    ops: dict[str, dict[str, list[int]]] = {}
    for n in nets:
        for scope in SCOPES:
            for op, (count, q_in, q_out) in n["configs"][scope]["ops"].items():
                row = ops.setdefault(op, {s: [0, 0, 0] for s in SCOPES})
                row[scope] = [a + b for a, b in zip(row[scope], (count, q_in, q_out), strict=True)]
    for op, row in sorted(ops.items(), key=lambda kv: -kv[1]["all"][0]):
        m, a = row["matmul"], row["all"]
        lines.append(f"| {op} | {m[0]} / {a[0]} | {m[1]} / {m[2]} | {a[1]} / {a[2]} |")
    lines += ["", "## Drop by what the network contains", ""]
    for title, key in (
        ("token mixer (the family of most blocks)", lambda n: _dominant_family(n["arch"])),
        ("norm", lambda n: json.loads(n["arch"])["norm"]),
        ("activation", lambda n: json.loads(n["arch"])["act"]),
        ("size", lambda n: next(label for lo, hi, label in SIZES if lo <= n["params"] < hi)),
    ):
        lines += [f"| {title} | networks | median drop matmul | median drop all | max drop all | median logit SNR all (dB) |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        groups: dict[str, list[dict]] = {}
        for n in nets:
            groups.setdefault(key(n), []).append(n)
        order = [label for _, _, label in SIZES]  # sizes small to large, the rest by name
        for g, members in sorted(groups.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 0, kv[0])):
            dm = [m["configs"]["matmul"]["drop"] for m in members]
            da = [m["configs"]["all"]["drop"] for m in members]
            snr = np.median([m["configs"]["all"]["snr"] for m in members])
            lines.append(
                f"| {g} | {len(members)} | {pts(np.median(dm))} | {pts(np.median(da))} | {pts(max(da))} | {snr:.1f} |"
            )
        lines.append("")
    lines += [
        "## Which operations cause it",
        "",
        'The "all" scope with one operation family left in FP32 (`nas.int8.FAMILIES`, from the node\'s op',
        f"type and module path), scored on the first {ATTRIBUTION_IMAGES} test images against FP32 on the same",
        "images. What a family costs shows as the logit error it adds: the SNR gained by keeping it in FP32",
        "(dB; higher: that family's INT8 rounding was a larger share of the error), and the flipped",
        "predictions (share of images whose top-1 differs from FP32) that go away.",
        "",
        "| family left in FP32 | networks | median SNR gain (dB) | max | median flips: all -> without it | mean drop change (points) |",
        "|---|---|---|---|---|---|",
    ]
    for fam in FAMILIES:
        key = f"all-fp32:{fam}"
        members = [n for n in nets if key in n["configs"]]
        if not members:
            continue
        gain = np.array([n["configs"][key]["snr"] - n["configs"]["all"]["snr"] for n in members])
        flips_all = np.median([n["configs"]["all"]["flips"] for n in members])
        flips_keep = np.median([n["configs"][key]["flips"] for n in members])
        change = np.mean([n["configs"][key]["drop"] - _drop_on(n, ATTRIBUTION_IMAGES) for n in members])
        lines.append(
            f"| {fam} | {len(members)} | {np.median(gain):+.1f} | {gain.max():+.1f} |"
            f" {100 * flips_all:.2f} % -> {100 * flips_keep:.2f} % | {pts(change)} |"
        )
    losers = sorted(
        (n for n in nets if n["configs"]["all"]["drop"] > 2 * noise), key=lambda n: -n["configs"]["all"]["drop"]
    )
    present = [f for f in FAMILIES if any(f"all-fp32:{f}" in n["configs"] for n in losers)]
    if losers:
        lines += [
            "",
            'Where INT8 does cost something (drop in "all" above twice the noise), per network: the drop in',
            f"each scope (10k images), then per family left in FP32 the SNR gain (dB) and the change of the drop"
            f" on the first {ATTRIBUTION_IMAGES} images (points; negative: keeping that family in FP32 recovers it).",
            "",
            "| network | params (M) | drop matmul | drop all | " + " | ".join(present) + " |",
            "|---|---|---|---|" + "---|" * len(present),
        ]
        for n in losers:
            c, base = n["configs"], _drop_on(n, ATTRIBUTION_IMAGES)
            cells = [
                f"{c[k]['snr'] - c['all']['snr']:+.1f} dB / {pts(c[k]['drop'] - base)}" if k in c else "-"
                for k in (f"all-fp32:{f}" for f in present)
            ]
            lines.append(
                f"| {n['name']} | {n['params'] / 1e6:.2f} | {pts(c['matmul']['drop'])} | {pts(c['all']['drop'])} | "
                + " | ".join(cells)
                + " |"
            )
        gains = {
            f: np.mean([n["configs"][f"all-fp32:{f}"]["snr"] - n["configs"]["all"]["snr"]
                        for n in losers if f"all-fp32:{f}" in n["configs"]])
            for f in present
        }  # fmt: skip
        best = max(gains, key=gains.get)
        lines += [
            "",
            f"Among these networks, keeping {best} in FP32 gains the most logit SNR on average ({gains[best]:+.1f} dB;"
            " " + ", ".join(f"{f} {g:+.1f}" for f, g in gains.items() if f != best) + ").",
        ]
    lines += ["", *_front_section(nets, noise), ""]
    readme = path.with_name(README_RESULT_CSV.name)
    if readme.is_file():
        front = networks(readme)
        lines += [
            "## The README job's front",
            "",
            "The networks the README job (`docs/examples/edge-classifier.yaml`) trained at its end, its front's",
            'best (`benchmarks/results/end_to_end.csv`, role "search"), trained again by the job\'s own meter',
            "(seed 0) and measured as above (`python benchmarks/int8_study.py readme`; drops in points):",
            "",
            "| network | params (M) | FP32 | INT8 matmul | INT8 all | drop matmul | drop all | calibration seeds' drops (all) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n in front:
            c = n["configs"]
            lines.append(
                f"| {n['name']} | {n['params'] / 1e6:.2f} | {n['fp32']:.4f} | {c['matmul']['accuracy']:.4f} |"
                f" {c['all']['accuracy']:.4f} | {pts(c['matmul']['drop'])} | {pts(c['all']['drop'])} |"
                f" {', '.join(pts(d) for d in n['seed_drops'])} |"
            )
        lines.append("")
    prior = json.loads(PRIOR_JSON.read_text()) if PRIOR_JSON.is_file() else None
    lines += ["## The INT8 drop predictor (nas.int8_drop)", ""]
    if prior:
        h = prior["held_out"]
        lines += [
            f'A ridge map from {len(prior["centre"])} architecture features to the "all" scope\'s drop, fitted on'
            f" {prior['fitted_on']['networks']} networks (ridge {prior['ridge']}; refit with `python"
            " benchmarks/int8_study.py prior`), std at least the measurement noise above; a job's own measured"
            " drops shift it (a Bayesian offset). Predictions of networks it did not see (points):",
            "",
            "| held out | networks | MAE | RMSE | Kendall tau | within 1 std | within 2 std | mean std |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in ("mixer_family_folds", "leave_one_out", "zero_drop_baseline"):
            c = h.get(name)
            if c:
                tau = "n/a" if c["kendall_tau"] is None else f"{c['kendall_tau']:.2f}"
                lines.append(
                    f"| {name.replace('_', ' ')} | {c['n']} | {100 * c['mae']:.3f} | {100 * c['rmse']:.3f} | {tau} |"
                    f" {c['within_1sd']:.2f} | {c['within_2sd']:.2f} | {100 * c['mean_std']:.3f} |"
                )
        folds, zero = h.get("mixer_family_folds"), h.get("zero_drop_baseline")
        if folds and zero:
            lines += [
                "",
                "What the features say beyond the noise: nothing measurable."
                if folds["mae"] >= 0.9 * zero["mae"]
                else f"The features cut the held-out error to {folds['mae'] / zero['mae']:.0%} of predicting no drop.",
                f"The prior's mean drop is {100 * prior['fitted_on'].get('mean_drop', 0):+.3f} points and its std"
                f" {100 * prior['residual_std']:.3f} (the noise floor {100 * prior['noise_std']:.3f}); held out by mixer"
                f" family it errs by {100 * folds['mae']:.3f} points on average against {100 * zero['mae']:.3f} for"
                " predicting no drop at all. It is honest rather than informative here: its spread covers what",
                "is measured, and a job whose networks do lose accuracy in INT8 moves it with its own drops.",
                f"Drops enter the fit clipped to +-{100 * DROP_CLIP:.0f} point (errors above are on the clipped"
                f" drops); clipped: {', '.join(prior['fitted_on'].get('clipped', [])) or 'none'}. A collapse is not"
                " predictable from these features: measure INT8, do not predict it.",
            ]
        lines += ["", "By mixer family, held out: " + ", ".join(
            f"{g} ({v['networks']}): MAE {100 * v['mae']:.3f}" for g, v in h.get("by_family", {}).items()) + "."]  # fmt: skip
    lines += [
        "",
        "## What this does not cover",
        "",
        "- Calibration is MinMax on 256 images; percentile and entropy calibration were not measured (the",
        "  drops leave nothing for them to win here). Weights are per channel, activations per tensor.",
        "- onnxruntime runs norms, softmax, GELU and the element-wise ops in FP32 between INT8 tensors; a",
        "  chip that computes them in integer arithmetic inside (integer softmax, LayerNorm statistics) may",
        "  lose more than measured here.",
        "- One task (Fashion-MNIST at 32x32, 3 epochs): small, short-trained networks with modest",
        "  activation outliers. Longer training and larger images make outliers, which MinMax handles worst.",
    ]
    lines += ["", "## Cost", ""]
    lines += [
        "Quantizing (export excluded: calibration and the QDQ rewrite) and scoring 10,000 test images, one",
        "onnxruntime thread, on this machine's shared CPU (2 cores, with the study's training beside it):",
        "",
        '| size | networks | median quantize + score, "all" (s) | max (s) |',
        "|---|---|---|---|",
    ]
    for lo, hi, label in SIZES:
        secs = [n["configs"]["all"]["seconds"] for n in nets if lo <= n["params"] < hi]
        if secs:
            lines.append(f"| {label} | {len(secs)} | {np.median(secs):.1f} | {max(secs):.1f} |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _drop_on(net: dict, images: int) -> float:
    """The \"all\" scope's drop on the first ``images`` test images: its attribution rows' baseline."""
    return net["configs"].get(f"all@{images}", net["configs"]["all"])["drop"]


def _torch_fp32(path: Path, arch_hash: str) -> float:
    with path.open() as f:
        return next(float(r["torch_fp32_acc"]) for r in csv.DictReader(f) if r["arch_hash"] == arch_hash)


def _front_section(nets: list[dict], noise: float) -> list[str]:
    """Whether ranking by INT8 accuracy changes the front: the README job's objectives (accuracy,
    latency, energy), each network priced as that job prices it, FP32 front against INT8 front."""

    from nas.pareto import non_dominated
    from nas.plugins import resolve_space
    from nas.pricing import price, resolve_accelerator
    from nas.spec import load_spec

    spec = load_spec(README_JOB)
    space, accelerator = resolve_space(spec), resolve_accelerator(spec)
    priced = [price(space, space.arch_from_json(n["arch"]), spec, accelerator) for n in nets]
    lines = [
        "## Does ranking by INT8 accuracy change the front?",
        "",
        f"Each network priced as the README job prices it (`{spec.name}`: {spec.accelerator},"
        f" input {'x'.join(map(str, spec.input_shape))}); the front over (accuracy, latency_ms, energy_mj)",
        'by FP32 accuracy against the front by INT8 ("all") accuracy, over every covered network and over',
        "those that meet the job's constraints. Each network that left or joined shows its drop (points;",
        f"one measurement's noise is {100 * noise:.2f}): a swap between two networks whose FP32 accuracies",
        "differ by less than the noise is a tie broken by rounding, not a verdict on INT8.",
        "",
        "| networks | count | FP32 front | INT8 front | left the front | joined it | most accurate FP32 -> INT8 |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, keep in (("all covered", [True] * len(nets)), ("meeting the constraints", [p.feasible for p in priced])):
        idx = [i for i, k in enumerate(keep) if k]
        if len(idx) < 2:
            lines.append(f"| {label} | {len(idx)} | | | | | |")
            continue
        cost = np.array([[priced[i].metrics["latency_ms"], priced[i].metrics["energy_mj"]] for i in idx])
        fronts = {}
        for kind in ("fp32", "int8"):
            acc = np.array([nets[i]["fp32"] if kind == "fp32" else nets[i]["configs"]["all"]["accuracy"] for i in idx])
            mask = non_dominated(np.column_stack([-acc, cost]))
            fronts[kind] = ({nets[idx[j]]["name"] for j in np.flatnonzero(mask)}, nets[idx[int(acc.argmax())]]["name"])
        drop = {n["name"]: n["configs"]["all"]["drop"] for n in nets}
        left = [f"{m} ({100 * drop[m]:+.2f})" for m in sorted(fronts["fp32"][0] - fronts["int8"][0])]
        joined = [f"{m} ({100 * drop[m]:+.2f})" for m in sorted(fronts["int8"][0] - fronts["fp32"][0])]
        top = (
            fronts["fp32"][1]
            if fronts["fp32"][1] == fronts["int8"][1]
            else f"{fronts['fp32'][1]} -> {fronts['int8'][1]}"
        )
        lines.append(
            f"| {label} | {len(idx)} | {len(fronts['fp32'][0])} | {len(fronts['int8'][0])} |"
            f" {', '.join(left) or 'none'} | {', '.join(joined) or 'none'} | {top} |"
        )
    return lines
