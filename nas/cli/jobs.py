"""`nas run | resume | train | cancel | jobs`: submit, run, continue, measure, stop and list search
jobs, each on the local store (``--db``) or through a service (``--server``), the two side by side.

The store, Optuna and Ray load inside the commands: `nas cancel` and `nas jobs` answer without
torch or Ray, while a job loads the machine.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from datetime import UTC, datetime
from typing import Any

from nas.cli.common import add_store_options, client, open_store
from nas.cli.format import (
    accuracy_units,
    constraint_advice,
    counts,
    duration,
    front_table,
    hypervolume_text,
    predictor_errors,
    table,
)
from nas.spec import SAMPLERS
from nas.status import JOB_STATUSES
from nas.tasks import spec_name


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
    add_store_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--top", type=int, default=10, help="Pareto candidates to print at the end (default 10)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="continue a job that was interrupted, killed or cancelled")
    p.add_argument("job", type=int)
    add_store_options(p)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--top", type=int, default=10)
    p.set_defaults(func=cmd_resume)

    p = sub.add_parser("train", help="measure the front's best: train them with the job's recipe, keep their weights")
    p.add_argument("job", type=int)
    p.add_argument("--top", type=int, default=3, help="how many of the front's best by accuracy (default 3)")
    add_store_options(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("cancel", help="stop a job; it keeps every result so far and can be resumed")
    p.add_argument("job", type=int)
    add_store_options(p)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("jobs", help="list the jobs, or show one with its hypervolume history")
    p.add_argument("job", type=int, nargs="?")
    p.add_argument("--status", choices=JOB_STATUSES, help="only jobs in this status")
    p.add_argument("--json", action="store_true")
    add_store_options(p)
    p.set_defaults(func=cmd_jobs)


def _print_json(data: Any) -> int:
    print(json.dumps(data, indent=2, default=str))
    return 0


# ---- run ----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from nas.spec import load_spec

    spec = load_spec(args.spec)  # validated here first, also before a service sees it: errors name the file
    if args.server:
        return _run_remote(args, spec)
    from nas.jobs import submit
    from nas.limits import Limits

    overrides: dict[str, Any] = {"name": args.name, "sampler": args.sampler, "seed": args.seed}
    if args.trials is not None:
        overrides["budget"] = {**spec.budget.model_dump(), "trials": args.trials}
    if args.workers is not None:
        overrides["workers"] = {**spec.workers.model_dump(), "count": args.workers}
    if any(v is not None for v in overrides.values()):
        spec = load_spec(spec.model_dump(mode="json"), **overrides)
    store = open_store(args, create=True)  # the one command that may start a database
    job = submit(store, spec, limits=Limits.local(args.max_workers))
    print(f"job {job.id} ({job.name}) in {store.safe_url}: {spec.sampler} over {spec.budget.trials or '∞'} trials")
    return _run(store, job.id, args, resume=False)


def _run_remote(args: argparse.Namespace, spec) -> int:
    overrides = {"name": args.name, "sampler": args.sampler, "seed": args.seed}
    data = {**spec.model_dump(mode="json"), **{k: v for k, v in overrides.items() if v is not None}}
    if args.trials is not None:
        data["budget"] = {**data["budget"], "trials": args.trials}
    if args.workers is not None:
        data["workers"] = {**data["workers"], "count": args.workers}
    out = client(args).submit(data)
    print(f"job {out['id']} ({out['name']}) submitted to {args.server}: {out['status']}", file=sys.stderr)
    return _print_json(out)


def _run(store, job_id: int, args: argparse.Namespace, *, resume: bool, trainings: int | None = None) -> int:
    from nas.cli.progress import ProgressBar
    from nas.search import run

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)  # a clean stop records the job as interrupted
    bar = None if args.quiet else ProgressBar(store, store.get_job(job_id), trainings=trainings)
    try:
        job = run(store, job_id, progress=bar, resume=resume)
    except KeyboardInterrupt:
        if bar:
            bar.close()
        print(f"interrupted; `nas resume {job_id}` continues the job", file=sys.stderr)
        return 130
    if bar:
        bar.close()
    print(f"job {job.id}: {job.status} after {job.n_trials} trials in {job.run_seconds:.0f} s; {counts(job)}")
    print(hypervolume_text(job))
    print(f"{job.accuracy_label}: {accuracy_units(job)}{predictor_errors(job)}")
    front = store.pareto(job_id, limit=args.top)
    if front:
        print(
            f"\nPareto front ({job.n_front} candidates{'; the first ' + str(args.top) if job.n_front > args.top else ''}):"
        )
        print(front_table([c.row() for c in front], job.accuracy_kind, job.task))
        print(f"\n`nas pareto {job_id}` filters and sorts it; `nas show {job_id} ID` details one candidate")
    for line in constraint_advice(job):
        print(line)
    return 0 if job.status in ("completed", "cancelled") else 1


# ---- resume ---------------------------------------------------------------------------------------


def cmd_resume(args: argparse.Namespace) -> int:
    if args.server:
        return _print_json(client(args).resume(args.job))
    from nas.jobs import JobStateError, check_can_run

    store = open_store(args)
    job = store.get_job(args.job)
    try:
        check_can_run(job, resume=True)  # a job that cannot continue says why before anything starts
    except JobStateError as err:
        if job.status != "completed":
            raise
        more = f"; `nas train {job.id} --top N` measures more of its front" if job.accuracy_kind == "predicted" else ""
        raise JobStateError(
            f"{err}: nothing to resume; search further with a new job and a larger budget "
            f"(`nas run SPEC.yaml --trials N`){more}"
        ) from None
    print(f"job {job.id} ({job.name}): resuming at {job.n_trials} trials")
    return _run(store, job.id, args, resume=True)


# ---- train ----------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    if args.server:
        return _print_json(client(args).train(args.job, args.top))
    store = open_store(args)
    job = store.get_job(args.job)
    from nas.jobs import check_can_train

    check_can_train(job)
    store.request_training(job.id, args.top)
    print(f"job {job.id} ({job.name}): measuring the front's best {args.top}")
    return _run(store, job.id, argparse.Namespace(quiet=args.quiet, top=10), resume=True, trainings=args.top)


# ---- cancel ---------------------------------------------------------------------------------------


def cmd_cancel(args: argparse.Namespace) -> int:
    if args.server:
        return _print_json(client(args).cancel(args.job))
    from nas.jobs import cancel

    job = cancel(open_store(args), args.job)
    if job.status == "completed":
        print(f"job {job.id} has already completed")
    elif job.status == "running":
        print(f"job {job.id} will stop within seconds; `nas resume {job.id}` continues it")
    else:
        print(f"job {job.id} is {job.status}; `nas resume {job.id}` continues it")
    return 0


# ---- jobs -----------------------------------------------------------------------------------------


def cmd_jobs(args: argparse.Namespace) -> int:
    if args.server:
        c = client(args)
        return _print_json(c.job(args.job) if args.job is not None else c.jobs(status=args.status))
    store = open_store(args)
    if args.job is not None:
        return _job_detail(store, args)
    jobs = store.list_jobs(status=args.status)
    if args.json:
        return _print_json([j.to_dict() for j in jobs])
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


def _job_detail(store, args: argparse.Namespace) -> int:
    job = store.get_job(args.job)
    history = store.hypervolume_history(job.id)
    if args.json:
        hv = [{"n_trials": n, "hypervolume": v, "front_size": f} for n, v, f in history]
        return _print_json({**job.to_dict(), "hypervolume_history": hv})
    spec = job.spec
    print(f"job {job.id}: {job.name} [{job.status}]{' tags ' + ','.join(job.tags) if job.tags else ''}")
    task = "" if job.task == "classification" else f"task {job.task}, "  # classification's line stays as it was
    print(f"  {task}space {spec['space'] if isinstance(spec['space'], str) else '(inline/plug-in)'}, "
          f"input {'x'.join(map(str, spec['input_shape']))}, accelerator {_accelerator_text(spec['accelerator'])}, sampler {spec['sampler']}")  # fmt: skip
    named = {k: v for k, v in spec["constraints"].items() if v not in (None, False)}
    print(f"  objectives {', '.join(spec_name(o, job.task) for o in spec['objectives'])}; constraints "
          f"{', '.join(f'{spec_name(k, job.task)}={v}' for k, v in named.items()) or 'none'}")  # fmt: skip
    print(f"  trials {job.n_trials}/{job.budget_trials or '∞'}: {counts(job)}")
    print(f"  ran {job.run_seconds:.0f} s, evaluations {job.eval_seconds:.0f} s of worker time")
    if job.error:
        print(f"  error: {job.error}")
    for line in constraint_advice(job):
        print(f"  {line}")
    print(f"  {hypervolume_text(job)}")
    print(f"  {job.accuracy_label}: {accuracy_units(job)}{predictor_errors(job)}")
    if history:
        print()
        print(table(["after trials", "hypervolume", "front size"], [(n, f"{v:.6g}", f) for n, v, f in history]))
    return 0


def _status(job) -> str:
    if job.status == "running":
        from nas.liveness import owner_alive

        if not owner_alive(job):
            return "running (dead: resume it)"
    if job.cancel_requested and job.status == "running":
        return "cancelling"
    return job.status


def _age(when: datetime) -> str:
    return duration((datetime.now(UTC) - when).total_seconds()) + " ago"


def _accelerator_text(accelerator: str | dict) -> str:
    if isinstance(accelerator, str):
        return accelerator
    knobs = ", ".join(f"{k} {v}" for k, v in accelerator["search"].items())
    return f"{accelerator['base']} (co-design over {knobs})"
