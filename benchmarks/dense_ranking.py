"""How well the default proxy, params and FLOPs rank dense networks of the default space, against
their trained metric; and how the short recipe ranks against a 5x longer one.

    python benchmarks/dense_ranking.py run    [--task detection] [--n 32] [--long 16] [--repeats 4] [--procs 2]
    python benchmarks/dense_ranking.py report [--task detection]        # prints the figures, writes the docs
    python benchmarks/dense_ranking.py smoke                            # every stage on 2 networks, a few steps

Candidates: the first ``--n`` detection (or segmentation) networks ``search_spaces.sample_archs`` draws
from the default space under seed 0 (backbone, neck and head sampled together). Each is built for
the scenes' classes at ``RESOLUTION`` and trained with ``SHORT`` (AdamW, warm-up, cosine over its
steps, horizontal flips) on the generated Fashion-MNIST scenes' training split (``nas.tasks.scenes``,
seed 0), then scored on their validation split (COCO mAP@[.5:.95] and mAP@.5, or mIoU). The first
``--long`` are trained again with ``LONG`` (5x the steps, same schedule shape), the first
``--repeats`` again with ``SHORT`` under seed 1 (the seed noise: initialisation, batch order, flips).
The proxies are scored as a job scores a dense candidate (``nas.tasks.training.proxy_batch`` and
``as_classifier``): the whole initialised network, on 64 training images at ``RESOLUTION``.

Every result is a JSON file per candidate and run under ``--workdir`` (written whole, then renamed),
so a run that stops resumes where it stopped; ``--procs`` worker processes (at most 2), 1 thread
each, niced. ``report`` works on whatever is there and labels a partial set as partial.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

import search_spaces as ss
from nas.proxies import TrainRecipe, score
from nas.tasks import DENSE_TASKS, get_task
from nas.tasks.training import as_classifier, proxy_batch, short_dense_training

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results"
WORKDIR = RESULTS / "dense_ranking"
# detection's report is docs/dense_ranking.md; segmentation's has its own file beside it
DOC = {"detection": ROOT / "docs" / "dense_ranking.md", "segmentation": ROOT / "docs" / "dense_ranking_segmentation.md"}
SUMMARY = {t: RESULTS / f"dense_ranking_{'' if t == 'detection' else t + '_'}summary.json" for t in DOC}
RESOLUTION = 64  # 96-128 px took minutes per candidate on the shared 2-core machine
SCENES = {"train": 1024, "val": 128, "size": RESOLUTION, "seed": 0}
SHORT = TrainRecipe(steps=40, batch_size=8, resolution=RESOLUTION, lr=3e-3, warmup_steps=4, decay_steps=40)
LONG_FACTOR = 5
LONG = replace(SHORT, steps=SHORT.steps * LONG_FACTOR, decay_steps=SHORT.steps * LONG_FACTOR, warmup_steps=20)
PROXY_NAMES = ("default", "params", "flops")
PROXY_BATCH = 64
METRIC = {task: (get_task(task).metric, *get_task(task).extra) for task in DENSE_TASKS}

_DATA: dict = {}  # per process: (task, scenes) -> (train set, val set)


def scenes_path(root: Path | None) -> Path:
    from nas.tasks.scenes import scenes_dir

    return scenes_dir(train=SCENES["train"], val=SCENES["val"], size=SCENES["size"], seed=SCENES["seed"], root=root)


def data(task: str, scenes: Path):
    if (task, scenes) not in _DATA:
        from nas.tasks.datasets import load_detection, load_segmentation

        load = load_detection if task == "detection" else load_segmentation
        _DATA[(task, scenes)] = tuple(load(scenes, split, resolution=RESOLUTION) for split in ("train", "val"))
    return _DATA[(task, scenes)]


def candidates(task: str, n: int) -> list[ss.ArchConfig]:
    return ss.sample_archs(ss.get_space(), n, seed=0, task=task)


def build(arch: ss.ArchConfig, num_classes: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return ss.build_model(arch, num_classes=num_classes, img_size=RESOLUTION)


def result_path(workdir: Path, task: str, index: int, run: str) -> Path:
    return workdir / task / f"{index:03d}_{run}.json"


def write_whole(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(path)


def run_one(job: tuple) -> str:
    """One candidate's run: "short" (with its proxies), "long" or "seed1"; skipped when its file exists."""
    task, index, run, workdir, scenes = job
    path = result_path(workdir, task, index, run)
    arch = candidates(task, index + 1)[index]
    recipe = {"short": SHORT, "long": LONG, "seed1": replace(SHORT, seed=1)}[run]
    if path.is_file() and _current(json.loads(path.read_text()), arch.arch_hash, recipe):
        return f"[{index:3d}] {run}: done before"
    train_set, val_set = data(task, scenes)
    record = {"index": index, "run": run, "arch_hash": arch.arch_hash, "name": arch.name, "recipe": asdict(recipe)}
    record["scenes"] = {**SCENES, "dataset": "fashion-mnist-scenes", "scored_on": "val"}
    if run == "short":
        model = build(arch, train_set.num_classes, seed=0)
        start = time.perf_counter()
        x, y = proxy_batch(train_set, batch=PROXY_BATCH, seed=0)
        record["proxies"] = score(as_classifier(model), x, y, names=PROXY_NAMES, seed=0)
        record["proxy_seconds"] = round(time.perf_counter() - start, 2)
        record["params"] = sum(p.numel() for p in model.parameters())
        record["arch"] = json.loads(arch.to_json())
    model = build(arch, train_set.num_classes, seed=recipe.seed)
    start = time.perf_counter()
    try:
        measured = short_dense_training(model, train_set, val_set, recipe)
    except FloatingPointError as err:  # a diverged training is a result too: the metric's floor
        measured = {"diverged": str(err), **{m: 0.0 for m in METRIC[task]}}
    record["seconds"] = round(time.perf_counter() - start, 2)
    record["metrics"] = {k: v for k, v in measured.items() if k != "at"}
    write_whole(path, record)
    main_metric = METRIC[task][0]
    return f"[{index:3d}] {run:5s} {arch.name[:48]:48s} {main_metric} {record['metrics'][main_metric]:.4f} ({record['seconds']:.0f} s)"


def _current(record: dict, arch_hash: str, recipe: TrainRecipe) -> bool:
    """Whether a stored result is of this candidate under this recipe and these scenes (else stale)."""
    same_scenes = {k: record["scenes"].get(k) for k in SCENES} == SCENES
    return record["arch_hash"] == arch_hash and record["recipe"] == asdict(recipe) and same_scenes


def _worker_init() -> None:
    os.nice(max(0, 10 - os.nice(0)))  # niced to 10, not further if started niced
    torch.set_num_threads(1)


def run_stage(args: argparse.Namespace) -> None:
    scenes = scenes_path(args.scenes)
    data(args.task, scenes)  # fail here, once, on bad data
    jobs = [(args.task, i, "short", args.workdir, scenes) for i in range(args.n)]
    jobs += [(args.task, i, "long", args.workdir, scenes) for i in range(args.long)]
    jobs += [(args.task, i, "seed1", args.workdir, scenes) for i in range(args.repeats)]
    if args.procs > 2:
        raise SystemExit("--procs: at most 2 (the machine is shared)")
    if args.procs == 1:
        _worker_init()
        for job in jobs:
            print(run_one(job), flush=True)
        return
    import multiprocessing as mp

    # the long runs are the slowest: start them beside the short ones rather than after all of them
    shorts, rest = jobs[: args.n], jobs[args.n :]
    ordered = [j for pair in zip(shorts, rest, strict=False) for j in pair]
    ordered += shorts[len(rest) :] + rest[len(shorts) :]
    with mp.get_context("spawn").Pool(args.procs, initializer=_worker_init) as pool:
        for line in pool.imap_unordered(run_one, ordered, chunksize=1):
            print(line, flush=True)


def load_results(workdir: Path, task: str, n: int) -> dict[str, dict[int, dict]]:
    hashes = {i: arch.arch_hash for i, arch in enumerate(candidates(task, n))}
    runs: dict[str, dict[int, dict]] = {"short": {}, "long": {}, "seed1": {}}
    for path in sorted((workdir / task).glob("*.json")):
        record = json.loads(path.read_text())
        recipe = {"short": SHORT, "long": LONG, "seed1": replace(SHORT, seed=1)}[record["run"]]
        if _current(record, hashes.get(record["index"], ""), recipe):
            runs[record["run"]][record["index"]] = record
    return runs


def _fmt(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or v != v else f"{v:.{digits}f}"


def _ranks(xs: list[float], ys: list[float]) -> tuple[float | None, float | None]:
    """(Spearman rho, Kendall tau-b) with scipy, as benchmarks/proxy_ranking_report.py computes them."""
    from scipy.stats import kendalltau, spearmanr

    if len(xs) < 3:
        return None, None
    return float(spearmanr(xs, ys).statistic), float(kendalltau(xs, ys).statistic)


def reading(rows: list[tuple], short_vs_long: tuple, noise: dict | None, n_long: int) -> list[str]:
    """What the figures say, in words made from the figures themselves."""
    scored = [(name, rho) for name, rho, *_ in rows if rho is not None]
    if not scored:
        return []
    best = max(scored, key=lambda r: r[1])
    default = dict(scored).get("default")
    lead = (
        f"of the three, {best[0]} ranks the short-trained networks best (Spearman {_fmt(best[1])})"
        if best[1] >= 0.3
        else f"none of the three ranks the short-trained networks well (best Spearman {_fmt(best[1])}, {best[0]})"
    )
    out = [
        f"Reading: {lead}; "
        f"the default proxy's Spearman is {_fmt(default)}"
        + (
            f", {'above' if default > max(v for n, v in scored if n != 'default') else 'not above'} "
            "the params / FLOPs baselines."
            if default is not None and len(scored) > 1
            else "."
        )
    ]
    backwards = [f"{n} ({_fmt(v)})" for n, v in scored if v < -0.3]
    if backwards:
        out.append(
            f"Ranked backwards: {', '.join(backwards)}; higher scores went with lower metrics, the smaller networks "
            "having learned more in the budget."
        )
    if short_vs_long[0] is not None:
        out.append(
            f"The short recipe orders {n_long} networks as the {LONG_FACTOR}x longer one does with Spearman "
            f"{_fmt(short_vs_long[0])} (Kendall {_fmt(short_vs_long[1])})."
        )
    if noise:
        ratio = noise["mean_abs_diff"] / noise["spread_std"] if noise["spread_std"] else float("nan")
        out.append(
            f"A second seed moves a network's metric by {_fmt(ratio, 2)}x the spread between networks "
            f"({noise['networks']} networks): "
            + (
                "the short metric is mostly seed noise."
                if ratio > 0.5
                else "seed noise is a large share of the differences between networks."
                if ratio > 0.25
                else "the networks differ by more than the noise."
            )
        )
    return [" ".join(out), ""]


def report(runs: dict[str, dict[int, dict]], args: argparse.Namespace) -> str:
    """The figures as markdown (also written to docs/dense_ranking.md and the summary JSON)."""
    import statistics

    task, (metric, second) = args.task, METRIC[args.task]
    short, long, seed1 = runs["short"], runs["long"], runs["seed1"]
    partial = len(short) < args.n or len(long) < args.long or len(seed1) < args.repeats
    summary: dict = {"task": task, "metric": metric, "partial": partial, "counts": {k: len(v) for k, v in runs.items()}}
    lines = [
        f"# Dense ranking: proxies and short training against trained {task} networks",
        "",
        "Printed by `python benchmarks/dense_ranking.py report"
        + (f" --task {task}" if task != "detection" else "")
        + "` from the per-candidate results in `benchmarks/results/dense_ranking/"
        + f"{task}/` (`python benchmarks/dense_ranking.py run` makes them; it resumes where it stopped).",
        "",
    ]
    if partial:
        lines += [
            f"**PARTIAL**: {len(short)} of {args.n} short runs, {len(long)} of {args.long} long runs and "
            f"{len(seed1)} of {args.repeats} seed repeats had finished when this was written; the figures below "
            "are over those only. Resume with `nice -n 10 python benchmarks/dense_ranking.py run` and "
            "report again.",
            "",
        ]
    s, lg = SHORT, LONG
    lines += [
        "## Set-up",
        "",
        f"- Candidates: the first {args.n} {task} networks `search_spaces.sample_archs(get_space(), n, seed=0, "
        f"task={task!r})` draws from the default space (backbone, neck and head sampled together).",
        f"- Data: generated Fashion-MNIST scenes (`nas.tasks.scenes.make_scenes`, seed {SCENES['seed']}), "
        f"{SCENES['train']} training and {SCENES['val']} validation images at {SCENES['size']}x{SCENES['size']}; "
        "metrics on the validation images.",
        f"- Short recipe: {s.steps} steps of batch {s.batch_size} at {s.resolution}x{s.resolution}, AdamW lr "
        f"{s.lr}, weight decay {s.weight_decay}, {s.warmup_steps} warm-up steps then cosine to zero, random "
        "horizontal flips, seed 0, float32 on one CPU thread. "
        f"Long recipe: the same with {lg.steps} steps ({LONG_FACTOR}x), {lg.warmup_steps} warm-up steps.",
        "- Seconds are wall time per training (scoring included) on a shared 2-core machine under a varying load"
        " (load average 3 to 14), one thread per process: not what a training costs on an idle core.",
        *(
            [
                "- Segmentation: measured the same way (mIoU) in docs/dense_ranking_segmentation.md"
                if (args.workdir / "segmentation").is_dir()
                else "- Segmentation: not run for this report (the shared machine's time went to detection); "
                "`python benchmarks/dense_ranking.py run --task segmentation` then `report --task segmentation` "
                "measure it the same way (mIoU)."
            ]
            if task == "detection"
            else []
        ),
        f"- Metric: {'COCO mAP@[.5:.95] (0-1), mAP@.5 beside it' if task == 'detection' else 'mIoU (0-1)'} "
        "(`nas.tasks.training.evaluate_dense`).",
        f"- Proxies: as a job scores a dense candidate: the whole initialised network seen as a classifier "
        f"(`nas.tasks.training.as_classifier`) on {PROXY_BATCH} training images labelled by their dominant class "
        "(`proxy_batch`); `default` is the shipped default proxy, `params` and `flops` (MACs of one "
        f"{RESOLUTION}x{RESOLUTION} image) the baselines.",
        "",
    ]
    idx = sorted(short)
    truth = [short[i]["metrics"][metric] for i in idx]
    if idx:
        lines += [
            "## The trained metric",
            "",
            f"Short recipe, {len(idx)} networks: {metric} median {_fmt(statistics.median(truth))}, range "
            f"{_fmt(min(truth))} to {_fmt(max(truth))}; "
            f"median {_fmt(statistics.median(short[i]['seconds'] for i in idx), 1)} s of training per network.",
            "",
        ]
        summary["short"] = {"median": statistics.median(truth), "min": min(truth), "max": max(truth)}
    rep = sorted(set(seed1) & set(short))
    if rep:
        diffs = [abs(seed1[i]["metrics"][metric] - short[i]["metrics"][metric]) for i in rep]
        spread = statistics.pstdev(truth) if len(truth) > 1 else float("nan")
        lines += [
            f"Seed noise ({len(rep)} networks trained again under seed 1): mean |{metric} difference| "
            f"{_fmt(statistics.mean(diffs))}, against a spread (std) of {_fmt(spread)} across the networks.",
            "",
        ]
        summary["seed_noise"] = {"networks": len(rep), "mean_abs_diff": statistics.mean(diffs), "spread_std": spread}
    rows = []
    for name in PROXY_NAMES:
        xs = [short[i]["proxies"][name] for i in idx]
        rho, tau = _ranks(xs, truth)
        li = sorted(set(long) & set(short))
        rho_l, tau_l = _ranks([short[i]["proxies"][name] for i in li], [long[i]["metrics"][metric] for i in li])
        rows.append((name, rho, tau, rho_l, tau_l))
        summary.setdefault("proxies", {})[name] = {
            "spearman": rho,
            "kendall": tau,
            "spearman_long": rho_l,
            "kendall_long": tau_l,
        }
    truth2 = [short[i]["metrics"][second] for i in idx]
    by_second = {name: _ranks([short[i]["proxies"][name] for i in idx], truth2)[0] for name in PROXY_NAMES}
    summary["spearman_vs_short_" + second] = by_second
    li = sorted(set(long) & set(short))
    rho_sl, tau_sl = _ranks([short[i]["metrics"][metric] for i in li], [long[i]["metrics"][metric] for i in li])
    same_subset = {
        name: _ranks([short[i]["proxies"][name] for i in li], [short[i]["metrics"][metric] for i in li])[0]
        for name in PROXY_NAMES
    }
    summary["spearman_vs_short_on_long_subset"] = same_subset
    summary["short_vs_long"] = {"networks": len(li), "spearman": rho_sl, "kendall": tau_sl}
    lines += [
        "## How each ranks the networks",
        "",
        f"| ranker | Spearman vs short {metric} ({len(idx)}) | Kendall | Spearman vs long {metric} ({len(li)}) | Kendall |",
        "|---|---|---|---|---|",
        *(f"| {n} | {_fmt(a)} | {_fmt(b)} | {_fmt(c)} | {_fmt(d)} |" for n, a, b, c, d in rows),
        f"| short recipe ({s.steps} steps) | | | {_fmt(rho_sl)} | {_fmt(tau_sl)} |",
        "",
        f"On the {len(li)} networks of the long runs, against their short {metric}: Spearman "
        + ", ".join(f"{n} {_fmt(v)}" for n, v in same_subset.items())
        + ".",
        "",
        f"Against the short recipe's {second} instead: Spearman "
        + ", ".join(f"{n} {_fmt(v)}" for n, v in by_second.items())
        + ".",
        "",
        *reading(rows, (rho_sl, tau_sl), summary.get("seed_noise"), len(li)),
        "## Every network",
        "",
        f"| # | network | params (M) | MACs @{RESOLUTION} (M) | default proxy | short {metric} | short {second} "
        f"| long {metric} | seed-1 {metric} | short s | long s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i in idx:
        r = short[i]
        long_s = f"{long[i]['seconds']:.0f}" if i in long else ""
        lines.append(
            f"| {i} | `{r['name']}` | {r['params'] / 1e6:.2f} | {r['proxies']['flops'] / 1e6:.0f} | "
            f"{_fmt(r['proxies']['default'])} | {_fmt(r['metrics'][metric])} | {_fmt(r['metrics'][second])} | "
            f"{_fmt(long[i]['metrics'][metric]) if i in long else ''} | "
            f"{_fmt(seed1[i]['metrics'][metric]) if i in seed1 else ''} | {r['seconds']:.0f} | "
            f"{long_s} |"
        )
    text = "\n".join(lines) + "\n"
    if args.workdir == WORKDIR:
        DOC[task].write_text(text)
        SUMMARY[task].write_text(json.dumps(summary, indent=1) + "\n")
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=("run", "report", "smoke"))
    parser.add_argument("--task", choices=tuple(METRIC), default="detection")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--long", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    parser.add_argument(
        "--scenes", type=Path, default=None, help="the scenes' cache folder (default: nas.tasks.scenes')"
    )
    args = parser.parse_args()
    if args.stage == "run":
        run_stage(args)
    elif args.stage == "report":
        print(report(load_results(args.workdir, args.task, args.n), args))
    else:
        import tempfile

        SHORT = replace(SHORT, steps=3, warmup_steps=1, decay_steps=3)
        LONG = replace(SHORT, steps=6, decay_steps=6)
        SCENES.update(train=32, val=8)
        with tempfile.TemporaryDirectory() as tmp:
            args.workdir, args.scenes, args.n, args.long, args.repeats, args.procs = Path(tmp), Path(tmp), 2, 1, 1, 1
            run_stage(args)
            print(report(load_results(args.workdir, args.task, args.n), args))
