"""The README job as a co-design search (docs/examples/edge-classifier-codesign.yaml): run it, then
report its accuracy x latency x area front and what the front says about the chip.

    python benchmarks/codesign_example.py --db sqlite:///codesign.db --out docs/codesign_front.md

Runs the job if the database has none of that name yet (about as long as the README job), then
writes the report from the stored job: its front with each member's chip, which chips the front
and the feasible region use, and the front's best re-priced on the fixed default chip.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from hwmodels import area_mm2, estimate, load_accelerator
from nas.plugins import resolve_space
from nas.pricing import candidate_accelerator, chip_label
from nas.search import run, submit
from nas.spec import JobSpec, load_spec
from nas.store import Store

SPEC = Path(__file__).parents[1] / "docs" / "examples" / "edge-classifier-codesign.yaml"


def report(store: Store, job_id: int) -> str:
    job = store.get_job(job_id)
    spec = JobSpec.model_validate(job.spec)
    front = store.pareto(job_id, sort="accuracy", descending=True)
    everything = store.candidates(job_id)
    knobs = list(spec.chip_search)
    lines = [
        f"Job {job.id} `{job.name}`: {job.n_trials} trials, {len(everything)} distinct (network, chip) candidates, "
        f"{sum(c.status == 'complete' for c in everything)} feasible and scored, {len(front)} on the front; "
        f"{job.run_seconds:.0f} s of wall time. Chip knobs searched: "
        + ", ".join(f"`{k}` {list(v)}" for k, v in spec.chip_search.items())
        + f" over `{spec.accelerator_name}` ({_grid(spec)} chips).",
        "",
        "### The front (accuracy x latency x area)",
        "",
        "| candidate | network | chip | accuracy | latency ms | FPS | energy mJ | area mm2 |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in front:
        acc = c.metrics["accuracy"]
        std = c.metrics["accuracy_std"]
        if c.metrics["measured_accuracy"] is not None:
            shown = f"{acc:.4f} measured"
        else:
            shown = f"{acc:.4f}" if std is None else f"{acc:.4f} +- {std:.4f}"
        lines.append(
            f"| {c.id} | {c.name.split('@')[0]} | {chip_label(c.hardware['chip'])} | {shown} | "
            f"{c.metrics['latency_ms']:.3f} | {c.metrics['throughput_fps']:,.0f} | {c.metrics['energy_mj']:.3f} | "
            f"{c.metrics['area_mm2']:.1f} |"
        )
    lines += [
        "",
        "### Which chips",
        "",
        "| knob | value | on the front | feasible | priced |",
        "|---|---:|---:|---:|---:|",
    ]
    for knob in knobs:
        on_front = Counter(c.hardware["chip"][knob] for c in front)
        feasible = Counter(c.hardware["chip"][knob] for c in everything if c.status == "complete")
        priced = Counter(c.hardware["chip"][knob] for c in everything)
        for value in spec.chip_search[knob]:
            lines.append(f"| `{knob}` | {value} | {on_front[value]} | {feasible[value]} | {priced[value]} |")
    best = front[0] if front else None
    if best is not None:
        space = resolve_space(spec)
        layers = space.lower(space.arch_from_json(best.arch), spec.input_shape, spec.num_classes)
        fixed = load_accelerator(spec.accelerator_name)
        own = estimate(layers, candidate_accelerator(job, best.hardware), mode=spec.mode, batch=spec.batch)
        base = estimate(layers, fixed, mode=spec.mode, batch=spec.batch)
        lines += [
            "",
            "### The most accurate member on its own chip and on the fixed default",
            "",
            "| chip | area mm2 | latency ms | FPS | energy mJ |",
            "|---|---:|---:|---:|---:|",
            f"| {own.accelerator} | {area_mm2(candidate_accelerator(job, best.hardware).chip):.1f} | "
            f"{own.latency_ms:.3f} | {own.throughput_fps:,.0f} | {own.energy_mj:.3f} |",
            f"| {base.accelerator} (fixed) | {area_mm2(fixed.chip):.1f} | {base.latency_ms:.3f} | "
            f"{base.throughput_fps:,.0f} | {base.energy_mj:.3f} |",
        ]
    return "\n".join(lines) + "\n"


def _grid(spec: JobSpec) -> int:
    size = 1
    for choices in spec.chip_search.values():
        size *= len(choices)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite:///codesign.db")
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--out", type=Path, help="write the report here (markdown)")
    args = parser.parse_args()
    store = Store(args.db)
    spec = load_spec(args.spec)
    done = [j for j in store.list_jobs() if j.name == spec.name and j.status == "completed"]
    job = done[0] if done else run(store, submit(store, spec).id)
    text = report(store, job.id)
    print(text)
    if args.out:
        args.out.write_text(
            "# The README job as a co-design search: its front\n\n"
            f"Generated by `python benchmarks/codesign_example.py --out {args.out}` from "
            f"`{args.spec.relative_to(Path(__file__).parents[1]) if args.spec.is_absolute() else args.spec}`. "
            "What it says: docs/codesign.md.\n\n" + text
        )


if __name__ == "__main__":
    main()
