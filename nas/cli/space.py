"""`nas space list | sample | show`: the search spaces, their presets and sampled architectures."""

from __future__ import annotations

import argparse
import json
import time

import hwmodels
import search_spaces
from hwmodels import total_macs, total_params
from nas.cli.common import load_arch
from nas.cli.format import giga, millions, table
from search_spaces import ArchConfig


def add_parsers(sub: argparse._SubParsersAction) -> None:
    space = sub.add_parser("space", help="search spaces, presets and sampled architectures")
    cmds = space.add_subparsers(dest="space_cmd", required=True, metavar="{list,sample,show}")

    p = cmds.add_parser("list", help="the registered search spaces and presets")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser("sample", help="draw architectures from a space (Optuna's random sampler)")
    p.add_argument("space", help=f"a registered space ({', '.join(search_spaces.space_names())}) or a YAML path")
    p.add_argument("--n", type=int, default=5, help="how many (default 5)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    _shape_args(p)
    p.add_argument("--accelerator", default=None, help="accelerator to price on (default metis-like)")
    p.add_argument("--build", action="store_true", help="also build each as a torch model and check it")
    p.add_argument("--json", action="store_true", help="print a JSON list of ArchConfigs")
    p.set_defaults(func=cmd_sample)

    p = cmds.add_parser("show", help="one preset (or an ArchConfig JSON file): stages and totals")
    p.add_argument("preset", help="a preset name or the path of an ArchConfig JSON file")
    _shape_args(p)
    p.add_argument("--json", action="store_true", help="print the ArchConfig as JSON")
    p.set_defaults(func=cmd_show)


def _shape_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-size", type=int, default=224, help="deployment resolution (default 224)")
    p.add_argument("--in-chans", type=int, default=3, help="input channels (default 3)")
    p.add_argument("--num-classes", type=int, default=1000, help="classes (default 1000)")


def cmd_list(args: argparse.Namespace) -> int:
    spaces = [search_spaces.get_space(n) for n in search_spaces.space_names()]
    presets = {n: search_spaces.get_preset(n) for n in search_spaces.PRESETS.names()}
    priced = {n: search_spaces.lower(a, (3, 224, 224)) for n, a in presets.items()}
    if args.json:
        print(
            json.dumps(
                {
                    "spaces": [{"name": s.name, "size": s.size(), "description": s.description} for s in spaces],
                    "presets": [
                        {"name": n, "params": total_params(L), "macs": total_macs(L)} for n, L in priced.items()
                    ],
                },
                indent=2,
            )
        )
        return 0
    rows = [(s.name, f"{s.size():.1e}", _shorten(s.description)) for s in spaces]
    print(table(["space", "configs", "description"], rows))
    print()
    rows = [(n, presets[n].name, millions(total_params(L)), giga(total_macs(L))) for n, L in priced.items()]
    print(table(["preset", "architecture", "params (M)", "GMACs @224"], rows))
    return 0


def _shorten(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def cmd_sample(args: argparse.Namespace) -> int:
    space = search_spaces.get_space(args.space)
    archs = search_spaces.sample_archs(space, args.n, seed=args.seed)
    if args.json:
        print(json.dumps([a.model_dump(mode="json") for a in archs], indent=2))
        return 0
    shape = (args.in_chans, args.input_size, args.input_size)
    accelerator = hwmodels.load_accelerator(args.accelerator)
    headers = ["#", "architecture", "hash", "params (M)", f"GMACs @{args.input_size}", "FPS", "mJ/frame", "deployable"]
    if args.build:
        headers += ["built params", "forward (CPU)"]
    rows = []
    for i, arch in enumerate(archs):
        layers = search_spaces.lower(arch, shape, num_classes=args.num_classes)
        cost = hwmodels.estimate(layers, accelerator)
        row = [i, arch.name, arch.arch_hash, millions(total_params(layers)), giga(total_macs(layers)),
               f"{cost.throughput_fps:,.0f}", f"{cost.energy_mj:.3f}", "yes" if cost.deployable else "no"]  # fmt: skip
        if args.build:
            row += _build_and_check(arch, shape, args.num_classes, total_params(layers))
        rows.append(row)
    print(f"{len(archs)} architectures from space {space.name!r} (seed {args.seed}), "
          f"priced at {shape} on {accelerator.name}:")  # fmt: skip
    print(table(headers, rows))
    return 0


def _build_and_check(arch: ArchConfig, shape: tuple[int, int, int], num_classes: int, lowered_params: int) -> list:
    import torch

    model = search_spaces.build_model(arch, num_classes=num_classes, in_chans=shape[0], img_size=shape[1:])
    built = sum(p.numel() for p in model.parameters())
    if built != lowered_params:  # the lowering and the builder disagree: a bug, say so loudly
        raise RuntimeError(f"{arch.name}: built {built} parameters, lowering counted {lowered_params}")
    start = time.perf_counter()
    with torch.no_grad():
        out = model.eval()(torch.randn(1, *shape))
    ms = (time.perf_counter() - start) * 1e3
    if out.shape != (1, num_classes) or not torch.isfinite(out).all():
        raise RuntimeError(f"{arch.name}: forward gave shape {tuple(out.shape)} or non-finite values")
    return [millions(built), f"{ms:.0f} ms"]


def cmd_show(args: argparse.Namespace) -> int:
    arch = load_arch(args.preset)
    if args.json:
        print(arch.to_json(indent=2))
        return 0
    shape = (args.in_chans, args.input_size, args.input_size)
    layers = search_spaces.lower(arch, shape, num_classes=args.num_classes)
    print(f"{args.preset}: {arch.name}  (hash {arch.arch_hash})")
    print(
        f"stem {arch.stem} /{arch.stem_stride}, downsample {arch.downsample}, norm {arch.norm}, act {arch.act}, "
        f"head {arch.head}"
    )
    rows = []
    for i, stage in enumerate(arch.stages):
        in_stage = [layer for layer in layers if layer.stage == i]
        options = {
            k: v
            for k in ("kernel_size", "window_size", "head_dim", "token_mlp_ratio")
            if (v := getattr(stage, k)) is not None
        }
        rows.append(
            (
                i,
                stage.mixer,
                stage.depth,
                stage.dim,
                stage.mlp_ratio,
                " ".join(f"{k}={v}" for k, v in options.items()) or "-",
                millions(total_params(in_stage)),
                giga(total_macs(in_stage)),
            )
        )
    print(table(["stage", "mixer", "depth", "dim", "mlp_ratio", "options", "params (M)", "GMACs"], rows))
    print(
        f"total: {millions(total_params(layers))} M params, {giga(total_macs(layers))} GMACs at {shape}, "
        f"{len(layers)} layers"
    )
    return 0
