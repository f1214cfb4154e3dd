"""The short-training proxy: a fixed small training budget at a low resolution, scored by held-out
accuracy, and successive halving over a batch of candidates (train all briefly, continue the best).

The recipe's learning rate is constant after warm-up unless ``decay_steps`` is set, so training
for 25 steps and then 25 more is the same run as training for 50: successive halving continues a
candidate instead of restarting it.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from nas.data import ImageData


@dataclass(frozen=True)
class TrainRecipe:
    """A fixed training recipe (AdamW, linear warm-up, then constant or cosine)."""

    steps: int = 100
    batch_size: int = 64
    resolution: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 10
    decay_steps: int | None = None  # cosine to zero over this many steps; None: constant after warm-up
    label_smoothing: float = 0.0
    held_out: int = 2000  # images split off the training data to score on
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "resolution", "held_out"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.decay_steps is None:
            return self.lr
        t = min(1.0, (step - self.warmup_steps) / max(1, self.decay_steps - self.warmup_steps))
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * t))


class Trainer:
    """One model under one recipe; ``advance(n)`` trains n more steps, ``accuracy`` scores it.

    On a CUDA device it trains in mixed precision (bfloat16 autocast) with channels-last tensors;
    on the CPU it computes in float32 exactly as it always has, so stored accuracies reproduce.
    """

    def __init__(self, model: nn.Module, data: ImageData, recipe: TrainRecipe) -> None:
        self.model, self.data, self.recipe = model, data, recipe
        self.step = 0
        self._device = _device_of(model)
        if self._device.type == "cuda":
            model.to(memory_format=torch.channels_last)  # convolutions' fast layout on tensor cores
        self._generator = torch.Generator().manual_seed(recipe.seed)
        self._order = torch.empty(0, dtype=torch.long)
        self._optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        torch.manual_seed(recipe.seed)  # dropout / drop-path draws

    def advance(self, steps: int) -> None:
        self.model.train()
        for _ in range(steps):
            for group in self._optimizer.param_groups:
                group["lr"] = self.recipe.lr_at(self.step)
            loss = self._loss()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training diverged at step {self.step} (loss {loss.item()})")
            self._optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._optimizer.step()
            self.step += 1

    def _loss(self) -> torch.Tensor:
        """The next batch's training loss: cross-entropy with the recipe's label smoothing (a
        subclass trains another task by its own loss, ``nas.tasks.training.DenseTrainer``)."""
        r = self.recipe
        x, y = self.data.batch(self._next_indices(), resolution=r.resolution)
        x, y = _placed(x, self._device), y.to(self._device)
        with _precision(self._device):
            return F.cross_entropy(self.model(x), y, label_smoothing=r.label_smoothing)

    def accuracy(self, data: ImageData) -> float:
        return evaluate(self.model, data, resolution=self.recipe.resolution)

    def _next_indices(self) -> torch.Tensor:
        b = self.recipe.batch_size
        if len(self._order) < b:  # a fresh epoch, seeded
            self._order = torch.cat([self._order, torch.randperm(len(self.data), generator=self._generator)])
        idx, self._order = self._order[:b], self._order[b:]
        return idx


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageData, *, resolution: int, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on all of ``data``, in eval mode, in float32."""
    was_training, device = model.training, _device_of(model)
    model.eval()
    correct = 0
    for start in range(0, len(data), batch_size):
        x, y = data.batch(torch.arange(start, min(start + batch_size, len(data))), resolution=resolution)
        # float32 on every device: a measured accuracy is the FP32 network's, whatever trained it
        correct += (model(_placed(x, device)).argmax(-1).cpu() == y).sum().item()
    model.train(was_training)
    return correct / len(data)


def _device_of(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA (float32's range: no loss scaling); on the CPU, float32 as before."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def _placed(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of images on ``device``: channels-last on CUDA (as its model is), unchanged on the CPU."""
    if device.type == "cuda" and x.dim() == 4:
        return x.to(device, memory_format=torch.channels_last, non_blocking=True)
    return x.to(device)


def short_training(model: nn.Module, data: ImageData, recipe: TrainRecipe | None = None) -> float:
    """Held-out accuracy after ``recipe.steps`` steps on a copy of ``model`` (the original is untouched).

    ``recipe.held_out`` images, drawn under ``recipe.seed``, are split off ``data`` to score on.
    """
    recipe = recipe or TrainRecipe()
    train_set, held_out = data.split(recipe.held_out, seed=recipe.seed)
    trainer = Trainer(copy.deepcopy(model), train_set, recipe)
    trainer.advance(recipe.steps)
    return trainer.accuracy(held_out)


@dataclass(frozen=True)
class HalvingResult:
    """Where a candidate stopped: the rung it reached, the steps it trained, its held-out accuracy there."""

    rung: int
    steps: int
    accuracy: float

    @property
    def sort_key(self) -> tuple[int, float]:
        """Later rungs outrank earlier ones; accuracy orders a rung."""
        return (self.rung, self.accuracy)


def successive_halving(
    models: Mapping[Hashable, nn.Module],
    data: ImageData,
    *,
    budgets: Iterable[int] = (25, 50, 100),
    keep: float = 0.5,
    recipe: TrainRecipe | None = None,
) -> dict[Hashable, HalvingResult]:
    """Train every candidate to ``budgets[0]`` steps, keep the best ``keep`` fraction, continue them to
    the next budget, and so on. Models are copied; each candidate sees the same batches.
    """
    recipe = recipe or TrainRecipe()
    train_set, held_out = data.split(recipe.held_out, seed=recipe.seed)
    trainers = {key: Trainer(copy.deepcopy(m), train_set, recipe) for key, m in models.items()}

    def accuracy_at(key: Hashable, budget: int) -> float:
        trainers[key].advance(budget - trainers[key].step)
        return trainers[key].accuracy(held_out)

    return halving_schedule(list(models), budgets, keep, accuracy_at, drop=trainers.pop)


def halving_schedule(
    keys: list[Hashable],
    budgets: Iterable[int],
    keep: float,
    accuracy_at: Callable[[Hashable, int], float],
    drop: Callable[[Hashable], object] = lambda key: None,
) -> dict[Hashable, HalvingResult]:
    """Successive halving over ``keys``: ``accuracy_at(key, budget)`` trains (or looks up) a candidate
    at a budget; ``drop(key)`` is told when a candidate is eliminated, to free it."""
    budgets = list(budgets)
    if not budgets or budgets != sorted(set(budgets)) or budgets[0] < 1:
        raise ValueError(f"budgets: must be increasing positive step counts, got {budgets}")
    if not 0 < keep < 1:
        raise ValueError(f"keep: must be in (0, 1), got {keep}")
    results: dict[Hashable, HalvingResult] = {}
    alive = list(keys)
    for rung, budget in enumerate(budgets):
        for key in alive:
            results[key] = HalvingResult(rung, budget, accuracy_at(key, budget))
        if rung + 1 < len(budgets):
            alive.sort(key=lambda k: results[k].accuracy, reverse=True)
            cut = max(1, math.ceil(len(alive) * keep))
            for key in alive[cut:]:
                drop(key)
            alive = alive[:cut]
    return results
