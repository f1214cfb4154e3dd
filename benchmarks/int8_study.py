"""FP32 against INT8 accuracy on the ranking benchmark's 64 networks (docs/int8.md).

    python benchmarks/int8_study.py train [--workdir DIR] [--shard 0/2]   # the 64 trained, weights kept (hours)
    python benchmarks/int8_study.py quantize [--workdir DIR]              # FP32 and INT8 of each trained one
    python benchmarks/int8_study.py report [--out docs/int8.md]           # the tables (from the results CSV)

Each network of ``benchmarks/results/proxy_ranking_train.csv`` (the ranking benchmark's 64, sampled
from the default space under seed 0) is trained again under the benchmark's truth recipe (3 epochs
over the fixed 10k-image subset of Fashion-MNIST, 32x32) and its weights are kept under
``--workdir``; its FP32 test accuracy is checked against the benchmark's recorded one. Networks
train cheapest first (by the benchmark's recorded seconds), so an interrupted run has covered the
most networks; a rerun skips those done.

``quantize`` scores every network trained so far (``trained.csv``) on the full Fashion-MNIST test
split (10k images, 32x32) in onnxruntime: the FP32 ONNX graph, the INT8 QDQ graph in each of
``nas.int8.SCOPES``, and, for attribution, the "all" scope with one operation family
(``nas.int8.FAMILIES``) left in FP32 at a time. One row per (network, configuration) is appended
to ``quantized.csv`` in the workdir (resumable: a rerun picks up networks trained since); the
finished CSV is copied to ``benchmarks/results/int8_study.csv``, from which ``report`` rebuilds
docs/int8.md without the workdir.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from proxy_ranking import TRAIN_CSV, TRUTH, TRUTH_IMAGES, append_row, build, done_hashes

import search_spaces as ss
from nas.data import load_dataset
from nas.proxies._training import Trainer, evaluate

WORKDIR = Path("/tmp/int8_study")
RESULT_CSV = Path(__file__).parent / "results" / "int8_study.csv"
README_RESULT_CSV = RESULT_CSV.with_name("int8_readme_front.csv")
END_TO_END_CSV = RESULT_CSV.with_name("end_to_end.csv")  # benchmarks/end_to_end.py: the README job's runs
README_JOB = Path(__file__).parents[1] / "docs" / "examples" / "edge-classifier.yaml"
QUANTIZED_FIELDS = ["arch_hash", "name", "params", "config", "scope", "seed", "keep_fp32", "images", "accuracy", "drop", "flips",
                    "logit_snr_db", "quantize_seconds", "score_seconds", "int8_ops", "torch_fp32_acc", "arch"]  # fmt: skip
# other calibration draws of the "all" scope: how much an INT8 accuracy moves with the images alone
CALIBRATION_SEEDS = (1, 2)
# attribution (the "all" scope with one family in FP32) scores the first 2000 test images: what it
# reads is the logits' error and the flipped predictions against FP32, both clear at that size
ATTRIBUTION_IMAGES = 2000
TRAINED_FIELDS = ["index", "arch_hash", "name", "params", "fp32_acc", "benchmark_acc", "train_seconds", "arch"]


def benchmark_rows() -> list[dict]:
    """The ranking benchmark's networks, cheapest to train first."""
    with TRAIN_CSV.open() as f:
        rows = list(csv.DictReader(f))
    return sorted(rows, key=lambda r: float(r["truth_seconds"]))


def train_stage(workdir: Path, shard: tuple[int, int]) -> None:
    weights = workdir / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    out = workdir / "trained.csv"
    train = load_dataset(split="train")
    test = load_dataset(split="test")
    subset = train.subset(torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:TRUTH_IMAGES])
    done = done_hashes(out)
    for position, row in enumerate(benchmark_rows()):
        if position % shard[1] != shard[0] or row["arch_hash"] in done:
            continue
        arch = ss.ArchConfig.from_json(row["arch"])
        model = build(arch)
        start = time.perf_counter()
        Trainer(model, subset, TRUTH).advance(TRUTH.steps)
        seconds = time.perf_counter() - start
        accuracy = evaluate(model, test, resolution=TRUTH.resolution)
        torch.save(model.state_dict(), weights / f"{row['arch_hash']}.pt")
        append_row(
            out,
            TRAINED_FIELDS,
            {
                "index": row["index"],
                "arch_hash": row["arch_hash"],
                "name": row["name"],
                "params": row["params"],
                "fp32_acc": round(accuracy, 5),
                "benchmark_acc": row["truth_acc"],
                "train_seconds": round(seconds, 2),
                "arch": json.dumps(json.loads(row["arch"]), sort_keys=True),
            },
        )
        print(f"{row['name'][:50]:50s} fp32 {accuracy:.4f} (benchmark {row['truth_acc']}) {seconds:.0f} s", flush=True)


def quantize_stage(workdir: Path) -> None:
    """FP32 and INT8 test accuracy of every trained network not yet in ``quantized.csv``."""
    out = workdir / "quantized.csv"
    done = done_hashes(out)
    with (workdir / "trained.csv").open() as f:
        trained = [r for r in csv.DictReader(f) if r["arch_hash"] not in done]
    if not trained:
        print("nothing new to quantize", flush=True)
        return
    train = load_dataset(split="train")
    test = load_dataset(split="test")
    for row in trained:
        model = build(ss.ArchConfig.from_json(row["arch"]))
        model.load_state_dict(torch.load(workdir / "weights" / f"{row['arch_hash']}.pt"))
        rows = measure(model, row, train, test)
        for r in rows:  # a network's rows together: an interrupted network is redone whole
            append_row(out, QUANTIZED_FIELDS, r)
        summary = " ".join(f"{r['config']} {r['drop']:+.4f}" for r in rows[1:])
        print(f"{row['name'][:40]:40s} fp32 {rows[0]['accuracy']:.4f} (torch {row['fp32_acc']}) {summary}", flush=True)
        RESULT_CSV.write_bytes(out.read_bytes())


def readme_stage(workdir: Path) -> None:
    """The README job's measured front (``end_to_end.csv``'s "search" networks: the front's best, which
    the job trains at its end) trained again by the job's own meter (``nas.training.AccuracyMeter``,
    seed 0), then measured as the study's networks are; rows to ``readme_front.csv`` in the workdir
    and ``benchmarks/results/int8_readme_front.csv``."""
    import io

    from nas.spec import load_spec
    from nas.training import AccuracyMeter

    out = workdir / "readme_front.csv"
    done = done_hashes(out)
    with END_TO_END_CSV.open() as f:
        todo = [
            r for r in csv.DictReader(f) if r["role"] == "search" and r["seed"] == "0" and r["arch_hash"] not in done
        ]
    if not todo:
        print("the README job's front is measured", flush=True)
        return
    meter = AccuracyMeter(load_spec(README_JOB))
    train, test = load_dataset(split="train"), load_dataset(split="test")
    for row in todo:
        arch = ss.ArchConfig.from_json(row["arch"])
        accuracy, weights = meter(arch)
        model = ss.build_model(arch, num_classes=10, img_size=TRUTH.resolution)
        model.load_state_dict(torch.load(io.BytesIO(weights)))
        rows = measure(model, {**row, "fp32_acc": round(accuracy, 5)}, train, test)
        for r in rows:
            append_row(out, QUANTIZED_FIELDS, r)
        summary = " ".join(f"{r['config']} {r['drop']:+.4f}" for r in rows[1:4])
        print(f"{row['name'][:40]:40s} fp32 {accuracy:.4f} (job's run {row['accuracy']}) {summary}", flush=True)
        README_RESULT_CSV.write_bytes(out.read_bytes())


def measure(model: torch.nn.Module, row: dict, train, test) -> list[dict]:
    """One network's rows: FP32, each scope, the calibration seeds and the attribution (``row``
    gives its arch_hash, name, params, PyTorch FP32 accuracy and arch)."""
    import numpy as np

    from nas import int8

    resolution = TRUTH.resolution
    fp32 = int8.fp32_onnx(model, resolution=resolution)
    start = time.perf_counter()
    reference = _logits(fp32, test, resolution)
    fp32_seconds = time.perf_counter() - start
    families = sorted({int8.family(n) for n in _nodes(fp32)} - {"other"}, key=int8.FAMILIES.index)
    full, part = len(test), ATTRIBUTION_IMAGES
    configs = [("fp32", None, (), 0, full)] + [(scope, scope, (), 0, full) for scope in int8.SCOPES]
    configs += [(f"all@seed{seed}", "all", (), seed, full) for seed in CALIBRATION_SEEDS]
    configs += [(f"all@{part}", "all", (), 0, part)]  # the attribution's baseline: "all" on its images
    configs += [(f"all-fp32:{name}", "all", (name,), 0, part) for name in families]
    rows, kept = [], {}
    for config, scope, keep, seed, images in configs:
        scored = test if images == full else test.subset(range(images))
        ref = reference[:images]
        if scope is None:
            logits, q_seconds, s_seconds, ops = reference, 0.0, fp32_seconds, {}
        elif config == f"all@{part}":
            logits, q_seconds, s_seconds, ops = kept["all"][:part], 0.0, 0.0, {}
        else:
            recipe = int8.Int8Recipe(scope=scope, seed=seed)
            start = time.perf_counter()
            onnx = int8.quantize_onnx(
                fp32, int8.calibration_set(train, recipe), resolution=resolution, recipe=recipe, keep_fp32=keep
            )
            q_seconds = time.perf_counter() - start
            ops = {op: [c["nodes"], c["int8_in"], c["int8_out"]] for op, c in int8.coverage(onnx).items()}
            start = time.perf_counter()
            logits = _logits(onnx, scored, resolution)
            s_seconds = time.perf_counter() - start
        kept[config] = logits
        accuracy = _accuracy(logits, scored)
        noise = float(((logits - ref) ** 2).sum())
        snr = 10 * np.log10(float((ref**2).sum()) / noise) if noise > 0 else float("inf")
        rows.append({
            "arch_hash": row["arch_hash"], "name": row["name"], "params": row["params"], "config": config,
            "scope": scope or "", "seed": seed, "keep_fp32": ",".join(keep), "accuracy": round(accuracy, 5),
            "images": images, "drop": round(_accuracy(ref, scored) - accuracy, 5),
            "flips": round(float((logits.argmax(-1) != ref.argmax(-1)).mean()), 5),
            "logit_snr_db": round(snr, 2), "quantize_seconds": round(q_seconds, 2),
            "score_seconds": round(s_seconds, 2),
            "int8_ops": json.dumps(ops, separators=(",", ":")), "torch_fp32_acc": row["fp32_acc"], "arch": row["arch"],
        })  # fmt: skip
    return rows


def networks(path: Path) -> list[dict]:
    """One record per network of the results CSV: FP32 accuracy, the drop in each configuration,
    the calibration seeds' drops, the attribution rows and the operations each scope made INT8."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    nets: dict[str, dict] = {}
    for r in rows:
        n = nets.setdefault(r["arch_hash"], {
            "arch_hash": r["arch_hash"], "name": r["name"], "params": int(r["params"]), "arch": r["arch"],
            "configs": {},
        })  # fmt: skip
        n["configs"][r["config"]] = {
            "accuracy": float(r["accuracy"]), "drop": float(r["drop"]), "flips": float(r["flips"]),
            "snr": float(r["logit_snr_db"]), "images": int(r["images"]), "ops": json.loads(r["int8_ops"] or "{}"),
            "seconds": float(r["quantize_seconds"]) + float(r["score_seconds"]),
        }  # fmt: skip
    for n in nets.values():
        c = n["configs"]
        n["fp32"] = c["fp32"]["accuracy"]
        n["seed_drops"] = [c[k]["drop"] for k in ("all", *(f"all@seed{s}" for s in CALIBRATION_SEEDS)) if k in c]
    return list(nets.values())


def measurement_noise(nets: list[dict]) -> float:
    """The std of one INT8 drop measurement in the typical network (accuracy 0-1): the spread over
    calibration draws and the test split's sampling of the flipped predictions (flips / images),
    medians over networks (a network whose calibration draws disagree is reported, not averaged in)."""
    import numpy as np

    seeds = [np.var(n["seed_drops"], ddof=1) for n in nets if len(n["seed_drops"]) > 1]
    sampling = [n["configs"]["all"]["flips"] / n["configs"]["all"]["images"] for n in nets]
    return float(np.sqrt((np.median(seeds) if seeds else 0.0) + np.median(sampling)))


def _dominant_family(arch_json: str) -> str:
    from nas.int8_drop import MIXER_FAMILIES

    arch = ss.ArchConfig.from_json(arch_json)
    depth = {f: sum(s.depth for s in arch.stages if s.mixer in mixers) for f, mixers in MIXER_FAMILIES.items()}
    return max(depth, key=depth.get)


DROP_CLIP = 0.01  # one point: the prior's target is clipped here (see prior_stage)
RIDGES = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def prior_stage(path: Path) -> None:
    """Fit the INT8 drop predictor's prior on the study (the "all" scope's drops) and write
    ``nas/int8_drop.json`` with its held-out errors: leave-one-mixer-family-out folds (fitted
    without every network dominated by that family, tested on them) and leave-one-out."""
    import numpy as np

    from nas.int8 import Int8Recipe
    from nas.int8_drop import PRIOR_JSON, DropPrior, drop_features
    from nas.surrogate import Calibration

    nets = networks(path)
    x = np.stack([drop_features(n["arch"], n["params"]) for n in nets])
    raw = np.array([n["configs"]["all"]["drop"] for n in nets])
    # a collapse (tens of points) is a failure to measure, not a drop a Gaussian can spread over
    # every network: drops enter clipped to +-DROP_CLIP, and the prior says how many were
    y = np.clip(raw, -DROP_CLIP, DROP_CLIP)
    noise = measurement_noise(nets)
    groups = np.array([_dominant_family(n["arch"]) for n in nets])

    def held_out(ridge: float, folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = np.zeros(len(y)), np.zeros(len(y))
        for g in np.unique(folds):
            test = folds == g
            if (~test).sum() < 3:
                mean[test], std[test] = np.nan, np.nan
                continue
            model = DropPrior.fit(
                x[~test], y[~test], ridge=ridge, noise_std=noise, fitted_on={"networks": int((~test).sum())}
            )
            mean[test], std[test] = model.predict(x[test])
        return mean, std

    loo_folds = np.arange(len(y))
    ridge = min(RIDGES, key=lambda r: float(np.nanmean((held_out(r, loo_folds)[0] - y) ** 2)))
    result = {}
    for name, folds in (("mixer_family_folds", groups), ("leave_one_out", loo_folds)):
        mean, std = held_out(ridge, folds)
        cal = Calibration.of(mean, std, y)
        result[name] = cal.to_dict() if cal else None
    constant = Calibration.of(np.full(len(y), 0.0), np.full(len(y), noise), y)
    result["zero_drop_baseline"] = constant.to_dict() if constant else None
    result["by_family"] = {
        g: {"networks": int((groups == g).sum()), "mae": round(float(np.abs(m - y)[groups == g].mean()), 5)}
        for g in np.unique(groups)
        for m in [held_out(ridge, groups)[0]]
    }
    prior = DropPrior.fit(
        x, y, ridge=ridge, noise_std=noise,
        fitted_on={"networks": len(y), "study": "benchmarks/results/int8_study.csv", "scope": "all",
                   "recipe": Int8Recipe().describe(), "task": "Fashion-MNIST test top-1, 32x32, ranking benchmark truth recipe",
                   "mean_drop": round(float(y.mean()), 5), "drops_clipped_at": DROP_CLIP,
                   "clipped": [n["name"] for n, d in zip(nets, raw, strict=True) if abs(d) > DROP_CLIP]},
        held_out=result,
    )  # fmt: skip
    PRIOR_JSON.write_text(prior.to_json() + "\n")
    print(f"prior on {len(y)} networks, ridge {ridge}, noise {noise:.5f}: {json.dumps(result)}")


def _nodes(onnx: bytes) -> list:
    import onnx as onnx_lib

    return list(onnx_lib.load_from_string(onnx).graph.node)


def _logits(onnx: bytes, data, resolution: int):
    from nas import int8

    return int8.onnx_logits(onnx, data, resolution=resolution)


def _accuracy(logits, data) -> float:
    return float((logits.argmax(-1) == data.labels.numpy()).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["train", "quantize", "readme", "prior", "report"])
    parser.add_argument("--results", type=Path, default=RESULT_CSV, help="the study's CSV (prior, report)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "docs" / "int8.md")
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    parser.add_argument("--shard", default="0/1", help="i/k: this process takes every k-th network from i")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    i, k = (int(p) for p in args.shard.split("/"))
    if args.stage == "train":
        train_stage(args.workdir, (i, k))
    elif args.stage == "quantize":
        quantize_stage(args.workdir)
    elif args.stage == "readme":
        readme_stage(args.workdir)
    elif args.stage == "prior":
        prior_stage(args.results)
    elif args.stage == "report":
        from int8_study_report import report_stage  # the tables: a module of their own

        report_stage(args.results, args.out)


if __name__ == "__main__":
    main()
