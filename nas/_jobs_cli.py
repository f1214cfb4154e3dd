"""`nas run | resume | cancel | jobs | pareto | show`: search jobs from the command line.

The database comes from ``--db URL``, else ``$NAS_DB_URL``, else ``sqlite:///nas.db`` in the
working directory. The store, Optuna and Ray load inside the commands, so `nas` starts quickly.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

from nas._format import ACCURACY_HEADER, accuracy_cell, table
from nas.spec import SAMPLERS
from nas.status import JOB_STATUSES

DB_HELP = "database URL (default: $NAS_DB_URL, else sqlite:///nas.db in the working directory)"
FRONT_COLUMNS = ("id", "name", "accuracy", "latency_ms", "throughput_fps", "energy_mj", "params", "trial_number")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="submit a search job from a spec file and run it to its budget")
    p.add_argument("spec", help="the job spec (YAML or JSON); see nas/spec.py")
    p.add_argument("--name", help="override the spec's name")
    p.add_argument("--trials", type=int, help="override budget.trials")
    p.add_argument("--sampler", choices=SAMPLERS, help="override the sampler")
    p.add_argument("--seed", type=int, help="override the seed")
    p.add_argument("--workers", type=int, help="override workers.count (0: evaluate in this process, no Ray)")
    p.add_argument(
        "--max-workers", type=int, metavar="N",
        help="allow up to N workers (default: this machine's CPUs; more only if you mean to oversubscribe)",
    )  # fmt: skip
    _common(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--top", type=int, default=10, help="Pareto candidates to print at the end (default 10)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="continue a job that was interrupted, killed or cancelled")
    p.add_argument("job", type=int)
    _common(p)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--top", type=int, default=10)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("train", help="measure the front's best: train them with the job's recipe, keep their weights")
    p.add_argument("job", type=int)
    p.add_argument("--top", type=int, default=3, help="how many of the front's best by accuracy (default 3)")
    _common(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("cancel", help="stop a job; it keeps every result so far and can be resumed")
    p.add_argument("job", type=int)
    _common(p)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("jobs", help="list the jobs, or show one with its hypervolume history")
    p.add_argument("job", type=int, nargs="?")
    p.add_argument("--status", choices=JOB_STATUSES, help="only jobs in this status")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("pareto", help="the job's Pareto-optimal feasible candidates")
    p.add_argument("job", type=int)
    p.add_argument("--where", action="append", help="bounds, e.g. 'latency_ms<2' or 'latency_ms<2,energy_mj<=3'")
    p.add_argument("--sort", help="a metric (default: the first objective, best first)")
    p.add_argument("--desc", action="store_true", default=None, help="sort descending")
    p.add_argument("--asc", dest="desc", action="store_false", help="sort ascending")
    p.add_argument("--limit", type=int)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    _common(p)
    p.set_defaults(func=cmd_pareto)

    p = sub.add_parser("show", help="one candidate: metrics, scores and its per-layer hardware table")
    p.add_argument("job", type=int)
    p.add_argument("candidate", help="a candidate id, or its architecture hash (a unique prefix)")
    p.add_argument("--top", type=int, help="only the N slowest layers")
    p.add_argument("--json", action="store_true")
    _common(p)
    p.set_defaults(func=cmd_show)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help=DB_HELP)
    add_server_options(p)


def add_server_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL", help="act through a running service (`nas serve`) instead of --db")
    p.add_argument("--token", help="the service's API token (default: $NAS_TOKEN)")


def _store(args: argparse.Namespace):
    from nas.store import Store

    return Store(args.db)


# ---- run / resume / cancel --------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from nas.limits import Limits
    from nas.search import submit
    from nas.spec import load_spec

    overrides: dict[str, Any] = {"name": args.name, "sampler": args.sampler, "seed": args.seed}
    spec = load_spec(args.spec)
    if args.trials is not None:
        overrides["budget"] = {**spec.budget.model_dump(), "trials": args.trials}
    if args.workers is not None:
        overrides["workers"] = {**spec.workers.model_dump(), "count": args.workers}
    if any(v is not None for v in overrides.values()):
        spec = load_spec(spec.model_dump(mode="json"), **overrides)
    store = _store(args)
    job = submit(store, spec, limits=Limits.local(args.max_workers))
    print(f"job {job.id} ({job.name}) in {store.safe_url}: {spec.sampler} over {spec.budget.trials or '∞'} trials")
    return _run(store, job.id, args, resume=False)


def cmd_resume(args: argparse.Namespace) -> int:
    store = _store(args)
    job = store.get_job(args.job)
    print(f"job {job.id} ({job.name}): resuming at {job.n_trials} trials")
    return _run(store, job.id, args, resume=True)


def _run(store, job_id: int, args: argparse.Namespace, *, resume: bool) -> int:
    from nas.search import run

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)  # a clean stop records the job as interrupted
    bar = None if args.quiet else ProgressBar(store, store.get_job(job_id))
    try:
        job = run(store, job_id, progress=bar, resume=resume)
    except KeyboardInterrupt:
        if bar:
            bar.close()
        print(f"interrupted; `nas resume {job_id}` continues the job", file=sys.stderr)
        return 130
    if bar:
        bar.close()
    print(f"job {job.id}: {job.status} after {job.n_trials} trials in {job.run_seconds:.0f} s; {_counts(job)}")
    if job.hypervolume is not None:
        print(f"hypervolume {job.hypervolume:.6g} (reference {_reference(job)})")
    print(f"accuracy: {_accuracy_units(job).strip().strip('()')}{_predictor_errors(job)}")
    front = store.pareto(job_id, limit=args.top)
    if front:
        print(
            f"\nPareto front ({job.n_front} candidates{'; the first ' + str(args.top) if job.n_front > args.top else ''}):"
        )
        print(_front_table(front, job.accuracy_kind))
        print(f"\n`nas pareto {job_id}` filters and sorts it; `nas show {job_id} ID` details one candidate")
    return 0 if job.status in ("completed", "cancelled") else 1


def cmd_train(args: argparse.Namespace) -> int:
    store = _store(args)
    job = store.get_job(args.job)
    if job.accuracy_kind != "predicted":
        from nas.objectives import ACCURACY_KINDS

        raise ValueError(
            f"job {job.id} has no training recipe (its accuracy is {ACCURACY_KINDS[job.accuracy_kind]}); "
            "submit it with evaluator.train to measure candidates"
        )
    store.request_training(job.id, args.top)
    print(f"job {job.id} ({job.name}): measuring the front's best {args.top}")
    return _run(store, job.id, argparse.Namespace(quiet=args.quiet, top=10), resume=True)


def cmd_cancel(args: argparse.Namespace) -> int:
    from nas.search import cancel

    job = cancel(_store(args), args.job)
    if job.status == "completed":
        print(f"job {job.id} has already completed")
    elif job.status == "running":
        print(f"job {job.id} will stop within seconds; `nas resume {job.id}` continues it")
    else:
        print(f"job {job.id} is {job.status}; `nas resume {job.id}` continues it")
    return 0


class ProgressBar:
    """One line on stderr: redrawn in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, store, job) -> None:
        self.store = store
        self.total = job.budget_trials
        self.wall = job.spec["budget"]["wall_time_s"]
        self.start_trials, self.started = job.n_trials, time.monotonic()
        self.tty = sys.stderr.isatty()
        self.last_print = 0.0
        self.objective = job.spec["objectives"][0]
        self.best: str = ""
        self.hypervolume: float | None = None
        self.line = ""

    def __call__(self, job) -> None:
        now = time.monotonic()
        if job.hypervolume != self.hypervolume or (job.n_front and not self.best):  # the front moved
            self.hypervolume = job.hypervolume
            top = self.store.pareto(job.id, limit=1)  # best first objective, from the maintained front
            self.best = f" | best {self.objective} {top[0].metrics[self.objective]:.4g}" if top else ""
        self.line = self._render(job, now)
        if self.tty:
            sys.stderr.write("\r\033[K" + self.line)
            sys.stderr.flush()
        elif now - self.last_print >= 5 or (self.total and job.n_trials >= self.total):
            self.last_print = now
            print(self.line, file=sys.stderr, flush=True)

    def _render(self, job, now: float) -> str:
        done = job.n_trials - self.start_trials
        rate = done / max(now - self.started, 1e-9)
        eta = ""
        if self.total and rate > 0:
            eta = f" | ETA {_duration((self.total - job.n_trials) / rate)}"
        elif self.wall:
            eta = f" | wall {_duration(max(self.wall - job.run_seconds, 0))} left"
        total = f"/{self.total}" if self.total else ""
        width = 20
        bar = ""
        if self.total:
            filled = int(width * min(job.n_trials / self.total, 1))
            bar = "[" + "#" * filled + "." * (width - filled) + "] "
        hv = f" | HV {job.hypervolume:.4g}" if job.hypervolume is not None else ""
        trained = f", {job.calibration['measured']} trained" if job.calibration.get("measured") else ""
        return (
            f"{bar}{job.n_trials}{total} trials: {job.n_complete} scored{trained}, {job.n_infeasible} infeasible, "
            f"{job.n_failed} failed, {job.n_duplicates} dup{self.best} | front {job.n_front}{hv}{eta}"
        )

    def close(self) -> None:
        if self.tty and self.line:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _counts(job) -> str:
    return (
        f"{job.n_complete} scored, {job.n_infeasible} infeasible, {job.n_failed} failed, "
        f"{job.n_duplicates} duplicates, {job.n_front} on the front"
    )


def _reference(job) -> str:
    return ", ".join(
        f"{k} {v:.4g}" if v is not None else f"{k} (not yet fixed)" for k, v in job.reference_point.items()
    )


# ---- queries ----------------------------------------------------------------------------------


def cmd_jobs(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.job is not None:
        job = store.get_job(args.job)
        history = store.hypervolume_history(job.id)
        if args.json:
            hv = [{"n_trials": n, "hypervolume": v, "front_size": f} for n, v, f in history]
            print(json.dumps({**job.to_dict(), "hypervolume_history": hv}, indent=2, default=str))
            return 0
        spec = job.spec
        print(f"job {job.id}: {job.name} [{job.status}]{' tags ' + ','.join(job.tags) if job.tags else ''}")
        print(f"  space {spec['space'] if isinstance(spec['space'], str) else '(inline/plug-in)'}, "
              f"input {'x'.join(map(str, spec['input_shape']))}, accelerator {_accelerator_text(spec['accelerator'])}, sampler {spec['sampler']}")  # fmt: skip
        print(f"  objectives {', '.join(spec['objectives'])}; constraints "
              f"{', '.join(f'{k}={v}' for k, v in spec['constraints'].items() if v not in (None, False)) or 'none'}")  # fmt: skip
        print(f"  trials {job.n_trials}/{job.budget_trials or '∞'}: {_counts(job)}")
        print(f"  ran {job.run_seconds:.0f} s, evaluations {job.eval_seconds:.0f} s of worker time")
        if job.error:
            print(f"  error: {job.error}")
        print(f"  hypervolume {job.hypervolume if job.hypervolume is not None else '-'} (reference {_reference(job)})")
        print(f"  accuracy: {_accuracy_units(job).strip().strip('()')}{_predictor_errors(job)}")
        if history:
            print()
            print(table(["after trials", "hypervolume", "front size"], [(n, f"{v:.6g}", f) for n, v, f in history]))
        return 0
    jobs = store.list_jobs(status=args.status)
    if args.json:
        print(json.dumps([j.to_dict() for j in jobs], indent=2, default=str))
        return 0
    if not jobs:
        print(f"no jobs in {store.safe_url}")
        return 0
    rows = [
        (j.id, j.name, _status(j), f"{j.n_trials}/{j.budget_trials or '∞'}", j.n_complete, j.n_infeasible,
         j.n_failed, j.n_front, f"{j.hypervolume:.4g}" if j.hypervolume is not None else "-", _age(j.created_at))
        for j in jobs
    ]  # fmt: skip
    print(table(["id", "name", "status", "trials", "scored", "infeasible", "failed", "front", "HV", "created"], rows))
    return 0


def _status(job) -> str:
    if job.status == "running":
        from nas.search import owner_alive

        if not owner_alive(job):
            return "running (dead: resume it)"
    if job.cancel_requested and job.status == "running":
        return "cancelling"
    return job.status


def _age(when: datetime) -> str:
    return _duration((datetime.now(UTC) - when).total_seconds()) + " ago"


def cmd_pareto(args: argparse.Namespace) -> int:
    from nas.store import parse_bounds

    store = _store(args)
    front = store.pareto(
        args.job,
        where=parse_bounds(args.where),
        sort=args.sort,
        descending=args.desc,
        limit=args.limit,
        offset=args.offset,
    )
    if args.format == "json":
        print(json.dumps([c.row() for c in front], indent=2))
    elif args.format == "csv":
        out = io.StringIO()
        rows = [c.row() for c in front]
        columns = [k for k in (rows[0] if rows else {"id": 0}) if k not in ("arch",)] + ["arch"]
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows({**r, "arch": json.dumps(r.get("arch"))} for r in rows)
        print(out.getvalue(), end="")
    elif front:
        print(_front_table(front, store.get_job(args.job).accuracy_kind))
    else:
        print(f"job {args.job}: no feasible candidate{' within ' + ', '.join(args.where) if args.where else ''} yet")
    return 0


def _front_table(front, kind: str) -> str:
    return table(
        ["id", "name", ACCURACY_HEADER[kind], "latency ms", "FPS", "energy mJ", "params M", "trial"],
        [
            (c.id, c.name, accuracy_cell(c.metrics, kind), _num(c.metrics["latency_ms"]),
             f"{c.metrics['throughput_fps']:.0f}", _num(c.metrics["energy_mj"]),
             f"{c.metrics['params'] / 1e6:.2f}", c.trial_number)
            for c in front
        ],
    )  # fmt: skip


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def _accuracy_units(job) -> str:
    if job.accuracy_kind == "score":
        return " (the proxy's ranking score, no units: the job trains nothing)"
    if job.accuracy_kind == "evaluator":
        return " (as the plug-in evaluator returns it)"
    r = job.calibration.get("recipe") or {}
    return (f" (top-1 on {r.get('dataset', '?')} at {r.get('resolution', '?')}px after {r.get('epochs', '?')} epochs"
            f" over {r.get('images', '?')} images)")  # fmt: skip


def _predictor_errors(job) -> str:
    """How the job's accuracy predictor did on candidates it had not seen measured."""
    c = job.calibration
    if job.accuracy_kind != "predicted" or not c.get("measured"):
        return ""
    text = f"; {c['measured']} candidates measured, the rest predicted"
    for label, key in (("predicted before training", "prospective_errors"), ("leave-one-out", "leave_one_out")):
        e = c.get(key)
        if e:
            tau = "n/a" if e["kendall_tau"] is None else f"{e['kendall_tau']:.2f}"
            text += (f"; {label}: MAE {e['mae']:.4f} over {e['n']}, Kendall tau {tau},"
                     f" {e['within_2sd']:.0%} within 2 std")  # fmt: skip
    return text


def cmd_show(args: argparse.Namespace) -> int:
    from nas._hw_cli import layer_table
    from nas.search import stored_report

    store = _store(args)
    job = store.get_job(args.job)
    c = store.candidate(args.job, args.candidate)
    report = stored_report(job, c.arch, c.hardware)
    if args.json:
        print(json.dumps({**c.to_dict(), "layers": report.to_dict()["layers"]}, indent=2, default=str))
        return 0
    m = c.metrics
    print(f"candidate {c.id} of job {job.id}: {c.name} ({c.arch_hash}), trial {c.trial_number}, {c.status}"
          f"{', on the Pareto front' if c.on_front else ''}")  # fmt: skip
    if c.failure:
        print(f"  {'why' if c.status == 'infeasible' else 'failure'}: {c.failure}")
    print(f"  accuracy     {accuracy_cell(m, job.accuracy_kind)}{_accuracy_units(job)}")
    print(f"  scores       {', '.join(f'{k} {v:.4g}' for k, v in c.scores.items()) or 'not scored'}")
    print(
        f"  latency      {m['latency_ms']:.4g} ms, {m['throughput_fps']:,.0f} FPS ({c.hardware.get('bound', '?')}-bound)"
    )
    print(f"  energy       {m['energy_mj']:.4g} mJ/frame, {m['power_w']:.3g} W")
    print(
        f"  size         {m['params'] / 1e6:.3f} M params, {m['weight_mib']:.2f} MiB weights, {m['macs'] / 1e9:.3f} GMACs"
    )
    print(f"  deployable   {'yes' if c.deployable else 'NO'}; IMC utilisation {m['utilisation']:.1%}")
    if c.eval_s is not None:
        print(f"  evaluated in {c.eval_s:.2f} s on {c.worker}")
    print(f"  arch         {c.arch}")
    print()
    print(layer_table(report, args.top))
    return 0


def _accelerator_text(accelerator: str | dict) -> str:
    if isinstance(accelerator, str):
        return accelerator
    knobs = ", ".join(f"{k} {v}" for k, v in accelerator["search"].items())
    return f"{accelerator['base']} (co-design over {knobs})"
