"""`nas pareto | show | export`: a job's results, from the local store (``--db``) or through a
service (``--server``), the two side by side."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

from nas.cli.common import WHERE_HELP, add_store_options, client, open_store, where_bounds
from nas.cli.format import accuracy_cell, accuracy_units, check_top, front_table, int8_cell, layer_table
from nas.export import DEFAULT_FORMATS, FORMATS
from nas.tasks import task_extras

FORMAT_CHOICES = ("table", "json", "csv")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="the job's Pareto-optimal feasible candidates")
    p.add_argument("job", type=int)
    p.add_argument("--where", action="append", help=WHERE_HELP)
    p.add_argument("--sort", help="a metric (default: the first objective, best first)")
    p.add_argument("--desc", action="store_true", default=None, help="sort descending")
    p.add_argument("--asc", dest="desc", action="store_false", help="sort ascending")
    p.add_argument("--limit", type=int, help="at most N rows (default: all; through --server 50)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--format", choices=FORMAT_CHOICES, default="table", help="default table (also with --server)")
    add_store_options(p)
    p.set_defaults(func=cmd_pareto)

    p = sub.add_parser("show", help="one candidate: metrics, scores and its per-layer hardware table")
    p.add_argument("job", type=int)
    p.add_argument("candidate", help="a candidate id, or its architecture hash (a unique prefix)")
    p.add_argument("--top", type=int, help="only the N slowest layers, the rest summed (0: none; default all)")
    p.add_argument("--json", action="store_true")
    add_store_options(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "export", help="export a candidate (default: the best on the front): ExportedProgram, state_dict, ONNX"
    )
    p.add_argument("job", type=int)
    p.add_argument("candidate", nargs="?", help="candidate id or arch hash prefix (default: the best under --where)")
    p.add_argument("-o", "--out", required=True, help="the folder to write (new or empty)")
    p.add_argument(
        "--format", default="default",
        help=f"default ({', '.join(DEFAULT_FORMATS)}), all (adds TorchScript, deprecated by torch), "
        f"or some of {', '.join(FORMATS)} (comma-separated)",
    )  # fmt: skip
    p.add_argument(
        "--where", help="bounds for choosing the best, e.g. 'latency_ms<1.25,energy_mj<3' (= only on counts)"
    )
    p.add_argument("--sort", help="the metric 'best' means (default: the job's first objective)")
    p.add_argument("--train-steps", type=int, default=0, help="train on the job's dataset first (default 0: no)")
    p.add_argument(
        "--allow-untrained", action="store_true",
        help="export a candidate the job never trained with initialised weights (its card says so); "
        "otherwise such an export is refused: run `nas train JOB --top N` or pass --train-steps",
    )  # fmt: skip
    p.add_argument(
        "--int8", action="store_true",
        help="also write model.int8.onnx: the INT8 model the job measured the candidate's INT8 accuracy on "
        "(runs in onnxruntime alone); the candidate must be measured (`nas train JOB --top N`)",
    )  # fmt: skip
    add_store_options(p)
    p.set_defaults(func=cmd_export)


# ---- pareto ---------------------------------------------------------------------------------------


def cmd_pareto(args: argparse.Namespace) -> int:
    bounds = where_bounds(args.where)  # checked here, for a service too
    if args.server:
        c = client(args)
        page = c.pareto(args.job, where=args.where, sort=args.sort, descending=args.desc, limit=args.limit or 50,
                        offset=args.offset)  # fmt: skip
        rows = page["items"]
        job = c.job(args.job) if args.format == "table" else {}
        kind, task = job.get("accuracy_kind", ""), job.get("task", "classification")
    else:
        store = open_store(args)
        front = store.pareto(args.job, where=bounds, sort=args.sort, descending=args.desc, limit=args.limit,
                             offset=args.offset)  # fmt: skip
        rows = [c.row() for c in front]
        record = store.get_job(args.job) if args.format == "table" else None
        kind, task = (record.accuracy_kind, record.task) if record else ("", "classification")
    _print_rows(rows, args, kind, task)
    return 0


def _print_rows(rows: Sequence[Mapping[str, Any]], args: argparse.Namespace, kind: str, task: str) -> None:
    if args.format == "json":
        print(json.dumps(list(rows), indent=2))
    elif args.format == "csv":
        out = io.StringIO()
        columns = [k for k in (rows[0] if rows else {"id": 0}) if k != "arch"] + ["arch"]
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows({**r, "arch": json.dumps(r.get("arch"))} for r in rows)
        print(out.getvalue(), end="")
    elif rows:
        print(front_table(rows, kind, task))
    else:
        print(f"job {args.job}: no feasible candidate{' within ' + ', '.join(args.where) if args.where else ''} yet")


# ---- show -----------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    check_top(args.top)
    if args.server:
        print(json.dumps(client(args).candidate(args.job, args.candidate), indent=2))
        return 0
    from nas.pricing import stored_report

    store = open_store(args)
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
    word = "score" if job.accuracy_kind == "score" else job.metric
    print(f"  {word:<12} {accuracy_cell(m, job.accuracy_kind)} ({accuracy_units(job)})")
    for name, value in task_extras(c.rungs).items():
        print(f"  {name:<12} {value:.4f} measured beside it")
    if job.accuracy_kind == "predicted" and job.task == "classification":
        drop = "" if m.get("int8_drop") is None else f", drop {m['int8_drop']:+.4f} from FP32"
        print(f"  INT8         {int8_cell(m)} (the same top-1 after INT8 quantization, as the chip computes{drop})")
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
    layers = layer_table(report, args.top)
    if layers:
        print()
        print(layers)
    return 0


# ---- export ---------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    if args.where:
        where_bounds(args.where)
    card = _export_remote(args) if args.server else _export_local(args)
    agreement = ", ".join(f"{f} {d:.1e}" for f, d in card["agreement_max_abs_diff"].items())
    print(f"exported candidate {card['candidate']['id']} ({card['name']}) of job {card['job']['id']} to {args.out}")
    print(f"  files: {', '.join(card['files'].values())}; max |diff| from the module: {agreement}")
    print(f"  weights: {card['weights']}")
    if card.get("task", "classification") != "classification":
        print(f"  task {card['task']}; on the host, not in the chip's price (model.onnx runs them after the network):")
        for step in card["host"]["on_host"]:
            print(f"    - {step}")
    if card.get("int8"):
        q = card["int8"]
        print(f"  INT8: {q['file']}, top-1 {q['accuracy']:.4f} measured (FP32 {q['fp32_accuracy']:.4f}), "
              f"scope {q['quantization'].get('scope')}, {q['quantization'].get('calibration_images')} calibration images")  # fmt: skip
    return 0


def _export_local(args: argparse.Namespace) -> dict[str, Any]:
    from nas.export import choose_candidate, export_stored

    store = open_store(args)
    job = store.get_job(args.job)
    c = choose_candidate(store, args.job, args.candidate, where=args.where, sort=args.sort)
    return export_stored(
        store, job, c, args.out, formats=args.format, train_steps=args.train_steps,
        allow_untrained=args.allow_untrained, int8=args.int8,
    ).card  # fmt: skip


def _export_remote(args: argparse.Namespace) -> dict[str, Any]:
    record = client(args).export(
        args.job, args.candidate, out=args.out, where=args.where, sort=args.sort, formats=args.format,
        train_steps=args.train_steps, allow_untrained=args.allow_untrained, int8=args.int8,
    )  # fmt: skip
    return record["card"]
