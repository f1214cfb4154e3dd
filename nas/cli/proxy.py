"""`nas proxy list | score`: the accuracy proxies, and a network scored with them."""

from __future__ import annotations

import argparse
import json

import search_spaces
from nas.cli.common import external_model, load_arch
from nas.cli.format import table

# torch, the data and the proxies load inside the commands: the rest of `nas` starts without torch.
FASHION_MNIST = "fashion-mnist"
DEFAULT_NAME = "default"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    proxy = sub.add_parser("proxy", help="accuracy proxies: list them, score a network")
    cmds = proxy.add_subparsers(dest="proxy_cmd", required=True, metavar="{list,score}")

    p = cmds.add_parser("list", help="the proxies, whether each needs data, and their papers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser("score", help="score an initialised network on one batch of real images")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--preset", help=f"a preset ({', '.join(search_spaces.PRESETS.names())})")
    what.add_argument("--arch", help="an ArchConfig JSON file (e.g. from `nas space show --json`)")
    what.add_argument("--model", help="a timm or torchvision model name")
    p.add_argument("--names", default=DEFAULT_NAME, help="comma-separated proxy names (see `nas proxy list`)")
    p.add_argument("--data", default=FASHION_MNIST, help=f"{FASHION_MNIST} or an ImageFolder directory")
    p.add_argument("--data-dir", help="where Fashion-MNIST's IDX files are (default: the usual places)")
    p.add_argument("--resolution", type=int, default=32, help="proxy resolution (default 32)")
    p.add_argument("--batch", type=int, default=64, help="images in the batch (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score)


def cmd_list(args: argparse.Namespace) -> int:
    from nas.proxies import PROXIES, needs_data
    from nas.proxies._default import load_default

    default = load_default()
    rows = [(name, "yes" if p.needs_data else "no (data-free)", p.citation) for name, p in PROXIES.items()]
    fitted = default.fitted_on
    rows.append((
        DEFAULT_NAME,
        "yes" if needs_data(default.components) else "no (data-free)",
        f"{'+'.join(default.components)}, chosen leave-one-benchmark-out; Spearman rho "
        + ", ".join(f"{b} {v}" for b, v in fitted.get("leave_one_benchmark_out_spearman", {}).items())
        + " (docs/proxy_ranking.md)",
    ))  # fmt: skip
    if args.json:
        print(json.dumps([{"name": n, "needs_data": d.startswith("yes"), "about": c} for n, d, c in rows], indent=2))
    else:
        print(table(["proxy", "needs data", "about"], rows))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    import torch

    from nas.data import load_dataset
    from nas.proxies import needs_data, score

    names = [n.strip() for n in args.names.split(",") if n.strip()]
    if args.resolution < 1 or args.batch < 1:
        raise ValueError("--resolution and --batch must be >= 1")
    if needs_data(names):
        data = load_dataset(args.data, split="train", data_dir=args.data_dir)
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(args.seed))[: args.batch]
        inputs, targets = data.batch(idx, resolution=args.resolution)
        num_classes, source = data.num_classes, f"{len(idx)} {data.name} images"
    else:
        inputs, targets = (args.batch, 3, args.resolution, args.resolution), None
        num_classes, source = 10, "no data (data-free proxies)"
    torch.manual_seed(args.seed)
    if args.model:
        model = external_model(args.model, 3, num_classes)
        name = args.model
    else:
        arch = load_arch(args.preset or args.arch)
        model = search_spaces.build_model(arch, num_classes=num_classes, img_size=args.resolution)
        name = args.preset or arch.name
    scores = score(model, inputs, targets, names=names, seed=args.seed)
    if args.json:
        print(json.dumps({"network": name, "resolution": args.resolution, "data": source, "scores": scores}, indent=2))
    else:
        print(f"{name} at {args.resolution}x{args.resolution}, {source}, seed {args.seed}")
        print(table(["proxy", "score"], [(n, f"{v:.6g}") for n, v in scores.items()]))
    return 0
