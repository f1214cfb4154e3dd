"""Measuring a candidate: train it under the job's recipe and score it on images it never saw.

The recipe (``evaluator.train.recipe``) is what a job's accuracies are stated under: top-1 on the
dataset's test split after ``epochs`` over a fixed, seeded subset of ``images`` training images,
at the evaluator's resolution. Its defaults are the ranking benchmark's truth recipe
(docs/proxy_ranking.md), so a job on Fashion-MNIST measures what that benchmark measured.

A detection or segmentation job (``nas.tasks``) states its mAP or mIoU the same way: after the
recipe over a subset of its folder's ``train`` split, on its ``val`` split.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from nas.data import ImageData, load_once
from nas.proxies._training import Trainer, TrainRecipe, evaluate
from nas.spec import JobSpec, ProxyEvaluatorSpec, SpecError
from nas.tasks import DENSE_TASKS, get_task
from search_spaces import ArchConfig, build_model

HELD_OUT_DEFAULT = 2000  # images held out of the training split where a dataset has no test split


def trainer_recipe(evaluator: ProxyEvaluatorSpec, seed: int) -> TrainRecipe:
    """The job's recipe as the trainer runs it: warm-up, then cosine to zero over every step."""
    r = evaluator.train.recipe
    return TrainRecipe(
        steps=r.steps,
        batch_size=r.batch_size,
        resolution=evaluator.resolution,
        lr=r.lr,
        weight_decay=r.weight_decay,
        warmup_steps=r.warmup_steps,
        decay_steps=r.steps,
        label_smoothing=r.label_smoothing,
        seed=seed,
    )


def describe_recipe(spec: JobSpec) -> dict[str, Any]:
    """The recipe as the store and the model card state it: the units of a job's accuracies."""
    e = spec.evaluator
    recipe = {
        "dataset": e.data,
        "resolution": e.resolution,
        **e.train.recipe.model_dump(mode="json"),
        "steps": e.train.recipe.steps,
        "seed": spec.seed,
        "scored_on": "the test split" if e.data == "fashion-mnist" else "the test split, else held-out training images",
    }
    if spec.task in DENSE_TASKS:  # classification's record stays as it was
        task = get_task(spec.task)
        return {"task": task.name, "metric": task.label, **recipe, "scored_on": "the val split"}
    return recipe


def measurement_sets(spec: JobSpec) -> tuple[ImageData, ImageData]:
    """(training subset, test images) for the job's recipe; the subset is the first ``images`` of a
    seed-0 permutation of the training split, as in the ranking benchmark."""
    e = spec.evaluator
    r = e.train.recipe
    train = load_once(e.data, split="train", data_dir=e.data_dir)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    if len(train) < r.images + 1:
        raise SpecError(
            "evaluator.train.recipe.images", f"{r.images} asked, {e.data} has {len(train)} training images; ask fewer"
        )
    test = _test_split(e)
    if test is None:  # one folder of images: hold out images the subset never contains
        test = train.subset(order[r.images : r.images + (r.test_images or HELD_OUT_DEFAULT)])
    elif r.test_images is not None:
        test = test.subset(range(min(r.test_images, len(test))))
    return train.subset(order[: r.images]), test


def _test_split(e: ProxyEvaluatorSpec) -> ImageData | None:
    if e.data == "fashion-mnist":
        return load_once(e.data, split="test", data_dir=e.data_dir)
    folder = Path(e.data).expanduser()
    return load_once(str(folder), split="test") if (folder / "test").is_dir() else None


def dense_sets(spec: JobSpec) -> tuple[Any, Any]:
    """(training subset, test set) of a detection or segmentation job: its folder's ``train`` and
    ``val`` splits (``nas.tasks.datasets``; the generated scenes for ``fashion-mnist-scenes``), at the
    evaluator's resolution, the subset drawn as ``measurement_sets`` draws it."""
    from nas.tasks.datasets import load_detection, load_segmentation
    from nas.tasks.scenes import dataset_path

    e = spec.evaluator
    r = e.train.recipe
    load = load_detection if spec.task == "detection" else load_segmentation
    root = dataset_path(e.data, data_dir=e.data_dir)
    train = load(root, "train", resolution=e.resolution)
    if len(train) < r.images:
        raise SpecError(
            "evaluator.train.recipe.images", f"{r.images} asked, {e.data} has {len(train)} training images; ask fewer"
        )
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    # the val images normalised as the training images are: the network sees one preprocessing
    test = load(root, "val", resolution=e.resolution, limit=r.test_images, stats=(train.mean, train.std))
    same_classes(train, test)
    return train.subset(order[: r.images]), test


def same_classes(train: Any, val: Any) -> None:
    """A folder's splits number their classes alike (by each split's own category list), or its
    metric would compare one class's predictions with another's labels."""
    if train.classes != val.classes:
        raise SpecError(
            "evaluator.data",
            f"the val split's classes {list(val.classes)} are not the train split's {list(train.classes)} "
            "(same names, same order); list the same categories in both",
        )


def check_dense_data(spec: JobSpec) -> None:
    """A dense job's own folder read whole (at a small size) as its trainings will read it, so a
    bad annotation is the spec's error (``evaluator.data``, 422 over HTTP) before the job exists."""
    if spec.task not in DENSE_TASKS or spec.evaluator.data == "fashion-mnist-scenes":
        return
    from nas.tasks.datasets import AnnotationError, load_detection, load_segmentation

    load = load_detection if spec.task == "detection" else load_segmentation
    splits = []
    for split in ("train", "val"):
        try:
            splits.append(load(spec.evaluator.data, split, resolution=16))
        except (AnnotationError, FileNotFoundError) as err:  # DataNotFoundError: no such folder or split
            raise SpecError("evaluator.data", f"{split} split: {err}") from err
    same_classes(*splits)
    if splits[0].num_classes != spec.num_classes:
        raise SpecError(
            "num_classes",
            f"{spec.evaluator.data} has {splits[0].num_classes} classes"
            f"{' (the background included)' if spec.task == 'segmentation' else ''}, the job's networks "
            f"{spec.num_classes}; set num_classes: {splits[0].num_classes}",
        )


def training_sets(spec: JobSpec) -> tuple[Any, Any]:
    """``measurement_sets`` (``dense_sets`` for a dense task) after checking that the job can train at
    all; a ``SpecError`` names the field."""
    if not hasattr(spec.evaluator, "train"):
        raise SpecError("evaluator", "only the proxy evaluator trains candidates; a plug-in measures its own")
    train_set, test_set = dense_sets(spec) if spec.task in DENSE_TASKS else measurement_sets(spec)
    if train_set.num_classes != spec.num_classes:
        raise SpecError(
            "num_classes",
            f"{spec.evaluator.data} has {train_set.num_classes} classes, the job's networks "
            f"{spec.num_classes}; make them agree to train candidates, or set evaluator.train: 0",
        )
    return train_set, test_set


def rung_steps(total: int, shares: Sequence[float]) -> list[int]:
    """The steps at which a training is scored (``Training.rungs``: shares of the recipe's ``total``
    steps), increasing, the last one ``total``."""
    return sorted({max(1, min(total, round(total * share))) for share in shares} | {total})


class AccuracyMeter:
    """``meter(arch) -> (accuracy, state_dict bytes)``, a full training; ``meter.through_rungs(arch,
    bars) -> (rungs, Scored or None)``, successive halving's. Built once per worker (the
    data loads here).

    ``through_rungs``: the candidate trains through the job's rungs (``Training.rungs``), one run: the recipe's cosine
    spans all its steps, so the accuracy at the last rung is the one a training without rungs
    measures. Each rung states its steps, of how many, the accuracy there and the seconds the
    training had run (scoring included). At each earlier rung it is scored on the test images, and stops there if below that
    rung's bar (``bars[i]``, None: go on); a stopped training keeps no weights. A full training is
    ``scored``: FP32 and INT8."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec
        self.train_set, self.test_set = training_sets(spec)
        self.recipe = trainer_recipe(spec.evaluator, spec.seed)
        self.steps = rung_steps(self.recipe.steps, spec.evaluator.train.rungs)
        self.int8 = int8_recipe(spec)
        self.metric = get_task(spec.task).metric
        # a GPU only where the job reserved one (Ray then shows this worker its share alone): a job
        # process, or a worker that asked none, never trains on a GPU it happens to see
        gpu = spec.workers.gpus_per_worker > 0 and torch.cuda.is_available()
        self.device = torch.device("cuda" if gpu else "cpu")

    def __call__(self, arch: ArchConfig) -> tuple[float, bytes]:
        _, result = self.through_rungs(arch)
        return result.accuracy, result.weights

    def through_rungs(
        self, arch: ArchConfig, bars: Sequence[float | None] | None = None
    ) -> tuple[list[dict[str, Any]], Scored | None]:
        torch.manual_seed(self.spec.seed)  # the initialisation the proxies scored, and the benchmark's
        model = build_model(arch, num_classes=self.spec.num_classes, img_size=self.recipe.resolution).to(self.device)
        trainer = self._trainer(model)
        total, rungs, start = self.recipe.steps, [], time.perf_counter()
        for i, steps in enumerate(self.steps[:-1]):
            trainer.advance(steps - trainer.step)
            measured = self.measure(model)
            accuracy = measured.pop(self.metric)
            rungs.append({"steps": steps, "of": total, "accuracy": accuracy, **measured, "seconds": _since(start)})
            bar = bars[i] if bars is not None and i < len(bars) else None
            if bar is not None and accuracy < bar:
                return rungs, None
        trainer.advance(total - trainer.step)
        result = self.scored(model)
        rungs.append(
            {"steps": total, "of": total, "accuracy": result.accuracy, **result.extra, "seconds": _since(start)}
        )
        return rungs, result

    def _trainer(self, model: torch.nn.Module) -> Any:
        if self.spec.task in DENSE_TASKS:
            from nas.tasks.training import DenseTrainer

            return DenseTrainer(model, self.train_set, self.recipe)
        return Trainer(model, self.train_set, self.recipe)

    def measure(self, model: torch.nn.Module) -> dict[str, float]:
        """The task's metric (``nas.tasks``: top-1, mAP, mIoU) and those measured beside it, on the test set."""
        if self.spec.task in DENSE_TASKS:
            from nas.tasks.training import evaluate_dense

            return {k: float(v) for k, v in evaluate_dense(model, self.test_set).items()}
        return {self.metric: evaluate(model, self.test_set, resolution=self.recipe.resolution)}

    def scored(self, model: torch.nn.Module) -> Scored:
        """A fully trained model's result: the task's metric on the test set (and those beside it),
        its weights, and, for a classifier, the same network quantized to INT8 (``nas.int8``) scored
        on the same images. A quantization that fails leaves the INT8 figure to the predictor and
        says why; the FP32 result stands."""
        extra = self.measure(model)
        accuracy = extra.pop(self.metric)
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
        result = Scored(accuracy, buffer.getvalue(), precision=_precision(self.device), extra=extra)
        if self.int8 is None:
            return result
        from nas.int8 import calibration_set, onnx_accuracy, quantize

        provenance = self.int8.describe()
        try:
            onnx = quantize(
                model, calibration_set(self.train_set, self.int8), resolution=self.recipe.resolution, recipe=self.int8
            )
            int8 = onnx_accuracy(onnx, self.test_set, resolution=self.recipe.resolution)
        except Exception as err:
            return replace(result, int8={**provenance, "failed": f"{type(err).__name__}: {err}"[:500]})
        return replace(result, accuracy_int8=int8, int8_onnx=onnx, int8=provenance)


@dataclass(frozen=True)
class Scored:
    """A fully trained candidate, measured: its FP32 metric and its weights (trained in ``precision``),
    and its INT8 top-1 on the same images with the INT8 model and how it was quantized."""

    accuracy: float  # the task's metric (nas.tasks): top-1, mAP@[.5:.95] or mIoU, 0-1
    weights: bytes
    precision: str = "float32"
    extra: dict[str, float] = field(default_factory=dict)  # measured beside it (the task's extra: map50, ...)
    accuracy_int8: float | None = None
    int8_onnx: bytes | None = None
    int8: dict[str, Any] | None = None  # nas.int8.Int8Recipe.describe(), with "failed" where it failed


def int8_recipe(spec: JobSpec) -> Any:
    """The job's INT8 recipe (``nas.int8.Int8Recipe``), None where it measures no INT8."""
    settings = spec.evaluator.train.int8
    if not settings.measure or spec.task in DENSE_TASKS:  # INT8 is measured on classifiers so far
        return None
    from nas.int8 import Int8Recipe

    return Int8Recipe(calibration_images=settings.calibration_images, seed=spec.seed, scope=settings.scope)


def _precision(device: torch.device) -> str:
    """What a training computed in (``nas.proxies._training``): bfloat16 autocast on CUDA."""
    return "bfloat16 autocast (CUDA), scored in float32" if device.type == "cuda" else "float32"


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)
