"""Successive halving of a job's trainings against today's full training, and whether anything
the final front left unmeasured beats the job's best measured network (issue 22, items 6 and 7).

    python benchmarks/training_schedule.py run [--seeds 0 1] [--trials N] [--wall S] [--timeout S]
    python benchmarks/training_schedule.py report > docs/training_schedule.md

``run`` runs the README job (docs/examples/edge-classifier.yaml; ``--trials``/``--wall`` override its
budget, stated in the report) once per seed and mode, sequentially, each in its own process under
``--timeout``: ``full`` (``train.rungs: [1]``, every training to the end) and ``halving``
(``train.rungs: [0.25, 0.5, 1]``). Then the unmeasured members of each final front with the highest
predicted accuracy (``--check-top``), and one candidate stopped early, are trained to the end with the job's own recipe and seed
(``nas.training.AccuracyMeter``, the code path of the job's trainings). One JSON per job goes to
``results/training_schedule/``; ``report`` prints the figures from them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
README_JOB = ROOT / "docs" / "examples" / "edge-classifier.yaml"
RESULTS = Path(__file__).parent / "results" / "training_schedule"
MODES = {"full": [1], "halving": [0.25, 0.5, 1]}
STOPPED_CHECKED = 1  # stopped candidates trained to the end afterwards, per job (the predictor's check)


def job_spec(mode: str, seed: int, trials: int | None, wall: float | None) -> dict:
    spec = yaml.safe_load(README_JOB.read_text())
    spec["seed"] = seed
    spec["evaluator"]["train"]["rungs"] = MODES[mode]
    if trials is not None:
        spec["budget"]["trials"] = trials
    if wall is not None:
        spec["budget"]["wall_time_s"] = wall
    return spec


def one_job(mode: str, seed: int, trials: int | None, wall: float | None, out: Path) -> None:
    """Run one job into its own SQLite database, then write its figures (``figures``)."""
    from nas.search import run, submit
    from nas.spec import load_spec
    from nas.store import Store

    db = out.with_suffix(".db")
    for stale in (db, db.with_suffix(".db-wal"), db.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)
    store = Store(f"sqlite:///{db}")
    run(store, submit(store, load_spec(job_spec(mode, seed, trials, wall))).id)
    figures(mode, seed, out)


def figures(mode: str, seed: int, out: Path) -> None:
    """A finished job's figures, from its database, into ``out`` (JSON)."""
    from nas.store import Store

    store = Store(f"sqlite:///{out.with_suffix('.db')}")
    (job,) = store.list_jobs()
    trained = [c for c in store.candidates(job.id, status="complete") if c.rungs]
    front = store.pareto(job.id, sort="accuracy", descending=True)
    measured_front = [c.metrics["measured_accuracy"] for c in front if c.metrics["measured_accuracy"] is not None]
    stopped = [c for c in trained if c.rungs[-1]["steps"] < c.rungs[-1]["of"]]
    result = {
        "mode": mode, "seed": seed, "rungs": MODES[mode], "status": job.status, "run_s": job.run_seconds,
        "trials": job.n_trials, "budget": job.spec["budget"],
        "trainings": len(trained), "stopped": len(stopped), "measured": len(trained) - len(stopped),
        "train_s": sum(c.rungs[-1]["seconds"] for c in trained), "sgd_steps": sum(c.rungs[-1]["steps"] for c in trained),
        "hypervolume": job.hypervolume, "front": len(front), "front_measured": len(measured_front),
        "best_measured": max(measured_front, default=None),
        "after": [],
    }  # fmt: skip
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "after"}), flush=True)


def check(out: Path, top: int) -> None:
    """Train the ``top`` unmeasured front members by predicted accuracy, and up to ``STOPPED_CHECKED``
    candidates stopped early, to the end with the job's recipe and seed; add them to ``out``."""
    from nas.spec import load_spec
    from nas.store import Store
    from nas.training import AccuracyMeter
    from search_spaces import ArchConfig

    result = json.loads(out.read_text())
    store = Store(f"sqlite:///{out.with_suffix('.db')}")
    (job,) = store.list_jobs()
    front = store.pareto(job.id, sort="accuracy", descending=True)
    unmeasured = [c for c in front if c.metrics["measured_accuracy"] is None]
    stopped = [
        c for c in store.candidates(job.id, status="complete") if c.rungs and c.rungs[-1]["steps"] < c.rungs[-1]["of"]
    ]
    predictor = store.get_job(job.id).predictor
    before = {p["candidate"]: p for p in predictor.get("prospective", []) if "stopped_at" in p}
    meter = AccuracyMeter(load_spec(job.spec))
    done = {a["id"] for a in result["after"]}
    result["unmeasured_front"] = len(unmeasured)
    for c in unmeasured[:top] + [c for c in stopped if c not in front][:STOPPED_CHECKED]:
        if c.id in done:
            continue
        t = time.perf_counter()
        accuracy, _ = meter(ArchConfig.from_json(c.arch))
        result["after"].append({
            "id": c.id, "name": c.name, "on_front": c in front, "stopped": c in stopped, "truth": accuracy,
            "predicted": c.metrics["predicted_accuracy"], "std": c.metrics["predicted_std"],
            "predicted_before_rungs": before.get(c.id, {}).get("predicted"), "latency_ms": c.metrics["latency_ms"],
            "energy_mj": c.metrics["energy_mj"], "seconds": time.perf_counter() - t,
        })  # fmt: skip
        out.write_text(json.dumps(result, indent=1))
        print(json.dumps(result["after"][-1]), flush=True)


DESIGN = """\
## How a job trains now

**Successive halving** (`evaluator.train.rungs`, shares of the recipe's steps; `[1]`, the default,
is the full training of before). A training runs its recipe once (the cosine spans every step, so
stopping to score at a rung and going on is the same run: the last rung's accuracy equals a
training without rungs) and is scored on the test images at each rung. The driver sends each
training with a bar per early rung: the accuracy it needs at the end to be non-dominated by the
current front at its own latency, energy and other objectives (the best accuracy of the front
members at least as good on all of them; `AccuracyPredictor.required_accuracy`), minus the most it
could still gain from that rung (`gain_bound`: `0.4 x (1 - share)` until 3 full trainings have
shown their gains, then the largest gain seen from that rung plus 0.02). Below its bar, the worker
stops the training and sends its rungs back: no weights are kept. The front's best (`train.final`)
always train to the end (their weights are exported). Every rung is stored (`CandidateRecord.rungs`:
steps, of, accuracy, seconds).

**The predictor learns from a stopped training**: its final accuracy is taken as its last rung's
plus the mean gain full trainings showed from that rung, an observation with extra variance (the
spread of those gains) in the Gaussian process (`AccuracySurrogate.fit(extra_var=...)`); the
candidate stays predicted, conditioned on it.

**What to train** during the search (after the initial design): the candidate whose measurement is
likeliest to change the front or its best, from its predicted mean and std: the chance it beats the
front's best measured accuracy plus how undecided its membership of the front is (min(p, 1 - p),
p the chance it beats its `required_accuracy`). **At the end**, the front's top `train.final` train
fully, and where the unmeasured members' trainings (the median training so far, over the workers)
fit in a quarter of the search's wall time, every other unmeasured member of the front trains too
(through the rungs), in up to 3 rounds, since a measurement reorders the front.
"""


def run_all(args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    outs = []
    for seed in args.seeds:
        for mode in MODES:
            out = RESULTS / f"{mode}_seed{seed}.json"
            outs.append(out)
            if out.is_file() and not args.again:
                print(f"{mode} seed {seed}: done ({out.name}); --again reruns it", flush=True)
                continue
            command = [sys.executable, __file__, "job", mode, str(seed), str(out)]
            command += ["--trials", str(args.trials)] if args.trials else []
            command += ["--wall", str(args.wall)] if args.wall else []
            print(f"{mode} seed {seed} ...", flush=True)
            try:
                subprocess.run(command, check=True, timeout=args.timeout)
            except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as err:
                print(f"{mode} seed {seed}: {err}", flush=True)
    for out in outs:
        if out.is_file() and args.check_top:
            check(out, args.check_top)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def stopped_truths(halving_json: Path, seed: int) -> list[dict]:
    """The candidates a halving job stopped early that the full job of the same seed trained to the
    end (same network, recipe and seed: the same run): what each would have reached."""
    from nas.store import Store

    full_db = RESULTS / f"full_seed{seed}.db"
    if not full_db.is_file() or not halving_json.with_suffix(".db").is_file():
        return []
    full = Store(f"sqlite:///{full_db}")
    truth = {
        c.arch_hash: c.metrics["measured_accuracy"]
        for c in full.candidates(full.list_jobs()[0].id, status="complete")
        if c.metrics["measured_accuracy"] is not None
    }
    store = Store(f"sqlite:///{halving_json.with_suffix('.db')}")
    job = store.list_jobs()[0]
    before = {p["candidate"]: p.get("predicted") for p in job.predictor.get("prospective", []) if "stopped_at" in p}
    return [
        {"name": c.name, "rung": c.rungs[-1], "truth": truth[c.arch_hash], "predicted": c.metrics["predicted_accuracy"],
         "std": c.metrics["predicted_std"], "before": before.get(c.id)}
        for c in store.candidates(job.id, status="complete")
        if c.rungs and c.rungs[-1]["steps"] < c.rungs[-1]["of"] and c.arch_hash in truth
    ]  # fmt: skip


def report() -> None:
    rows = {(r["mode"], r["seed"]): r for r in (json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json")))}
    first = [json.loads(p.read_text()) for p in sorted((RESULTS / "first_rule").glob("*.json"))]
    seeds = sorted({s for _, s in rows})
    budget = next(iter(rows.values()))["budget"] if rows else {}
    print("# Successive halving of a job's trainings, and a measured top of the front\n")
    print(DESIGN)
    print("Printed by `python benchmarks/training_schedule.py report` from the JSONs `run` wrote")
    print("(`benchmarks/results/training_schedule/`). The README job (docs/examples/edge-classifier.yaml) under")
    print(
        f"seeds {', '.join(map(str, seeds))}, budget {budget.get('trials')} trials / {budget.get('wall_time_s')} s wall,"
    )
    print(
        "2 Ray workers, on a shared 2-core CPU machine (seconds are noisy, the first rule's run had other trainings beside it;"
    )
    print("SGD steps are exact). `full`: `train.rungs: [1]` (every training to the end, as before);")
    print("`halving`: `train.rungs: [0.25, 0.5, 1]`. Both modes choose what to train and measure the whole final")
    print("front when cheap in the same way (docs/training_schedule.md); only the rungs differ.\n")
    print(
        "| mode | seed | trials | trainings (stopped early) | training worker-s | SGD steps | front hypervolume | front (measured) | best measured accuracy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (mode, seed), r in sorted(rows.items()):
        best = f"{r['best_measured']:.4f}" if r["best_measured"] is not None else "-"
        print(f"| {mode} | {seed} | {r['trials']} | {r['trainings']} ({r['stopped']}) | {r['train_s']:.0f} | "
              f"{r['sgd_steps']} | {r['hypervolume']:.5f} | {r['front']} ({r['front_measured']}) | {best} |")  # fmt: skip
    for r in first:
        best = f"{r['best_measured']:.4f}" if r["best_measured"] is not None else "-"
        print(f"| halving, first rule* | {r['seed']} | {r['trials']} | {r['trainings']} ({r['stopped']}) | {r['train_s']:.0f} | "
              f"{r['sgd_steps']} | {r['hypervolume']:.5f} | {r['front']} ({r['front_measured']}) | {best} |")  # fmt: skip
    if first:
        print("\n\\* the first rule stopped a training on its rungs alone; it stopped networks that end on the front")
        print(
            "(below), so a training now gets bars only where its prediction, two stds up, cannot reach the front either."
        )
    both = [s for s in seeds if ("full", s) in rows and ("halving", s) in rows]
    if both:

        def mean(mode: str, key: str) -> float:
            return statistics.mean(rows[(mode, s)][key] for s in both)

        spread = {m: max(rows[(m, s)]["best_measured"] or 0 for s in both) - min(rows[(m, s)]["best_measured"] or 0 for s in both) for m in MODES}  # fmt: skip
        print(f"\nOver seeds {', '.join(map(str, both))} (means), halving against full:\n")
        saved = 1 - mean("halving", "train_s") / mean("full", "train_s")
        print(f"- training worker-seconds: {abs(saved):.1%} {'less' if saved >= 0 else 'more'} "
              f"({mean('full', 'train_s'):.0f} -> {mean('halving', 'train_s'):.0f}; scoring every rung on the test"
              f" images costs time too); target >= 50 % less")  # fmt: skip
        print(f"- SGD steps: {1 - mean('halving', 'sgd_steps') / mean('full', 'sgd_steps'):.1%} less "
              f"({mean('full', 'sgd_steps'):.0f} -> {mean('halving', 'sgd_steps'):.0f})")  # fmt: skip
        print(f"- front hypervolume: {mean('halving', 'hypervolume') / mean('full', 'hypervolume') - 1:+.2%} "
              f"({mean('full', 'hypervolume'):.5f} -> {mean('halving', 'hypervolume'):.5f}); target >= -1 %")  # fmt: skip
        print(f"- best measured accuracy: {mean('full', 'best_measured'):.4f} -> {mean('halving', 'best_measured'):.4f} "
              f"(seed spread {spread['full']:.4f} full, {spread['halving']:.4f} halving)")  # fmt: skip
    print("\n## What the final front left unmeasured, trained afterwards (item 7)\n")
    print("The unmeasured members of each final front with the highest predicted accuracy (`check MODE SEED --top N`;")
    print("not every member where the job left many: `--check-top`), trained to the")
    print("end with the job's own recipe and seed (`AccuracyMeter`, the job's code path): does one beat the")
    print("job's best measured network?\n")
    print(
        "| mode | seed | unmeasured front members (trained afterwards) | best of them, trained | job's best measured | beaten by |"
    )
    print("|---|---|---|---|---|---|")
    seed_spread = max(
        [abs(rows[(m, seeds[0])]["best_measured"] - rows[(m, s)]["best_measured"]) for m in MODES for s in seeds
         if (m, seeds[0]) in rows and (m, s) in rows and rows[(m, s)]["best_measured"] and rows[(m, seeds[0])]["best_measured"]],
        default=0.0,
    )  # fmt: skip
    for (mode, seed), r in sorted(rows.items()):
        members = [a for a in r["after"] if a["on_front"]]
        top = max(members, key=lambda a: a["truth"], default=None)
        margin = (top["truth"] - r["best_measured"]) if top and r["best_measured"] is not None else None
        best_of = "-"
        if top:
            best_of = f"{top['name']} {top['truth']:.4f} (predicted {top['predicted']:.4f} +- {top['std']:.4f})"
        beaten = f"{margin:+.4f}" if margin is not None else "-"
        job_best = f"{r['best_measured']:.4f}" if r["best_measured"] is not None else "-"
        print(
            f"| {mode} | {seed} | {r.get('unmeasured_front', '-')} ({len(members)}) | {best_of} | {job_best} | {beaten} |"
        )
    print(
        f"\nSeed spread (largest difference of best measured accuracy between seeds, either mode): {seed_spread:.4f}."
    )
    checked = [
        (
            f"halving, first rule, seed {r['seed']}",
            stopped_truths(RESULTS / "first_rule" / f"halving_seed{r['seed']}.json", r["seed"]),
        )
        for r in first
    ]
    checked += [
        (f"halving, seed {seed}", stopped_truths(RESULTS / f"halving_seed{seed}.json", seed))
        for m, seed in rows
        if m == "halving"
    ]
    checked = [(label, found) for label, found in checked if found]
    if checked:
        print("\n## What the stopped trainings would have reached\n")
        print(
            "Candidates a halving job stopped early that the full job of the same seed trained to the end (the same run):\n"
        )
        print(
            "| job | candidate | stopped at (steps of, accuracy) | would have reached | predicted before its rungs | predicted after |"
        )
        print("|---|---|---|---|---|---|")
        for label, found in checked:
            for f in found:
                before = f"{f['before']:.4f}" if f["before"] is not None else "-"
                print(f"| {label} | {f['name']} | {f['rung']['steps']} of {f['rung']['of']}, {f['rung']['accuracy']:.4f} | "
                      f"{f['truth']:.4f} | {before} | {f['predicted']:.4f} +- {f['std']:.4f} |")  # fmt: skip
        pairs = [f for _, found in checked for f in found if f["before"] is not None]
        if pairs:
            b = _median([abs(f["before"] - f["truth"]) for f in pairs])
            a_ = _median([abs(f["predicted"] - f["truth"]) for f in pairs])
            print(f"\nMedian |prediction - truth| over these {len(pairs)}: {b:.4f} before their rungs, {a_:.4f} at the job's end "
                  "with them (the end's prediction also saw the trainings after).")  # fmt: skip
    stopped = [a for r in rows.values() for a in r["after"] if a["stopped"] and a["predicted_before_rungs"] is not None]
    if stopped:
        before = [abs(a["predicted_before_rungs"] - a["truth"]) for a in stopped]
        after = [abs(a["predicted"] - a["truth"]) for a in stopped]
        print("\n## Does a stopped training teach the predictor? (held out: trained to the end afterwards)\n")
        print(f"{len(stopped)} candidates stopped early, trained to the end afterwards: median |prediction - truth| "
              f"{_median(before):.4f} before their rungs, {_median(after):.4f} at the job's end with their rungs "
              f"(the end's prediction also saw later trainings); truth below the prediction before rungs in "
              f"{sum(a['truth'] < a['predicted_before_rungs'] for a in stopped)} of {len(stopped)}.")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    r.add_argument("--trials", type=int)
    r.add_argument("--wall", type=float)
    r.add_argument("--timeout", type=float, default=1800)
    r.add_argument("--again", action="store_true", help="rerun jobs whose results exist")
    r.add_argument("--check-top", type=int, default=3, help="unmeasured front members trained afterwards, per job")
    f = sub.add_parser("figures", help="a finished job's figures from its database (after an interrupted run)")
    f.add_argument("mode", choices=list(MODES))
    f.add_argument("seed", type=int)
    j = sub.add_parser("job")
    j.add_argument("mode", choices=list(MODES))
    j.add_argument("seed", type=int)
    j.add_argument("out", type=Path)
    j.add_argument("--trials", type=int)
    j.add_argument("--wall", type=float)
    c = sub.add_parser("check", help="train a finished job's top unmeasured front members afterwards")
    c.add_argument("mode", choices=list(MODES))
    c.add_argument("seed", type=int)
    c.add_argument("--top", type=int, default=3)
    sub.add_parser("report")
    args = parser.parse_args(argv)
    if args.stage == "run":
        run_all(args)
    elif args.stage == "job":
        one_job(args.mode, args.seed, args.trials, args.wall, args.out)
    elif args.stage == "check":
        check(RESULTS / f"{args.mode}_seed{args.seed}.json", args.top)
    elif args.stage == "figures":
        figures(args.mode, args.seed, RESULTS / f"{args.mode}_seed{args.seed}.json")
    else:
        report()


if __name__ == "__main__":
    main()
