"""`nas hw estimate | list | compare | sweep`: price a network on an accelerator, list the
accelerators, re-price a job's front on other chips, price a network over a grid of chip
parameters; `compare` and `sweep` also through a service (``--server``), side by side."""

from __future__ import annotations

import argparse
import json
import sys

import hwmodels
import search_spaces
from hwmodels import CostReport, Layer
from nas.cli.common import DB_HELP, add_server_options, client, external_model, load_arch, open_store
from nas.cli.format import accuracy_header, check_top, giga, layer_table, millions, number, table


def add_parsers(sub: argparse._SubParsersAction) -> None:
    hw = sub.add_parser("hw", help="hardware cost of a network on an accelerator")
    cmds = hw.add_subparsers(dest="hw_cmd", required=True, metavar="{estimate,list,compare,sweep}")

    p = cmds.add_parser("estimate", help="latency, throughput, energy and a per-layer table")
    _network_options(p)
    p.add_argument("--mapping", default=None, help="a mapping policy name or YAML path (default: the chip's)")
    p.add_argument("--unsupported", choices=["dpu_emulate", "host_fallback", "infeasible"], help="override the policy")
    p.add_argument("--top", type=int, help="only the N slowest layers, the rest summed (0: none; default all)")
    p.add_argument("--json", action="store_true", help="machine-readable output with the per-layer table")
    p.set_defaults(func=cmd_estimate)

    p = cmds.add_parser("list", help="the shipped accelerators")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser("compare", help="re-price a job's front on other accelerators: how the front moves")
    p.add_argument("job", type=int, nargs="?", help="the job")
    p.add_argument("--job", dest="job_option", type=int, metavar="JOB", help="deprecated: give the job positionally")
    p.add_argument("--accelerators", help="comma-separated names or YAML paths (default: every shipped one)")
    p.add_argument("--all", action="store_true", help="re-price every complete candidate, not only the front")
    p.add_argument("--db", help=DB_HELP)
    add_server_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

    p = cmds.add_parser("sweep", help="price one network over a grid of chip parameters")
    _network_options(p)
    p.add_argument("--grid", help="a YAML file: {base: ACCELERATOR, grid: {knob: [values], ...}}")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=V1,V2",
                   help=f"a grid axis (repeatable); knobs: {', '.join(hwmodels.KNOBS)} or a ChipConfig path")  # fmt: skip
    add_server_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)


def _network_options(p: argparse.ArgumentParser) -> None:
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="a timm or torchvision model name (torchvision:NAME to force torchvision)")
    what.add_argument("--preset", help=f"a preset ({', '.join(search_spaces.PRESETS.names())})")
    what.add_argument("--arch", help="an ArchConfig JSON file (e.g. from `nas space show --json`)")
    p.add_argument("--accelerator", default=None, help="an accelerator name or YAML path (default metis-like)")
    p.add_argument("--mode", choices=list(hwmodels.MODES), default="throughput", help="default throughput")
    p.add_argument("--input-size", type=int, default=224, help="deployment resolution (default 224)")
    p.add_argument("--in-chans", type=int, default=3, help="input channels (default 3)")
    p.add_argument("--num-classes", type=int, default=1000, help="classes of a preset / arch (default 1000)")
    p.add_argument("--batch", type=int, default=1, help="frames per kernel launch (default 1)")


def network_layers(args: argparse.Namespace) -> tuple[str, list[Layer]]:
    shape = (args.in_chans, args.input_size, args.input_size)
    if args.model:
        return args.model, search_spaces.trace(external_model(args.model, args.in_chans), shape)
    arch = load_arch(args.preset or args.arch)
    return args.preset or arch.name, search_spaces.lower(arch, shape, num_classes=args.num_classes)


def cmd_estimate(args: argparse.Namespace) -> int:
    if args.batch < 1 or args.input_size < 1:
        raise ValueError("--batch and --input-size must be >= 1")
    check_top(args.top)
    acc = hwmodels.load_accelerator(args.accelerator, mapping=args.mapping, unsupported=args.unsupported)
    name, layers = network_layers(args)
    report = hwmodels.estimate(layers, acc, mode=args.mode, batch=args.batch)
    if args.json:
        print(json.dumps({"network": name, "input_shape": [args.in_chans, args.input_size, args.input_size],
                          **report.to_dict()}, indent=2))  # fmt: skip
        return 0
    print(_totals(name, report, args))
    layers = layer_table(report, args.top)
    if layers:
        print()
        print(layers)
    return 0


def _totals(name: str, r: CostReport, args: argparse.Namespace) -> str:
    mib = 1 << 20
    lines = [
        f"{name} on {r.accelerator} ({r.mode} mode, batch {r.batch}, input {args.in_chans}x{args.input_size}x{args.input_size})",
        f"  latency      {r.latency_ms:.3f} ms     throughput {r.throughput_fps:,.0f} FPS ({r.bound}-bound)",
        "  time split   " + ", ".join(f"{k} {v:.3f}" for k, v in r.time_split_ms.items()) + " ms",
        f"  energy       {r.energy_mj:.3f} mJ/frame  power {r.power_w:.2f} W",
        f"  work         {giga(r.macs)} GMACs, {millions(r.params)} M params, IMC utilisation {r.utilisation:.1%}",
        f"  weights      {r.weights_in['imc'] / mib:.2f} MiB in the arrays, {r.weights_in['l2'] / mib:.2f} MiB streamed "
        f"from L2, {r.weights_in['dram'] / mib:.2f} MiB from DRAM per frame",
        "  energy split " + ", ".join(f"{k} {v:.3f}" for k, v in r.energy_split_mj.items()) + " mJ",
        "  per unit     " + ", ".join(f"{u} {v['time_us']:.0f} us / {v['layers']:.0f} layers" for u, v in r.per_unit.items()),
        f"  deployable   {'yes' if r.deployable else 'NO'}; emulated on the DPU: {len(r.emulated_ops)} layers; "
        f"host fallback: {len(r.host_ops)}; infeasible: {len(r.infeasible_ops)}",
    ]  # fmt: skip
    return "\n".join(lines)


def cmd_list(args: argparse.Namespace) -> int:
    accs = [hwmodels.load_accelerator(n) for n in hwmodels.accelerator_names()]
    if args.json:
        print(json.dumps([{**a.chip.model_dump(), "mapping": a.mapping.name} for a in accs], indent=2))
        return 0
    rows = [
        (a.chip.name, a.chip.cores, f"{a.chip.imc.rows}x{a.chip.imc.cols}", f"{a.chip.clock_mhz:.0f}",
         f"{a.chip.memory.l2_bytes >> 20}", f"{a.chip.static_power_w:.1f}", a.mapping.name, a.chip.description)
        for a in accs
    ]  # fmt: skip
    print(table(["accelerator", "cores", "array", "MHz", "L2 MiB", "static W", "mapping", "description"], rows))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    job_id = _compare_job(args)
    names = [n.strip() for n in args.accelerators.split(",") if n.strip()] if args.accelerators else None
    if args.server:
        c = client(args)
        result = c.compare(job_id, names, every_candidate=args.all)
        job = c.job(job_id) if not args.json else {}
        kind, task = job.get("accuracy_kind", ""), job.get("task", "classification")
    else:
        from nas.whatif import compare_job

        store = open_store(args)
        result = compare_job(store, job_id, names, every_candidate=args.all)
        record = store.get_job(job_id)
        kind, task = record.accuracy_kind, record.task
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"job {result['job']}: its {result['candidates']} re-priced on {len(result['accelerators'])} accelerators "
          f"(objectives {', '.join(result['objectives'])})")  # fmt: skip
    print(table(
        ["accelerator", "area mm2", "feasible", "front", "kept from the job's front", "best latency ms",
         "best energy mJ", "best FPS"],
        [(a["accelerator"], number(a["area_mm2"]) if a["area_mm2"] else "-", a["feasible"], a["front"],
          a["kept_from_job_front"], *(number(a["best"][m]) if a["best"] else "-"
                                      for m in ("latency_ms", "energy_mj", "throughput_fps")))
         for a in result["accelerators"]],
    ))  # fmt: skip
    for a in result["accelerators"]:
        front = sorted((r for r in a["rows"] if r["on_front"]), key=lambda r: -(r["accuracy"] or 0))
        print(f"\nfront on {a['accelerator']}:")
        print(table(["id", "name", accuracy_header(kind, task), "latency ms", "FPS", "energy mJ", "bound"],
                    [(r["id"], r["name"], number(r["accuracy"]), number(r["latency_ms"]),
                      number(r["throughput_fps"]), number(r["energy_mj"]), r["bound"]) for r in front]))  # fmt: skip
    return 0


def _compare_job(args: argparse.Namespace) -> int:
    if args.job_option is not None:
        if args.job is not None and args.job != args.job_option:
            raise ValueError(f"nas hw compare: job {args.job} and --job {args.job_option}; give the job once")
        print(f"nas hw compare: --job is deprecated; give the job positionally: `nas hw compare {args.job_option}`",
              file=sys.stderr)  # fmt: skip
        return args.job_option
    if args.job is None:
        raise ValueError("nas hw compare: give the job, e.g. `nas hw compare 1`")
    return args.job


def cmd_sweep(args: argparse.Namespace) -> int:
    base_name, grid = args.accelerator, {}
    if args.grid:
        base_name, grid = _read_grid(args.grid, base_name)
    for axis in args.set:
        knob, _, values = axis.partition("=")
        if not values:
            raise ValueError(f"--set {axis!r}: write KNOB=V1,V2,... (e.g. cores=1,2,4)")
        grid[knob.strip()] = [_number(v) for v in values.split(",")]
    if not grid:
        raise ValueError("give the grid: --grid FILE.yaml or --set KNOB=V1,V2 (repeatable)")
    result = _sweep_remote(args, base_name, grid) if args.server else _sweep_local(args, base_name, grid)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = result["rows"]
    print(f"{result['network']} on {len(rows)} variants of {result['base']} ({args.mode} mode, batch {args.batch})")
    print(table(
        [*grid, "latency ms", "FPS", "energy mJ", "power W", "area mm2", "bound", "deployable"],
        [(*(_knob(r[k]) for k in grid), number(r["latency_ms"]), number(r["throughput_fps"]), number(r["energy_mj"]),
          number(r["power_w"]), number(r["area_mm2"]) if r["area_mm2"] else "-", r["bound"],
          "yes" if r["deployable"] else "NO") for r in rows],
    ))  # fmt: skip
    return 0


def _knob(value: object) -> str:
    """A grid value as written: 1, not the service's 1.0."""
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _sweep_local(args: argparse.Namespace, base_name: str | None, grid: dict) -> dict:
    from nas.whatif import sweep

    base = hwmodels.load_accelerator(base_name)
    name, layers = network_layers(args)
    rows = sweep(layers, base, grid, mode=args.mode, batch=args.batch)
    return {"network": name, "base": base.name, "grid": grid, "rows": rows}


def _sweep_remote(args: argparse.Namespace, base_name: str | None, grid: dict) -> dict:
    if args.model:
        raise ValueError("--server: a service sweeps presets and ArchConfigs only; give --preset or --arch, "
                         "or drop --server to trace --model here")  # fmt: skip
    arch = None if args.preset else load_arch(args.arch).model_dump(mode="json")
    options = {"base": base_name, "input_shape": [args.in_chans, args.input_size, args.input_size],
               "num_classes": args.num_classes, "mode": args.mode, "batch": args.batch}  # fmt: skip
    result = client(args).sweep(grid, preset=args.preset, arch=arch, **options)
    return {**result, "network": args.preset or result["network"]}  # named as locally: the preset's name


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"--set: {text!r} is not a number") from None


def _read_grid(path: str, base: str | None) -> tuple[str | None, dict]:
    import yaml

    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict) or not isinstance(data.get("grid"), dict) or set(data) - {"base", "grid"}:
        raise ValueError(f"{path}: write {{base: ACCELERATOR, grid: {{knob: [values], ...}}}}")
    return base or data.get("base"), dict(data["grid"])
