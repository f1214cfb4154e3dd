"""Training throughput of the README job's candidates on the CPU and, where CUDA is, on a GPU.

    python benchmarks/gpu_training.py [--networks 13] [--epochs 3] [--out docs/gpu_training.md]
    python benchmarks/gpu_training.py --db sqlite:///nas.db [--job N]   # a finished job's measured candidates

Each network is trained as the job trains it (``nas.training``: its recipe, its data, the same
``Trainer``): in float32 on the CPU, and in bfloat16 autocast with channels-last tensors on the GPU.
Throughput is training images per second over every step after the first ``WARMUP`` (allocator,
cuDNN's algorithm search), the host's batch preparation included (a worker's real cost). Each run
is then scored on the job's test images (Fashion-MNIST test top-1; with ``--epochs`` under the
recipe's 3 it is a short run's accuracy, shown to see that mixed precision trains as well, not the
job's stated accuracy). The networks: the measured candidates of a finished job (``--db``; newest
job named like the README job unless ``--job``), else the first ``--networks`` random networks of
the README job's space that meet its constraints (``benchmarks/end_to_end.py``'s pool, seed 1).
Prints a line per network and device, then the medians; ``--out`` writes them as markdown with the
machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from end_to_end import README_JOB, feasible_pool

from nas.proxies._training import Trainer, evaluate
from nas.spec import JobSpec, load_spec
from nas.training import measurement_sets, trainer_recipe
from search_spaces import ArchConfig, build_model

WARMUP = 5  # steps not timed


def networks_of(args: argparse.Namespace, spec: JobSpec) -> tuple[JobSpec, list[ArchConfig], str]:
    """(the job's spec, its networks, where they came from)."""
    if not args.db:
        pool = feasible_pool(spec, n=args.networks, seed=1)
        return spec, [arch for arch, _ in pool], f"the first {len(pool)} random feasible networks (seed 1)"
    from nas.store import Store

    store = Store(args.db)
    if args.job is None:
        named = [j for j in store.list_jobs(status="completed", limit=None) if j.name == spec.name]
        if not named:
            sys.exit(f"--db: no completed job named {spec.name!r}; give --job N")
        args.job = max(j.id for j in named)
    job = store.get_job(args.job)
    measured = [
        ArchConfig.from_json(c.arch)
        for c in store.candidates(job.id, status="complete")
        if c.metrics.get("measured_accuracy") is not None
    ]
    if not measured:
        sys.exit(f"--db: job {job.id} has no measured candidates")
    return JobSpec.model_validate(job.spec), measured[: args.networks], f"the measured candidates of job {job.id}"


def run_one(spec: JobSpec, arch: ArchConfig, data: tuple, device: str) -> dict[str, float]:
    """Train ``arch`` under the job's recipe on ``device``; images/s after the warm-up, test accuracy."""
    train_set, test_set = data
    recipe = trainer_recipe(spec.evaluator, spec.seed)
    torch.manual_seed(spec.seed)
    model = build_model(arch, num_classes=spec.num_classes, img_size=recipe.resolution).to(device)
    trainer = Trainer(model, train_set, recipe)
    warm = min(WARMUP, recipe.steps - 1)
    trainer.advance(warm)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    trainer.advance(recipe.steps - warm)
    sync()
    seconds = time.perf_counter() - start
    return {
        "images_per_s": (recipe.steps - warm) * recipe.batch_size / seconds,
        "accuracy": evaluate(model, test_set, resolution=recipe.resolution),
        "params": sum(p.numel() for p in model.parameters()),
    }


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]  # fmt: skip
        cpu = names[0] if names else cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    load = f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs" if hasattr(os, "getloadavg") else "unknown"
    return {"cpu": cpu, "threads": str(torch.get_num_threads()), "gpu": gpu, "torch": torch.__version__, "load": load}


def speedup(row: dict) -> float:
    return row["cuda"]["images_per_s"] / row["cpu"]["images_per_s"]


def markdown(rows: list[dict], devices: list[str], where: dict[str, str], source: str, spec: JobSpec,
             command: str) -> str:  # fmt: skip
    r = spec.evaluator.train.recipe
    lines = [
        "# Training throughput: CPU and GPU workers",
        "",
        f"Printed by `{command}`.",
        "",
        f"Machine: CPU {where['cpu']}, {where['threads']} torch threads; GPU: {where['gpu']}; torch {where['torch']}; "
        f"load average {where['load']} as it started (a shared machine's CPU figures are lower than an idle one's).",
        "",
        f"Networks: {source} of the README job (docs/examples/edge-classifier.yaml), trained with its recipe "
        f"({r.epochs:g} epoch{'' if r.epochs == 1 else 's'} over {r.images} Fashion-MNIST images at {spec.evaluator.resolution}x"
        f"{spec.evaluator.resolution}, batch {r.batch_size}) by the job's own `Trainer`: float32 on the CPU, "
        "bfloat16 autocast and channels-last on CUDA. Images/s: training images per second after "
        f"{WARMUP} warm-up steps, the host's batch preparation included. Accuracy: Fashion-MNIST test "
        "top-1 (0-1) after this run.",
        "",
    ]
    if "cuda" not in devices:
        lines += ["**No CUDA device was available where this ran**, so there is no GPU column: run the same "
                  "command on a GPU machine to measure one.", ""]  # fmt: skip
    head = ["network", "params"] + [f"{d} {k}" for d in devices for k in ("images/s", "accuracy")]
    head += ["GPU speed-up"] if "cuda" in devices else []
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [f"`{row['name']}`", f"{row['params'] / 1e6:.2f} M"]
        for d in devices:
            cells += [f"{row[d]['images_per_s']:,.0f}", f"{row[d]['accuracy']:.4f}"]
        cells += [f"{speedup(row):.1f}x"] if "cuda" in devices else []
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**median**", ""]
    for d in devices:
        cells += [f"**{statistics.median(row[d]['images_per_s'] for row in rows):,.0f}**", ""]
    cells += [f"**{statistics.median(speedup(row) for row in rows):.1f}x**"] if "cuda" in devices else []
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="a store holding a finished README job: train its measured candidates")
    parser.add_argument("--job", type=int, help="with --db: the job (default: the newest named like the README job)")
    parser.add_argument("--networks", type=int, default=13, help="networks to train (default 13)")
    parser.add_argument("--epochs", type=float, help="epochs per network (default: the recipe's)")
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU even where CUDA is")
    parser.add_argument("--out", type=Path, help="write the figures as markdown here")
    args = parser.parse_args(argv)
    spec, archs, source = networks_of(args, load_spec(README_JOB))
    if args.epochs is not None:
        data = spec.model_dump(mode="json")
        data["evaluator"]["train"]["recipe"]["epochs"] = args.epochs
        spec = JobSpec.model_validate(data)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.cpu_only else [])
    where = machine()
    print(f"{where['cpu']} ({where['threads']} threads, load {where['load']}); GPU: {where['gpu']}", flush=True)
    data = measurement_sets(spec)
    rows = []
    for arch in archs:
        row = {"name": arch.name}
        for device in devices:
            row[device] = run_one(spec, arch, data, device)
            row["params"] = row[device]["params"]
            print(f"{arch.name[:48]:48s} {device:4s} {row[device]['images_per_s']:9,.0f} images/s  "
                  f"accuracy {row[device]['accuracy']:.4f}", flush=True)  # fmt: skip
        rows.append(row)
    for device in devices:
        print(f"median {device}: {statistics.median(r[device]['images_per_s'] for r in rows):,.0f} images/s")
    if args.out:
        command = "python benchmarks/gpu_training.py " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.write_text(markdown(rows, devices, where, source, spec, command.strip()))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
