"""Export of a candidate as a deployable PyTorch model: the network the job priced.

One folder (and a zip of it) per export:

- ``arch.json``: the architecture, which ``search_spaces.build_model`` builds;
- ``state_dict.pt``: the weights the built module loads: a measured candidate's trained weights
  (trained by its job under the job's recipe), or with ``train_steps`` weights trained here;
  initialised ones only when asked (``allow_untrained``): an untrained export is refused otherwise;
- ``model.pt2``: torch.export's ExportedProgram (``torch.export.load``), the primary whole-model
  format; ``model.onnx`` (``onnxruntime``); ``model.torchscript.pt`` (``torch.jit.load``), kept while
  torch ships TorchScript (deprecated since 2.9), written only when asked. Each is the network at
  the job's priced input shape (``input_shape``), with a free batch, height and width where the
  network runs at any size; they load and run without this package;
- ``model_card.json`` and ``README.md`` (``nas.model_card``): the exported network's parameters and hardware figures
  (priced here at the shape it is exported at, on the job's chip), the accuracy with its
  provenance, the preprocessing and class names of the dataset its weights were trained on, the
  job, versions, and the formats' agreement with the module, measured here.

A detector's or segmenter's export (the arch's ``task``): ``state_dict.pt`` and ``model.pt2`` hold the
network with its head (raw head outputs: what the chip is priced for); ``model.onnx`` holds the network
and what the host does after it (box decoding and NMS, or upsampling and argmax: ``nas._dense_export``),
so onnxruntime returns boxes, scores and classes, or a class map; it is run once more in an interpreter
that cannot import this project. The card names the task, its metric and the host's ops the price leaves out.

The network is built at the priced shape. Trained weights that depend on the input size (a spatial
MLP's token count, a clamped attention window) fit only a network of the size they were trained
at: such a network is exported at that size, and its card says so and prices it there.

Formats are checked as they are written: the ONNX graph passes ``onnx.checker`` and runs in
onnxruntime, and every format's output is compared with the module's, at the exported shape and
(free height and width) at a larger one. A failed check leaves nothing behind. ``check_request``
refuses what cannot be exported before anything is built; the service runs its exports in
processes of their own (``nas._export_run``).
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas._export_formats import ONNX_OPSET as ONNX_OPSET  # where nas.int8 reads it
from nas._export_formats import WRITERS, OnnxCheckError, max_diff
from nas.limits import Limits
from nas.model_card import ExportShape, card_readme, model_card
from nas.plugins import resolve_space
from nas.spec import FieldError, JobSpec, PluginRef
from nas.store import CandidateRecord, JobRecord, NotFoundError, Store, parse_bounds
from nas.tasks import DENSE_TASKS

FORMATS = ("state_dict", "exported_program", "onnx", "torchscript")
# What an export writes unless asked otherwise ("default"); "all" adds TorchScript, which torch has
# deprecated in favour of torch.export: it is kept while torch ships it.
DEFAULT_FORMATS = ("state_dict", "exported_program", "onnx")
FILES = {
    "state_dict": "state_dict.pt",
    "torchscript": "model.torchscript.pt",
    "onnx": "model.onnx",
    "exported_program": "model.pt2",
}
INT8_FILE = "model.int8.onnx"
AGREEMENT_TOLERANCE = 1e-3  # max |difference| of logits between formats on the check input
CHECK_BATCH = 2  # the check input's batch: not the traced one's, so a batch size baked into a graph shows
# The second check input is this many pixels taller and wider than the exported shape: every stage's
# map then has another size (stride 32 at most), so a size baked into a "free" graph shows.
SIZE_CHECK_STEP = 32


class ExportError(FieldError):
    """The candidate cannot be exported as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Exported:
    path: Path  # the folder
    files: dict[str, str]  # what -> file name in the folder
    card: dict[str, Any]


def parse_formats(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """'default' (or nothing) | 'all' | a format | a comma-separated list (or a list) -> formats,
    in FORMATS order. 'default' is DEFAULT_FORMATS; 'all' adds TorchScript."""
    items = [p.strip() for chunk in ([value] if isinstance(value, str) else value) for p in chunk.split(",")]
    items = [p for p in items if p]
    if "all" in items:
        return FORMATS
    if not items or items == ["default"]:
        return DEFAULT_FORMATS
    unknown = [p for p in items if p not in FORMATS]
    if unknown:
        raise ExportError("formats", f"unknown {', '.join(unknown)}; choose default, all or among {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in items)


def check_request(
    spec: JobSpec,
    candidate: CandidateRecord,
    *,
    formats: str | tuple[str, ...] = DEFAULT_FORMATS,
    train_steps: int = 0,
    train_batch: int = 32,
    trained: bool = False,
    limits: Limits | None = None,
    allow_untrained: bool = False,
    int8: bool = False,
    has_int8: bool = False,
) -> tuple[str, ...]:
    """What an export can be refused for before anything is built or imported (``ExportError``
    naming the field): unknown formats, a candidate that is not complete, one without trained
    weights (``trained``: its job's) unless trained here (``train_steps``) or ``allow_untrained``,
    training one that has its job's trained weights or one whose job has a plug-in evaluator, and,
    under ``limits``, a training batch over ``max_batch_pixels``, and ``int8`` for a candidate
    without an INT8 model (``has_int8``: its job measured it in INT8). Returns the formats."""
    formats = parse_formats(formats)
    if candidate.status != "complete":
        raise ExportError(
            "candidate",
            f"candidate {candidate.id} is {candidate.status} ({candidate.failure or 'not scored'}); "
            "export a complete one, e.g. from the Pareto front",
        )
    if train_steps < 0:
        raise ExportError("train_steps", f"must be >= 0, got {train_steps}")
    if int8 and not has_int8:
        raise no_int8_model(candidate)
    if not trained and not train_steps and not allow_untrained:
        raise ExportError(
            "weights",
            f"candidate {candidate.id} has no trained weights: its export would ship initialised ones, "
            f"without the accuracy the front shows. Measure it first (`nas train {candidate.job_id} --top N`), "
            "train it in the export (train_steps, `--train-steps N`), "
            "or ask for initialised weights (allow_untrained, `--allow-untrained`)",
        )
    if train_steps and trained:
        raise ExportError(
            "train_steps", "the candidate has trained weights from its job; export it without train_steps"
        )
    task = getattr(spec, "task", None) or "classification"
    if train_steps and task in DENSE_TASKS:
        raise ExportError(
            "train_steps",
            f"training in the export is for classifiers; a {task} candidate ships the weights its job trained: "
            f"measure it first (`nas train {candidate.job_id} --top N`) and export without train_steps",
        )
    if int8 and task in DENSE_TASKS:
        raise ExportError(
            "int8", f"INT8 models are measured for classifiers only; export the {task} candidate without int8"
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


def task_of(arch: Any, spec: JobSpec) -> str:
    """The task a candidate is exported for: its architecture's (a dense one carries its head), else
    its job's (``spec.task``), classification when neither says."""
    return getattr(arch, "task", None) or getattr(spec, "task", None) or "classification"


def no_int8_model(candidate: CandidateRecord) -> ExportError:
    return ExportError(
        "int8",
        f"candidate {candidate.id} has no INT8 model: a job quantizes a candidate when it trains it (since "
        f"INT8 was measured: schema 0007); measure it first (`nas train {candidate.job_id} --top N`, POST "
        f"/jobs/{{id}}/train; one measured before then stays without), or export without int8",
    )


def export_candidate(
    job: JobRecord,
    candidate: CandidateRecord,
    out: str | Path,
    *,
    formats: str | tuple[str, ...] = DEFAULT_FORMATS,
    train_steps: int = 0,
    train_batch: int = 32,
    weights: tuple[bytes, dict[str, Any]] | None = None,
    allow_untrained: bool = False,
    int8: tuple[bytes, dict[str, Any]] | None = None,
) -> Exported:
    """Write the export of ``candidate`` to the folder ``out`` (new or empty). ``weights``: the
    candidate's trained state_dict and recipe (``Store.weights``), shipped as they are; without
    them, ``train_steps`` trains the network here, or ``allow_untrained`` ships initialised weights
    (the card then says its accuracy is not measured). ``int8``: the INT8 model its INT8 accuracy
    was measured on and its quantization recipe (``Store.int8_model``), shipped as ``model.int8.onnx``."""
    import torch

    from nas.pricing import candidate_accelerator, price

    spec = JobSpec.model_validate(job.spec)
    formats = check_request(
        spec, candidate, formats=formats, train_steps=train_steps, train_batch=train_batch,
        trained=weights is not None, allow_untrained=allow_untrained,
    )  # fmt: skip
    if int8 is not None and weights is None:
        raise ExportError("int8", "an INT8 model ships with the trained weights it was quantized from")
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
    torch.manual_seed(spec.seed)
    model, input_shape, fixed = _build(space, arch, spec, weights)
    task = task_of(arch, spec)
    if weights is not None:
        trained = {**weights[1], "measured_accuracy": candidate.metrics.get("measured_accuracy")}
    else:
        trained = _train(model, spec, train_steps, train_batch) if train_steps else None
    model.eval()
    exported = spec.model_copy(update={"input_shape": input_shape})
    # The exported file priced as it is, on the chip the candidate was priced on: its params and
    # latency, not the front's where the two differ.
    priced = price(
        space, arch, exported, candidate_accelerator(job, candidate.hardware), candidate.hardware.get("chip")
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))  # beside out: the rename is atomic
    try:
        files = {"arch": "arch.json"}
        (tmp / "arch.json").write_text(arch.to_json() + "\n")
        targets = _targets(model, formats, task)
        agreement, checked, fixed, runs = _write_formats(targets, tmp, formats, input_shape, fixed)
        files |= {fmt: FILES[fmt] for fmt in formats}
        int8_card = None
        if int8 is not None:
            int8_card = _write_int8(model, tmp / INT8_FILE, int8, candidate)
            files["onnx_int8"] = INT8_FILE
        files["model_card"] = "model_card.json"
        at_training = _at_training_resolution(targets, runs, input_shape, trained)
        shape = ExportShape(input_shape, fixed, checked, at_training)
        dense = None
        if task in DENSE_TASKS:
            from nas._dense_export import DenseCheckError, dense_card

            onnx = (tmp / FILES["onnx"], targets["onnx"].module) if "onnx" in targets else None
            try:
                dense = dense_card(model, task, spec.num_classes, input_shape, onnx, AGREEMENT_TOLERANCE)
            except DenseCheckError as err:
                raise ExportError("onnx", str(err)) from err
        card = model_card(job, candidate, spec, shape, files, agreement, trained, priced, int8_card, dense)
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
        (tmp / "README.md").write_text(card_readme(card))
        if out.exists():
            out.rmdir()
        tmp.chmod(0o755)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Exported(out, files, card)


def _build(
    space: Any, arch: Any, spec: JobSpec, weights: tuple[bytes, dict[str, Any]] | None
) -> tuple[Any, tuple[int, ...], str | None]:
    """(module, the input shape it is exported at, why that size is fixed or None): the network at
    the job's priced shape; with trained weights whose shapes depend on the input size (a spatial
    MLP's token count, a clamped window), the network at the resolution they were trained at."""
    import torch

    priced = tuple(spec.input_shape)
    model = space.build(arch, priced, spec.num_classes)
    if weights is None:
        return model, priced, None
    state = torch.load(io.BytesIO(weights[0]), weights_only=True)
    wanted = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if wanted == {k: tuple(v.shape) for k, v in state.items()}:
        model.load_state_dict(state)
        return model, priced, None
    r = weights[1]["resolution"]
    trained_at = (priced[0], r, r)
    model = space.build(arch, trained_at, spec.num_classes)
    model.load_state_dict(state)
    return (
        model,
        trained_at,
        (
            f"its weights depend on the input size and were trained at {r}x{r} px: it is exported (and priced) at "
            f"that size; the network priced at {priced[1]}x{priced[2]} px on the front has other weights"
        ),
    )


class _SizeFixed(Exception):
    """A format did not run, or disagreed, at another height and width than it was traced at."""


@dataclass(frozen=True)
class _Target:
    """What a format's file holds and how its outputs are compared with that module's."""

    module: Any
    diff: Any  # (the file's outputs, the module's, the input) -> a distance, <= AGREEMENT_TOLERANCE to agree


def _targets(model: Any, formats: tuple[str, ...], task: str) -> dict[str, _Target]:
    """Every format holds the network, compared output by output; a dense network's ONNX file holds
    its host post-processing too (``nas._dense_export``), compared as detections or a class map."""
    network = _Target(model, lambda got, reference, x: max_diff(got, reference))
    if task not in DENSE_TASKS or "onnx" not in formats:
        return {fmt: network for fmt in formats}
    from nas._dense_export import deployed

    host = deployed(model, task)
    host = _Target(host, host.agreement)
    return {fmt: host if fmt == "onnx" else network for fmt in formats}


def _write_formats(
    targets: dict[str, _Target],
    folder: Path,
    formats: tuple[str, ...],
    input_shape: tuple[int, ...],
    fixed: str | None,
) -> tuple[dict[str, float], list[list[int]], str | None, dict[str, Any]]:
    """Write every format into ``folder`` and compare each with its module: at the exported shape
    and, unless the size is fixed, at one ``SIZE_CHECK_STEP`` pixels larger each way, with a free
    height and width. If a module or a format does not run (or agree) there, every format is
    written again at the fixed size. Returns (the distance per format, the inputs compared at,
    why the size is fixed or None, each format's file loaded back as a callable)."""
    import torch

    g = torch.Generator().manual_seed(0)
    checks = [torch.randn(CHECK_BATCH, *input_shape, generator=g)]
    if fixed is None:
        c, h, w = input_shape
        checks.append(torch.randn(CHECK_BATCH + 1, c, h + SIZE_CHECK_STEP, w + SIZE_CHECK_STEP, generator=g))
    modules = {id(t.module): t.module for t in targets.values()}
    with torch.no_grad():
        references = {k: [m(checks[0])] for k, m in modules.items()}
        if fixed is None:
            try:
                for k, m in modules.items():
                    references[k].append(m(checks[1]))
            except Exception as err:  # e.g. a spatial MLP, built for one token count
                fixed, checks = f"the network runs at {input_shape[1]}x{input_shape[2]} px only ({err})", checks[:1]
                references = {k: r[:1] for k, r in references.items()}
    runs = {}
    try:
        for fmt in formats:
            runs[fmt] = _write(fmt, targets[fmt].module, folder, input_shape, fixed)
        agreement = {
            fmt: _check(runs[fmt], checks, references[id(targets[fmt].module)], targets[fmt].diff) for fmt in formats
        }
    except _SizeFixed as err:
        for fmt in formats:
            (folder / FILES[fmt]).unlink(missing_ok=True)
        return _write_formats(targets, folder, formats, input_shape, str(err))
    bad = {f: d for f, d in agreement.items() if not d <= AGREEMENT_TOLERANCE}
    if bad:
        raise ExportError(f"formats disagree with the module beyond {AGREEMENT_TOLERANCE}: {bad}")
    return agreement, [list(x.shape) for x in checks], fixed, runs


def _at_training_resolution(
    targets: dict[str, _Target], runs: dict[str, Any], input_shape: tuple[int, ...], trained: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Which formats run (and agree with their module) at the resolution the weights were trained and
    measured at, when the export's size is another: a free size need not reach it (torch.export
    keeps a feature map that is 1x1 at one size and not at the other apart)."""
    import torch

    r = (trained or {}).get("resolution")
    if r is None or [r, r] == list(input_shape[1:]):
        return None
    x = torch.randn(1, input_shape[0], r, r, generator=torch.Generator().manual_seed(1))
    ok = {}
    with torch.no_grad():
        for fmt, run in runs.items():
            try:
                reference = targets[fmt].module(x)
            except Exception:
                ok[fmt] = False  # fixed-size weights: nothing runs there
                continue
            try:
                ok[fmt] = targets[fmt].diff(run(x), reference, x) <= AGREEMENT_TOLERANCE
            except Exception:
                ok[fmt] = False
    return {"input_shape": [input_shape[0], r, r], "runs": ok}


def _write(fmt: str, module: Any, folder: Path, input_shape: tuple[int, ...], fixed: str | None) -> Any:
    """``fmt``'s writer; with a free size, a failure is ``_SizeFixed`` (the fixed size is tried next)."""
    try:
        return WRITERS[fmt](module, folder / FILES[fmt], input_shape, fixed is None)
    except OnnxCheckError as err:
        if fixed is not None:
            raise ExportError("onnx", str(err)) from err
        raise _SizeFixed(f"{fmt} cannot be written with a free height and width ({_first_line(err)})") from err
    except Exception as err:
        if fixed is not None:
            raise
        raise _SizeFixed(f"{fmt} cannot be written with a free height and width ({_first_line(err)})") from err


def _check(run: Any, checks: list[Any], references: list[Any], diff: Any) -> float:
    """The largest distance of ``run``'s outputs from its module's over the check inputs; a failure
    past the first input (another size) is ``_SizeFixed``."""
    import torch

    diffs = []
    for i, (x, reference) in enumerate(zip(checks, references, strict=True)):
        try:
            with torch.no_grad():
                diffs.append(diff(run(x), reference, x))
        except Exception as err:
            if i == 0:
                raise
            raise _SizeFixed(f"a format does not run at {x.shape[2]}x{x.shape[3]} px ({_first_line(err)})") from err
        if i and not diffs[-1] <= AGREEMENT_TOLERANCE:
            raise _SizeFixed(f"a format disagrees with the module at {x.shape[2]}x{x.shape[3]} px ({diffs[-1]:.1e})")
    return max(diffs)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:200]


def export_stored(
    store: Store, job: JobRecord, candidate: CandidateRecord, out: str | Path, *, int8: bool = False, **options: Any
) -> Exported:
    """``export_candidate`` of a stored candidate, with its trained weights when the job measured it
    and, with ``int8``, the INT8 model its INT8 accuracy was measured on."""
    model = store.int8_model(job.id, candidate.id) if int8 else None
    if int8 and model is None:
        raise no_int8_model(candidate)
    return export_candidate(job, candidate, out, weights=store.weights(job.id, candidate.id), int8=model, **options)


def _write_int8(model: Any, path: Path, int8: tuple[bytes, dict[str, Any]], candidate: CandidateRecord) -> dict:
    """Write the stored INT8 model as it is, check that onnxruntime runs it, and describe it for
    the card: its input, its recipe, its measured accuracy, and its logits' distance from the FP32
    module's at the resolution it was measured at (quantization moves them: information, not a check)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    data, recipe = int8
    path.write_bytes(data)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dims = session.get_inputs()[0].shape  # [batch, channels, height, width]; symbolic dims are names
    shape = [CHECK_BATCH, *(d if isinstance(d, int) else recipe.get("resolution", 32) for d in dims[1:])]
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    (logits,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    if not np.all(np.isfinite(logits)):
        raise ExportError("int8", "the stored INT8 model gives non-finite logits; measure the candidate again")
    with torch.no_grad():
        reference = model(x)
    m = candidate.metrics
    return {
        "file": path.name,
        "input": {"name": session.get_inputs()[0].name, "shape": [d if isinstance(d, int) else str(d) for d in dims]},
        "accuracy": m.get("measured_accuracy_int8"),
        "fp32_accuracy": m.get("measured_accuracy"),
        "drop": m.get("int8_drop"),
        "quantization": recipe,
        "max_abs_diff_from_fp32_logits": max_diff(logits, reference),
        "runs_in": f"onnxruntime {ort.__version__} (CPUExecutionProvider), without this package",
    }


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
