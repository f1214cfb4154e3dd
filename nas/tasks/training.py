"""Training and scoring the dense networks: detection and semantic segmentation.

``DenseTrainer`` is ``nas.proxies._training.Trainer`` for a dense network: the same ``TrainRecipe``
(AdamW, warm-up, then constant or cosine), the same seeded batch order, the same devices and
precision (bfloat16 autocast on CUDA, float32 on the CPU), so ``advance(25)`` twice is
``advance(50)``; only the loss (``nas.tasks.detection`` / ``nas.tasks.segmentation``) and a seeded
horizontal flip differ. ``evaluate_dense`` scores a network on a whole set by ``model.task``:
COCO mAP (``map``, ``map50``) or mIoU (``miou``, ``pixel_accuracy``), through ``nas.tasks.metrics``.

``proxy_batch`` and ``as_classifier`` are how a zero-cost proxy (``nas.proxies.score``) sees a dense
candidate: the whole network (backbone, neck, head) as an image classifier whose logits are its
class outputs averaged over every cell or pixel, on the task's images each labelled by its dominant
class. ``benchmarks/dense_ranking.py`` measures how well that ranks trained networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from nas.proxies._training import Trainer, TrainRecipe, _device_of, _placed, _precision
from nas.tasks import DENSE_TASKS, get_task
from nas.tasks.detection import CLS, decode, detection_loss
from nas.tasks.segmentation import IGNORE, predict, segmentation_loss

DENSE = DENSE_TASKS  # nas.tasks


def task_of(model: nn.Module) -> str:
    """A dense network's task (``model.task``); a clear error for anything else."""
    task = getattr(model, "task", None)
    if task not in DENSE:
        raise ValueError(
            f"model: expected a dense network (model.task in {DENSE}), got task {task!r}; "
            "build it with search_spaces.build_model from a detection or segmentation arch"
        )
    return task


def dense_loss(model: nn.Module, outputs: Any, targets: Any) -> torch.Tensor:
    """The task's training loss of ``outputs`` (the network's) against the batch's ``targets``."""
    if task_of(model) == "detection":
        return detection_loss(outputs, targets, model.strides)[0]
    return segmentation_loss(outputs, targets)


def hflip(x: torch.Tensor, targets: Any, flip: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """The images where ``flip`` (a B bool tensor) is set mirrored left-right, their targets alike
    (detection: a list of {"boxes" xyxy pixels, "labels"}; segmentation: a B x H x W mask)."""
    if not bool(flip.any()):
        return x, targets
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    if isinstance(targets, torch.Tensor):
        return x, torch.where(flip.view(-1, 1, 1), targets.flip(-1), targets)
    width = x.shape[-1]
    flipped = []
    for target, f in zip(targets, flip.tolist(), strict=True):
        if f:
            b = target["boxes"]
            target = {**target, "boxes": torch.stack([width - b[:, 2], b[:, 1], width - b[:, 0], b[:, 3]], dim=1)}
        flipped.append(target)
    return x, flipped


def _to(targets: Any, device: torch.device) -> Any:
    if isinstance(targets, torch.Tensor):
        return targets.to(device)
    return [{k: v.to(device) for k, v in t.items()} for t in targets]


class DenseTrainer(Trainer):
    """One dense network under one recipe; ``advance(n)`` trains n more steps, ``metrics(data)`` scores it.

    ``data`` is a ``DetectionSet`` or ``SegmentationSet`` (``nas.tasks.datasets``) loaded at
    ``recipe.resolution``; ``flip`` mirrors each training image with probability 1/2 (seeded).
    """

    def __init__(self, model: nn.Module, data: Any, recipe: TrainRecipe, *, flip: bool = True) -> None:
        task_of(model)
        super().__init__(model, data, recipe)
        self.flip = flip
        self._flips = torch.Generator().manual_seed(recipe.seed + 1)  # apart from the batch order's draws

    def _loss(self) -> torch.Tensor:
        r = self.recipe
        x, targets = self.data.batch(self._next_indices())
        if x.shape[-1] != r.resolution or x.shape[-2] != r.resolution:
            raise ValueError(
                f"data: images are {x.shape[-2]}x{x.shape[-1]} but recipe.resolution is {r.resolution}; "
                f"load the set with resolution={r.resolution}"
            )
        if self.flip:
            x, targets = hflip(x, targets, torch.rand(len(x), generator=self._flips) < 0.5)
        x, targets = _placed(x, self._device), _to(targets, self._device)
        with _precision(self._device):
            outputs = self.model(x)
        return dense_loss(self.model, outputs, targets)  # in float32: the losses cast the outputs up

    def metrics(self, data: Any) -> dict[str, float]:
        return evaluate_dense(self.model, data)

    def accuracy(self, data: Any) -> float:
        """The task's quality metric (``map`` or ``miou``, 0-1), as ``Trainer.accuracy`` gives top-1."""
        values = self.metrics(data)
        return values[get_task(task_of(self.model)).metric]


@torch.no_grad()
def evaluate_dense(model: nn.Module, data: Any, *, batch_size: int = 64) -> dict[str, float]:
    """The task's metrics of ``model`` on all of ``data``, in eval mode, in float32: {"map", "map50"}
    (COCO, detections from ``nas.tasks.detection.decode``) or {"miou", "pixel_accuracy"}."""
    from nas.tasks.metrics import SegmentationMeter, detection_map

    task = task_of(model)
    was_training, device = model.training, _device_of(model)
    model.eval()
    predictions: list[dict[str, torch.Tensor]] = []
    truths: list[dict[str, torch.Tensor]] = []
    meter = SegmentationMeter(data.num_classes, ignore_index=IGNORE) if task == "segmentation" else None
    for start in range(0, len(data), batch_size):
        x, targets = data.batch(torch.arange(start, min(start + batch_size, len(data))))
        outputs = model(_placed(x, device))
        if meter is not None:
            meter.update(predict(outputs, targets.shape[-2:]).cpu(), targets)
        else:
            found = decode(outputs, model.strides, tuple(x.shape[-2:]))
            predictions += [{k: v.cpu() for k, v in p.items()} for p in found]
            truths += list(targets)
    model.train(was_training)
    if meter is not None:
        return meter.compute()
    return detection_map(predictions, truths, data.num_classes)


def dominant_labels(targets: Any, task: str) -> torch.Tensor:
    """Each image's dominant class, -1 where it has none: the largest box's label (detection), the
    most frequent non-background class of the mask (segmentation, classes 1..K-1)."""
    if task == "detection":
        out = []
        for t in targets:
            b = t["boxes"].reshape(-1, 4)
            area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            out.append(int(t["labels"][area.argmax()]) if len(b) else -1)
        return torch.tensor(out, dtype=torch.long)
    masks = targets.long().flatten(1)
    valid = (masks > 0) & (masks != IGNORE)
    classes = int(masks[valid].max()) + 1 if bool(valid.any()) else 1
    counts = torch.zeros(len(masks), classes, dtype=torch.long)
    counts.scatter_add_(1, torch.where(valid, masks, 0), valid.long())
    counts[:, 0] = 0
    return torch.where(counts.sum(1) > 0, counts.argmax(1), -1)


def proxy_batch(data: Any, *, batch: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(images B x 3 x S x S normalised, labels B) for a zero-cost proxy: ``batch`` images of a dense
    set drawn in a seeded order, each labelled by its dominant class (``dominant_labels``); images
    with no object are passed over."""
    task = "segmentation" if isinstance(data.batch([0])[1], torch.Tensor) else "detection"
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    xs, ys = [], []
    for start in range(0, len(order), batch):
        x, targets = data.batch(order[start : start + batch])
        labels = dominant_labels(targets, task)
        xs.append(x[labels >= 0])
        ys.append(labels[labels >= 0])
        if sum(len(y) for y in ys) >= batch:
            break
    x, y = torch.cat(xs)[:batch], torch.cat(ys)[:batch]
    if len(y) < 2:
        raise ValueError(f"data: fewer than 2 of its {len(data)} images hold an object; a proxy needs a batch")
    return x, y


class ClassifierView(nn.Module):
    """A dense network seen as an image classifier (B x 3 x S x S -> B x K logits): its class outputs
    averaged over every cell of every level (detection) or every pixel (segmentation)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.task = task_of(model)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if self.task == "segmentation":
            return out.mean((2, 3))
        cls = [o[:, CLS].flatten(2) for o in out]
        return torch.cat(cls, dim=2).mean(2)


def as_classifier(model: nn.Module) -> nn.Module:
    """``ClassifierView(model)``: what ``nas.proxies.score`` scores for a dense candidate."""
    return ClassifierView(model)


def short_dense_training(
    model: nn.Module, train_set: Any, test_set: Any, recipe: TrainRecipe, *, checkpoints: Sequence[int] = ()
) -> dict[str, Any]:
    """Train ``model`` (in place) for ``recipe.steps`` steps and score it on ``test_set``: the task's
    metrics at the end, and at each of ``checkpoints`` (steps) on the way as {"at": {steps: metrics}}."""
    trainer = DenseTrainer(model, train_set, recipe)
    at: dict[int, dict[str, float]] = {}
    for steps in sorted(s for s in set(checkpoints) if 0 < s < recipe.steps):
        trainer.advance(steps - trainer.step)
        at[steps] = trainer.metrics(test_set)
    trainer.advance(recipe.steps - trainer.step)
    return {**trainer.metrics(test_set), "at": at}
