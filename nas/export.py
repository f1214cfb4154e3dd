"""Export of a candidate as a deployable PyTorch model.

One folder (and a zip of it) per export:

- ``arch.json``: the architecture, which ``search_spaces.build_model`` builds;
- ``state_dict.pt``: the weights the built module loads: a measured candidate's trained weights
  (trained by its job under the job's recipe, at the recipe's resolution: the export's input shape
  is then that resolution), else initialised ones (or, with ``train_steps``, briefly trained);
- ``model.torchscript.pt``, ``model.onnx`` and ``model.pt2``: the same network traced at the
  deployment input shape, with a free batch dimension; they load and run without this package
  (``torch.jit.load``, ``onnxruntime``, ``torch.export.load``). ``model.pt2`` is torch.export's
  ExportedProgram, the format PyTorch now recommends over TorchScript (deprecated since 2.9);
- ``model_card.json`` and ``README.md``: metrics, hardware totals, constraints, the job, versions,
  and the formats' agreement on one seeded input, measured here.

Formats are checked as they are written: the ONNX graph passes ``onnx.checker`` and runs in
onnxruntime, and every format's output is compared with the module's. A failed check leaves nothing
behind. ``check_request`` refuses what cannot be exported before anything is built; the service
runs its exports in processes of their own (``nas._export_run``).
"""

from __future__ import annotations

import contextlib
import io
import json
import platform
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from nas.limits import Limits
from nas.plugins import resolve_space
from nas.spec import FieldError, JobSpec, PluginRef
from nas.store import CandidateRecord, JobRecord, NotFoundError, Store, parse_bounds

FORMATS = ("state_dict", "torchscript", "onnx", "exported_program")
FILES = {
    "state_dict": "state_dict.pt",
    "torchscript": "model.torchscript.pt",
    "onnx": "model.onnx",
    "exported_program": "model.pt2",
}
ONNX_OPSET = 17
AGREEMENT_TOLERANCE = 1e-3  # max |difference| of logits between formats on the check input
CHECK_BATCH = 2  # the check input's batch: not the traced one's, so a batch size baked into a graph shows


class ExportError(FieldError):
    """The candidate cannot be exported as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Exported:
    path: Path  # the folder
    files: dict[str, str]  # what -> file name in the folder
    card: dict[str, Any]


def parse_formats(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """'all' | a format | a comma-separated list (or a list) -> formats, in FORMATS order."""
    items = [p.strip() for chunk in ([value] if isinstance(value, str) else value) for p in chunk.split(",")]
    items = [p for p in items if p]
    if not items or "all" in items:
        return FORMATS
    unknown = [p for p in items if p not in FORMATS]
    if unknown:
        raise ExportError("formats", f"unknown {', '.join(unknown)}; choose all or among {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in items)


def check_request(
    spec: JobSpec,
    candidate: CandidateRecord,
    *,
    formats: str | tuple[str, ...] = FORMATS,
    train_steps: int = 0,
    train_batch: int = 32,
    trained: bool = False,
    limits: Limits | None = None,
) -> tuple[str, ...]:
    """What an export can be refused for before anything is built or imported (``ExportError``
    naming the field): unknown formats, a candidate that is not complete, training one that has
    its job's trained weights (``trained``) or one whose job has a plug-in evaluator, and, under
    ``limits``, a training batch over ``max_batch_pixels``. Returns the formats."""
    formats = parse_formats(formats)
    if candidate.status != "complete":
        raise ExportError(
            "candidate",
            f"candidate {candidate.id} is {candidate.status} ({candidate.failure or 'not scored'}); "
            "export a complete one, e.g. from the Pareto front",
        )
    if train_steps < 0:
        raise ExportError("train_steps", f"must be >= 0, got {train_steps}")
    if train_steps and trained:
        raise ExportError(
            "train_steps", "the candidate has trained weights from its job; export it without train_steps"
        )
    if train_steps and isinstance(spec.evaluator, PluginRef):
        raise ExportError(
            "train_steps", "the job's evaluator is a plug-in; training needs the proxy evaluator's dataset"
        )
    pixels = train_batch * spec.input_shape[1] * spec.input_shape[2]  # what one training step holds
    if train_steps and limits is not None and pixels > limits.max_batch_pixels:
        raise ExportError(
            "train_batch",
            f"{train_batch} images of {spec.input_shape[1]}x{spec.input_shape[2]} are {pixels:g} pixels, over the "
            f"limit of {limits.max_batch_pixels:g} (max_batch_pixels, GET /limits); train with a smaller batch",
        )
    return formats


def export_candidate(
    job: JobRecord,
    candidate: CandidateRecord,
    out: str | Path,
    *,
    formats: str | tuple[str, ...] = FORMATS,
    train_steps: int = 0,
    train_batch: int = 32,
    weights: tuple[bytes, dict[str, Any]] | None = None,
) -> Exported:
    """Write the export of ``candidate`` to the folder ``out`` (new or empty). ``weights``: the
    candidate's trained state_dict and recipe (``Store.weights``), shipped instead of initialised ones."""
    import torch

    spec = JobSpec.model_validate(job.spec)
    formats = check_request(
        spec, candidate, formats=formats, train_steps=train_steps, train_batch=train_batch, trained=weights is not None
    )
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError("output", f"{out} exists and is not an empty folder; give a new one")
    space = resolve_space(spec)
    if not hasattr(space, "build"):
        raise ExportError(
            f"space {space.name!r} cannot build a torch module; give the plug-in a "
            "build(arch, input_shape, num_classes) method to export its networks"
        )
    arch = space.arch_from_json(candidate.arch)
    input_shape = tuple(spec.input_shape)
    if weights is not None:  # built where it was trained and measured
        recipe = weights[1]
        input_shape = (spec.input_shape[0], recipe["resolution"], recipe["resolution"])
    torch.manual_seed(spec.seed)
    model = space.build(arch, input_shape, spec.num_classes)
    if weights is not None:
        model.load_state_dict(torch.load(io.BytesIO(weights[0]), weights_only=True))
        trained = {**weights[1], "measured_accuracy": candidate.metrics.get("measured_accuracy")}
    else:
        trained = _train(model, spec, train_steps, train_batch) if train_steps else None
    spec = spec.model_copy(update={"input_shape": input_shape})
    model.eval()

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))  # beside out: the rename is atomic
    try:
        files = {"arch": "arch.json"}
        (tmp / "arch.json").write_text(arch.to_json() + "\n")
        check = torch.randn(CHECK_BATCH, *spec.input_shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            reference = model(check)
        agreement = {}
        for fmt in formats:
            files[fmt] = FILES[fmt]
            agreement[fmt] = _WRITERS[fmt](model, tmp / FILES[fmt], spec, check, reference)
        bad = {f: d for f, d in agreement.items() if not d <= AGREEMENT_TOLERANCE}
        if bad:
            raise ExportError(f"formats disagree with the module beyond {AGREEMENT_TOLERANCE}: {bad}")
        files["model_card"] = "model_card.json"
        card = _card(job, candidate, spec, files, agreement, trained)
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
        (tmp / "README.md").write_text(_readme(card))
        if out.exists():
            out.rmdir()
        tmp.chmod(0o755)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Exported(out, files, card)


def export_stored(
    store: Store, job: JobRecord, candidate: CandidateRecord, out: str | Path, **options: Any
) -> Exported:
    """``export_candidate`` of a stored candidate, with its trained weights when the job measured it."""
    return export_candidate(job, candidate, out, weights=store.weights(job.id, candidate.id), **options)


def choose_candidate(
    store: Store, job_id: int, candidate: int | str | None = None, *, where: str | None = None, sort: str | None = None
) -> CandidateRecord:
    """The candidate to export: the one named (id or hash prefix), else the front's best under
    ``where`` on ``sort`` (default: the job's first objective)."""
    if candidate is not None:
        return store.candidate(job_id, candidate)
    front = store.pareto(job_id, where=parse_bounds(where), sort=sort, limit=1)
    if not front:
        raise NotFoundError(
            f"job {job_id} has no feasible candidate{f' within {where}' if where else ''} to export yet"
        )
    return front[0]


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """``folder`` as a zip whose entries sit under the folder's name."""
    base = zip_path.with_suffix("")
    return Path(shutil.make_archive(str(base), "zip", root_dir=folder.parent, base_dir=folder.name))


def _train(model: Any, spec: JobSpec, steps: int, batch: int) -> dict[str, Any]:
    """Train on the job's dataset at the deployment resolution; the held-out accuracy goes to the card."""
    from nas.data import load_dataset
    from nas.proxies._training import Trainer, TrainRecipe

    data = load_dataset(spec.evaluator.data, split="train", data_dir=spec.evaluator.data_dir)
    if data.num_classes != spec.num_classes:
        raise ExportError(
            "train_steps",
            f"{spec.evaluator.data} has {data.num_classes} classes, the job's networks "
            f"{spec.num_classes}; export without training",
        )
    recipe = TrainRecipe(steps=steps, batch_size=batch, resolution=spec.input_shape[-1], held_out=1000, seed=spec.seed)
    train_set, held_out = data.split(recipe.held_out, seed=recipe.seed)
    trainer = Trainer(model, train_set, recipe)
    trainer.advance(steps)
    return {
        "dataset": spec.evaluator.data,
        "steps": steps,
        "batch_size": batch,
        "resolution": recipe.resolution,
        "held_out_images": len(held_out),
        "held_out_accuracy": trainer.accuracy(held_out),
    }


def _max_diff(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def _write_state_dict(model: Any, path: Path, spec: JobSpec, check: Any, reference: Any) -> float:
    import copy

    import torch

    torch.save(model.state_dict(), path)
    reloaded = copy.deepcopy(model)
    for p in reloaded.parameters():  # the reloaded weights, not the copied ones, must produce the output
        p.data.zero_()
    reloaded.load_state_dict(torch.load(path, weights_only=True))
    with torch.no_grad():
        return _max_diff(reloaded(check), reference)


def _write_torchscript(model: Any, path: Path, spec: JobSpec, check: Any, reference: Any) -> float:
    import torch

    example = torch.zeros(1, *spec.input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export, still the portable format
        traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        return _max_diff(loaded(check), reference)


def _write_onnx(model: Any, path: Path, spec: JobSpec, check: Any, reference: Any) -> float:
    import onnx
    import onnxruntime as ort
    import torch

    example = torch.zeros(1, *spec.input_shape)
    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,  # the TorchScript-based exporter: no extra dependencies, a plain opset-17 graph
            opset_version=ONNX_OPSET,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        )
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError("onnx", f"the exported graph fails the ONNX checker: {err}") from err
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["logits"], {"image": check.numpy()})
    return _max_diff(out, reference)


def _write_exported_program(model: Any, path: Path, spec: JobSpec, check: Any, reference: Any) -> float:
    import torch

    example = torch.zeros(2, *spec.input_shape)  # not 1: torch.export specialises a size-1 dimension
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, str(path))
        loaded = torch.export.load(str(path)).module()
    with torch.no_grad():
        return _max_diff(loaded(check), reference)


_WRITERS = {
    "state_dict": _write_state_dict,
    "torchscript": _write_torchscript,
    "onnx": _write_onnx,
    "exported_program": _write_exported_program,
}


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("imc-nas", "torch", "timm", "onnx", "onnxruntime", "optuna"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def _card(
    job: JobRecord,
    c: CandidateRecord,
    spec: JobSpec,
    files: dict[str, str],
    agreement: dict[str, float],
    trained: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "name": c.name,
        "arch_hash": c.arch_hash,
        "exported_at": datetime.now(UTC).isoformat(),
        "job": {"id": job.id, "name": job.name, "tags": list(job.tags), "objectives": spec.objectives},
        "candidate": {"id": c.id, "trial_number": c.trial_number, "on_front": c.on_front},
        "input": {"shape": ["batch", *spec.input_shape], "name": "image", "dtype": "float32"},
        "output": {"shape": ["batch", spec.num_classes], "name": "logits"},
        "build": {
            "space": spec.space.plugin
            if isinstance(spec.space, PluginRef)
            else getattr(spec.space, "name", spec.space),
            "num_classes": spec.num_classes,
            "input_shape": list(spec.input_shape),
        },
        "metrics": c.metrics,
        "accuracy": _accuracy(job, c),
        "scores": c.scores,
        "deployable": c.deployable,
        "hardware": c.hardware,
        "accelerator": _accelerator(job, spec, c),
        "priced_at_input_shape": list(job.spec["input_shape"]),
        "constraints": spec.constraints.model_dump(mode="json", exclude_none=True),
        "weights": _weights_text(trained, spec.seed),
        "training": trained,
        "files": files,
        "agreement_max_abs_diff": agreement,
        "versions": _versions(),
    }


def _accelerator(job: JobRecord, spec: JobSpec, c: CandidateRecord) -> dict[str, Any]:
    """The chip the hardware figures are for: as the spec named it, and the stored config's names
    (the job priced with the config it stored at submission, whatever the YAML says now). In a
    co-design job, the chip chosen with the network: its searched knobs and its full config."""
    from hwmodels import area_split_mm2
    from nas.search._pricing import candidate_accelerator

    acc = candidate_accelerator(job, c.hardware)
    out = {
        "requested": spec.accelerator
        if isinstance(spec.accelerator, str)
        else spec.accelerator.model_dump(mode="json"),
        "chip": acc.chip.name,
        "mapping": job.accelerator["mapping"]["name"],
        "mode": spec.mode,
        "batch": spec.batch,
        "area_mm2": area_split_mm2(acc.chip),
    }
    if c.hardware.get("chip"):
        out["codesign"] = {"searched": c.hardware["chip"], "config": acc.chip.model_dump(mode="json")}
    return out


def _accuracy_line(a: dict[str, Any]) -> str:
    if a["kind"] == "measured":
        return f"{a['value']:.4f}, measured (top-1 under the job's recipe, model_card.json `accuracy.recipe`)"
    if a["kind"] == "predicted":
        return f"{a['value']:.4f} +- {a['std']:.4f}, predicted by the job's calibrated predictor (not measured)"
    return f"{a['value']} ({a['kind']}{': ' + a['note'] if 'note' in a else ''})"


def _weights_text(trained: dict[str, Any] | None, seed: int) -> str:
    if trained is None:
        return f"initialised (seed {seed})"
    if "measured_accuracy" in trained:
        return (
            f"trained by the job: {trained['epochs']:g} epochs over {trained['images']} {trained['dataset']} images at "
            f"{trained['resolution']}x{trained['resolution']}; measured top-1 {trained['measured_accuracy']:.4f}"
        )
    return "trained"


def _accuracy(job: JobRecord, c: CandidateRecord) -> dict[str, Any]:
    """The candidate's accuracy with its units and provenance."""
    m = c.metrics
    kind = job.accuracy_kind
    if kind == "score":
        return {"kind": "score", "value": m.get("accuracy"), "note": "a proxy's ranking score, no units"}
    if kind == "evaluator":
        return {"kind": "evaluator", "value": m.get("accuracy")}
    return {
        "kind": "measured" if m.get("measured_accuracy") is not None else "predicted",
        "value": m.get("accuracy"),
        "std": m.get("accuracy_std"),
        "recipe": job.calibration.get("recipe"),
        "predictor_errors": {k: job.calibration.get(k) for k in ("leave_one_out", "prospective_errors")},
    }


def _readme(card: dict[str, Any]) -> str:
    m = card["metrics"]
    shape = ", ".join(str(s) for s in card["input"]["shape"])
    lines = [
        f"# {card['name']}",
        "",
        f"Exported from job {card['job']['id']} ({card['job']['name']}), candidate {card['candidate']['id']}.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {k} | {v:.6g} |" for k, v in m.items() if isinstance(v, int | float)),
        "",
        f"Weights: {card['weights']}."
        + (
            f" Held-out accuracy {card['training']['held_out_accuracy']:.4f}."
            if card["training"] and "held_out_accuracy" in card["training"]
            else ""
        ),
        "",
        f"Accuracy: {_accuracy_line(card['accuracy'])}.",
        "",
        f"Input `image` float32 ({shape}); output `logits` (batch, {card['output']['shape'][1]}).",
        "",
        "```python",
    ]
    files = card["files"]
    if files.keys() & {"torchscript", "exported_program", "state_dict"}:
        lines.append("import torch")
    if "onnx" in files:
        lines.append("import onnxruntime")
    if "torchscript" in files:
        lines.append(f"model = torch.jit.load({files['torchscript']!r})")
    if "onnx" in files:
        lines.append(f"session = onnxruntime.InferenceSession({files['onnx']!r})")
    if "exported_program" in files:
        lines.append(f"model = torch.export.load({files['exported_program']!r}).module()")
    if "state_dict" in files:
        lines += [
            "# with imc-nas installed:",
            "from search_spaces import ArchConfig, build_model",
            f"net = build_model(ArchConfig.from_json(open('arch.json').read()), num_classes={card['build']['num_classes']},"
            f" img_size={tuple(card['build']['input_shape'][1:])})",
            f"net.load_state_dict(torch.load({files['state_dict']!r}))",
        ]
    lines += ["```", "", "Max |difference| of each format's logits from the module's on one seeded input:", ""]
    lines += [f"- {f}: {d:.2e}" for f, d in card["agreement_max_abs_diff"].items()]
    return "\n".join(lines) + "\n"
