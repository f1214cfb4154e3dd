"""What an export says about itself: ``model_card.json`` (the exported network's parameters and
hardware figures priced at the shape it is exported at, the accuracy with its provenance, the
preprocessing and class names, the job, versions, the formats' agreement) and the ``README.md``
that shows how to load each format. ``nas.export`` builds and checks the files; this module only
describes them."""

from __future__ import annotations

import contextlib
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from nas.spec import JobSpec, PluginRef
from nas.store import CandidateRecord, JobRecord


@dataclass(frozen=True)
class ExportShape:
    """The input an export takes, as its card reports it."""

    exported: tuple[int, ...]  # (channels, height, width) the formats were traced and priced at
    fixed: str | None  # why height and width are not free, None when they are
    checked: list[list[int]]  # the inputs (batch, channels, height, width) every format was compared at
    at_training: dict[str, Any] | None  # which formats run at the weights' training resolution, if another


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("imc-nas", "torch", "timm", "onnx", "onnxruntime", "optuna"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def model_card(
    job: JobRecord,
    c: CandidateRecord,
    spec: JobSpec,
    shape: ExportShape,
    files: dict[str, str],
    agreement: dict[str, float],
    trained: dict[str, Any] | None,
    priced: Any,
    int8: dict[str, Any] | None = None,
    dense: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The card of an export. ``dense`` (``nas._dense_export.dense_card``): a detector's or segmenter's
    outputs per file, what runs on the host, and its ONNX file's check without this project."""
    channels, height, width = shape.exported
    free = shape.fixed is None
    measured_by_job = trained is not None and "measured_accuracy" in trained
    hardware_keys = priced.metrics.keys()
    task = dense["task"] if dense else "classification"
    card = {
        "name": c.name,
        "arch_hash": c.arch_hash,
        "exported_at": datetime.now(UTC).isoformat(),
        "task": task,
        "job": {"id": job.id, "name": job.name, "tags": list(job.tags), "objectives": spec.objectives},
        "candidate": {"id": c.id, "trial_number": c.trial_number, "on_front": c.on_front},
        "input": {
            "name": "image",
            "dtype": "float32",
            "shape": ["batch", channels, "height" if free else height, "width" if free else width],
            "units": "images, channels, pixels, pixels",
            "exported_at": list(shape.exported),  # channels, height px, width px: traced and priced here
            "size": f"any height and width (checked at {height}x{width} and another)"
            if free
            else f"fixed at {height}x{width} px: {shape.fixed}",
            "checked_at": shape.checked,
            "at_training_resolution": shape.at_training,
        },
        "output": {f: o for f, o in dense["outputs"].items() if f in files}
        if dense
        else {"shape": ["batch", spec.num_classes], "name": "logits"},
        "primary_format": "exported_program" if "exported_program" in files else None,
        "build": {
            "space": spec.space.plugin
            if isinstance(spec.space, PluginRef)
            else getattr(spec.space, "name", spec.space),
            "num_classes": spec.num_classes,
            "input_shape": list(shape.exported),
        },
        # The exported file's figures: priced at its shape on the job's chip (`pricing`); the
        # accuracy only where it is these weights' (the job measured them).
        "metrics": {
            **{k: v for k, v in c.metrics.items() if measured_by_job and k not in hardware_keys},
            **priced.metrics,
        },
        "pricing": {
            "chip": _accelerator(job, spec, c)["chip"],
            "input_shape": list(shape.exported),
            "units": "channels, height px, width px",
            "as_on_front": list(shape.exported) == list(spec.input_shape),
        },
        "accuracy": _accuracy(job, c, trained, spec.seed, task),
        # INT8 as the chip computes: the shipped INT8 model's measured accuracy and how it was quantized
        "int8": int8,
        "preprocessing": _preprocessing(spec, trained, task),
        "scores": c.scores,
        "deployable": priced.deployable,
        "hardware": priced.hardware,
        "violations": priced.violations,  # the job's hard constraints that this file breaks
        "accelerator": _accelerator(job, spec, c),
        "priced_at_input_shape": list(spec.input_shape),  # the front's candidate, as `front` gives it
        "front": {"input_shape": list(spec.input_shape), "metrics": c.metrics},
        "constraints": spec.constraints.model_dump(mode="json", exclude_none=True),
        "weights": _weights_text(trained, spec.seed, task),
        "training": trained,
        "files": files,
        "agreement_max_abs_diff": agreement,
        "versions": _versions(),
    }
    if dense:
        # what the host does after the network (in no figure above), and model.onnx run without this project
        r = (trained or {}).get("resolution") or _recipe_resolution(job)
        card |= {
            "host": dense["host"],
            "resolutions": {"priced": list(shape.exported), "trained": [channels, r, r] if r else None},
            "agreement_measures": {"onnx": dense["agreement"], "other formats": "max |difference| of raw outputs"},
            "onnx_without_project": dense["onnx_without_project"],
        }
    return card


def _recipe_resolution(job: JobRecord) -> int | None:
    """The resolution the job trains (and measures) its candidates at, from its predictor's recipe."""
    return (job.predictor.get("recipe") or {}).get("resolution")


def _preprocessing(spec: JobSpec, trained: dict[str, Any] | None, task: str) -> dict[str, Any] | None:
    """How the images the weights were trained (and measured) on were made into inputs; None for
    initialised weights or a plug-in evaluator's job (no dataset known here). A dense job's is its
    training set's ``preprocessing()`` (the train split's statistics), read again from its folder."""
    from nas.data import DataNotFoundError, describe_preprocessing

    if trained is None or isinstance(spec.evaluator, PluginRef):
        return None
    if task != "classification":
        if trained.get("preprocessing"):
            return trained["preprocessing"]
        try:  # the job's training set, loaded as its training loaded it: its statistics normalised the inputs
            from nas import training

            return training.dense_sets(spec)[0].preprocessing()
        except (FileNotFoundError, ValueError) as err:  # the dataset gone since (DataNotFoundError) or changed
            r = trained.get("resolution")
            return {
                "dataset": trained.get("dataset", getattr(spec.evaluator, "data", None)),
                "resize": [r, r] if r else None,
                "note": f"not described: the job's training set cannot be read here ({type(err).__name__}: {err})",
            }
    try:
        return describe_preprocessing(
            spec.evaluator.data,
            resolution=trained["resolution"],
            channels=spec.input_shape[0],
            data_dir=spec.evaluator.data_dir,
        )
    except DataNotFoundError as err:
        return {"dataset": spec.evaluator.data, "note": f"not described: {err}"}


def _accelerator(job: JobRecord, spec: JobSpec, c: CandidateRecord) -> dict[str, Any]:
    """The chip the hardware figures are for: as the spec named it, and the stored config's names
    (the job priced with the config it stored at submission, whatever the YAML says now). In a
    co-design job, the chip chosen with the network: its searched knobs and its full config."""
    from hwmodels import area_split_mm2
    from nas.pricing import candidate_accelerator

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


def _weights_text(trained: dict[str, Any] | None, seed: int, task: str = "classification") -> str:
    if trained is None:
        return f"initialised (seed {seed}), not trained: exported with allow_untrained"
    if task != "classification":
        from nas.tasks import get_task

        r, value = trained.get("resolution"), trained.get("measured_accuracy")
        how = ", ".join(f"{k} {trained[k]}" for k in ("steps", "epochs", "images", "batch_size") if k in trained)
        return (
            f"trained by the job on {trained.get('dataset', 'its dataset')}"
            + (f" at {r}x{r} px" if r else "")
            + (f" ({how})" if how else "")
            + (f"; measured {get_task(task).label} {value:.4f}" if value is not None else "")
        )
    if "measured_accuracy" in trained:
        return (
            f"trained by the job: {trained['epochs']:g} epochs over {trained['images']} {trained['dataset']} images at "
            f"{trained['resolution']}x{trained['resolution']} px; measured top-1 {trained['measured_accuracy']:.4f}"
        )
    return (
        f"trained by this export: {trained['steps']} steps of {trained['batch_size']} {trained['dataset']} images at "
        f"{trained['resolution']}x{trained['resolution']} px"
    )


def _accuracy(
    job: JobRecord, c: CandidateRecord, trained: dict[str, Any] | None, seed: int, task: str = "classification"
) -> dict[str, Any]:
    """The accuracy of the exported weights, with its units and provenance. A dense task's metric
    (mAP, mIoU) is kept in the accuracy fields: it is named here, with what is measured beside it."""
    a = _classification_accuracy(job, c, trained, seed)
    if task == "classification":
        return a
    from nas import tasks
    from nas.tasks import get_task

    t, m = get_task(task), c.metrics
    # measured beside the metric (map50, pixel_accuracy) by the training of these weights: its last
    # rung's (nas.tasks.task_extras), else where the candidate's metrics keep them
    extras = getattr(tasks, "task_extras", None)
    beside = extras(c.rungs) if extras and c.rungs else {}
    beside = beside or {e: m.get(f"measured_{e}", m.get(e)) for e in t.extra}
    beside = {k: v for k, v in beside.items() if v is not None} if trained is not None else {}
    beside = beside or None
    return {"metric": t.metric, "label": t.label, "units": "0-1", **a, "beside": beside}


def _classification_accuracy(
    job: JobRecord, c: CandidateRecord, trained: dict[str, Any] | None, seed: int
) -> dict[str, Any]:
    if trained is None:
        front = _front_accuracy(job, c)
        return {
            "kind": "not measured",
            "value": None,
            "note": f"initialised weights (seed {seed}); the front's {front['kind']} accuracy "
            f"{front['value']} is of the trained network, not of these weights",
        }
    if "held_out_accuracy" in trained:
        return {
            "kind": "measured",
            "value": trained["held_out_accuracy"],
            "on": f"{trained['held_out_images']} held-out {trained['dataset']} training images at "
            f"{trained['resolution']}x{trained['resolution']} px, after this export's {trained['steps']} steps",
        }
    return _front_accuracy(job, c)


def _front_accuracy(job: JobRecord, c: CandidateRecord) -> dict[str, Any]:
    """The candidate's accuracy as its job states it, with its units and provenance."""
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
        # the same network in INT8, as the chip computes: measured on its quantized model, else predicted
        "int8": {
            "kind": "measured" if m.get("measured_accuracy_int8") is not None else "predicted",
            "value": m.get("accuracy_int8"),
            "std": m.get("accuracy_int8_std"),
            "drop": m.get("int8_drop"),
        }
        if m.get("accuracy_int8") is not None
        else None,
        "recipe": job.predictor.get("recipe"),
        "predictor_errors": {k: job.predictor.get(k) for k in ("leave_one_out", "prospective_errors")},
    }


def _accuracy_line(a: dict[str, Any]) -> str:
    what = a.get("label", "top-1")
    if a["kind"] == "measured" and "on" in a:
        return f"{a['value']:.4f}, measured (top-1 on {a['on']})"
    if a["kind"] == "measured":
        r = (a.get("recipe") or {}).get("resolution")
        at = f" at {r}x{r} px" if r else ""
        beside = "".join(f"; {k} {v:.4f}" for k, v in (a.get("beside") or {}).items() if v is not None)
        return (
            f"{a['value']:.4f}, measured ({what} under the job's recipe{at}, model_card.json `accuracy.recipe`{beside})"
        )
    if a["kind"] == "predicted":
        return f"{a['value']:.4f} +- {a['std']:.4f}, predicted by the job's calibrated predictor (not measured)"
    if a["value"] is None:
        return f"{a['kind']} ({a['note']})"
    return f"{a['value']} ({a['kind']}{': ' + a['note'] if 'note' in a else ''})"


def _int8_lines(q: dict[str, Any] | None) -> list[str]:
    if not q:
        return []
    how = (
        "measured on its INT8 model"
        if q["kind"] == "measured"
        else f"+- {q['std']:.4f}, predicted (FP32 less the predicted drop)"
    )
    drop = "" if q["drop"] is None else f"; drop {q['drop']:+.4f} from FP32"
    return ["", f"INT8 accuracy (as the chip computes): {q['value']:.4f}, {how}{drop}."]


def _metric_key(key: str, card: dict[str, Any]) -> str:
    """A metric's name as the README shows it: a dense task's metric is kept in the accuracy fields."""
    a = card["accuracy"]
    if "metric" in a and (
        key == "accuracy" or key.startswith(("accuracy_", "measured_accuracy", "predicted_accuracy"))
    ):
        return key.replace("accuracy", a["metric"], 1)
    return key


def _metric_name(card: dict[str, Any]) -> str:
    a = card["accuracy"]
    return f"{a['label']} ({a['metric']}, 0-1)" if "label" in a else "Accuracy"


def _dense_lines(card: dict[str, Any]) -> list[str]:
    """A detector's or segmenter's README: task, resolutions, each file's outputs, what the host does
    (and the chip's price leaves out), and model.onnx run without this project."""
    if card.get("task", "classification") == "classification":
        return []
    res, host, out = card["resolutions"], card["host"], card["output"]
    trained = res["trained"]
    lines = [
        f"Task: {card['task']}. Priced on the chip at {'x'.join(map(str, res['priced']))} (channels x height x width px)"
        + (f"; trained and measured at {'x'.join(map(str, trained))}." if trained else "."),
        "",
        f"On the chip, in the figures above: {host['priced_on_chip']}. On the host, in no figure of this card"
        " (the chip's price leaves them out):",
        "",
        *(f"- {op}" for op in host["on_host"]),
        "",
        f"Where they run: {host['in_files']['onnx']}; {host['in_files']['exported_program']}.",
        "",
        "Outputs:",
        "",
    ]
    files = card["files"]
    network = [f"{files[f]}" for f in ("exported_program", "state_dict", "torchscript") if f in out]
    if network:
        net = out[next(f for f in ("exported_program", "state_dict", "torchscript") if f in out)]
        lines.append(f"- {', '.join(network)} (the network): `{net['name']}`, {net['format']}.")
    if "onnx" in out:
        onnx = {k: v for k, v in out["onnx"].items() if isinstance(v, dict)}
        lines.append(
            f"- {files['onnx']} (network + host): "
            + "; ".join(
                f"`{k}` {v['dtype']} ({', '.join(map(str, v['shape']))}): {v['format']}" for k, v in onnx.items()
            )
            + (f"; {out['onnx']['order']}" if "order" in out["onnx"] else "")
            + "."
        )
    check = card.get("onnx_without_project")
    if check:
        lines += ["", f"model.onnx checked in {check['runs_in']}: outputs {check['outputs']}; agrees with PyTorch "
                  f"({card['agreement_measures']['onnx']})."]  # fmt: skip
    return [*lines, ""]


def card_readme(card: dict[str, Any]) -> str:
    m, inp, pricing = card["metrics"], card["input"], card["pricing"]
    shape = ", ".join(str(s) for s in inp["shape"])
    c, h, w = inp["exported_at"]
    lines = [
        f"# {card['name']}",
        "",
        f"Exported from job {card['job']['id']} ({card['job']['name']}), candidate {card['candidate']['id']}.",
        "",
        f"Hardware figures: this file's network on {pricing['chip']} ({card['accelerator']['mode']}, batch "
        f"{card['accelerator']['batch']}) at an input of {c} channels x {h} x {w} px"
        + (
            ", as on the job's front."
            if pricing["as_on_front"]
            else f"; the job's front priced it at {'x'.join(map(str, card['front']['input_shape']))} (`front`)."
        ),
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {_metric_key(k, card)} | {v:.6g} |" for k, v in m.items() if isinstance(v, int | float)),
        "",
        f"Weights: {card['weights']}.",
        "",
        f"{_metric_name(card)}: {_accuracy_line(card['accuracy'])}.",
        *_int8_lines(card["accuracy"].get("int8")),
        "",
        f"Input `image` float32 ({shape}): {inp['size']}; output `logits` (batch, {card['output']['shape'][1]})."
        if card.get("task", "classification") == "classification"
        else f"Input `image` float32 ({shape}): {inp['size']}.",
        "",
        *_dense_lines(card),
    ]
    pre = card["preprocessing"]
    if pre and "note" in pre:
        lines += [f"Preprocessing of {pre.get('dataset')}: {pre['note']}.", ""]
    if pre and "classes" in pre:
        r = pre["resize"]
        lines += [
            f"Preprocessing (as the weights were trained and measured on {pre['dataset']}): pixels / 255 (values in"
            f" [0, 1]), resized to {r[0]}x{r[1]} px ({pre['resize_method']}), normalised (x - mean) / std with mean "
            f"{pre['mean']} and std {pre['std']}, {pre['channels']} channels from {pre['channels_from']}."
            + ("" if [c, h, w][1:] == r else f" The hardware figures are for {h}x{w} px inputs."),
            "",
            "Classes (logit i is class i): " + ", ".join(f"{i} {name}" for i, name in enumerate(pre["classes"])) + ".",
            "",
        ]
    if inp["at_training_resolution"]:
        at = inp["at_training_resolution"]
        yes = [f for f, ok in at["runs"].items() if ok]
        no = [f for f, ok in at["runs"].items() if not ok]
        lines += [
            f"At the training resolution ({'x'.join(map(str, at['input_shape'][1:]))} px, where the accuracy was"
            f" measured) these formats run: {', '.join(yes) or 'none'}"
            + (f"; not: {', '.join(no)} (use {h}x{w} px inputs there)." if no else "."),
            "",
        ]
    lines.append("```python")
    files = card["files"]
    if files.keys() & {"torchscript", "exported_program", "state_dict"}:
        lines.append("import torch")
    if "onnx" in files or "onnx_int8" in files:
        lines.append("import onnxruntime")
    if "exported_program" in files:
        lines.append(f"model = torch.export.load({files['exported_program']!r}).module()  # the primary format")
    if "onnx" in files:
        lines.append(f"session = onnxruntime.InferenceSession({files['onnx']!r})")
        if card.get("task", "classification") != "classification":
            lines += [
                "import numpy",
                f"x = numpy.zeros((1, {c}, {h}, {w}), numpy.float32)  # a batch of images, preprocessed as above",
            ]
        if card.get("task") == "detection":
            lines.append(
                "boxes, scores, classes, batch_index, cell_boxes, cell_scores = session.run(None, {'image': x})"
            )
        elif card.get("task") == "segmentation":
            lines.append("(class_map,) = session.run(None, {'image': x})  # int64, batch x height x width")
    if "torchscript" in files:
        lines.append(
            f"model = torch.jit.load({files['torchscript']!r})  # TorchScript: deprecated, kept while torch ships it"
        )
    if "state_dict" in files:
        lines += [
            "# with imc-nas installed:",
            "from search_spaces import ArchConfig, build_model",
            f"net = build_model(ArchConfig.from_json(open('arch.json').read()), num_classes={card['build']['num_classes']},"
            f" img_size={tuple(card['build']['input_shape'][1:])})",
            f"net.load_state_dict(torch.load({files['state_dict']!r}))",
        ]
    q = card.get("int8")
    if q:
        lines += [
            "# INT8, as the chip computes (onnxruntime alone, no torch needed):",
            f"int8 = onnxruntime.InferenceSession({q['file']!r})  # input {q['input']['name']!r}: {q['input']['shape']}",
        ]
    what = "logits" if card.get("task", "classification") == "classification" else "outputs (`agreement_measures`)"
    lines += ["```", "", f"Max |difference| of each format's {what} from the module's on seeded inputs of shapes "
              + ", ".join("x".join(map(str, s)) for s in inp["checked_at"]) + ":", ""]  # fmt: skip
    lines += [f"- {f}: {d:.2e}" for f, d in card["agreement_max_abs_diff"].items()]
    if q:
        r = q["quantization"]
        lines += [
            "",
            f"INT8 ({q['file']}): top-1 {q['accuracy']:.4f} measured on the same images as the FP32 accuracy"
            f" {q['fp32_accuracy']:.4f} (drop {q['drop']:+.4f}), input {q['input']['shape']}."
            f" Quantized after training: {r.get('method', 'post-training static quantization')},"
            f" calibrated on {r.get('calibration_images', '?')} training images (seed {r.get('seed', '?')}),"
            f" scope {r.get('scope', '?')} (`int8.quantization` in model_card.json). Its logits differ from the"
            f" FP32 module's by up to {q['max_abs_diff_from_fp32_logits']:.2e} (quantization, not an error).",
        ]
    return "\n".join(lines) + "\n"
