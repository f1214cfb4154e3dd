"""Accuracy proxies: zero-cost scores of an initialised network, their learned combination
(``default``), and short training with successive halving.

    from nas.proxies import score
    score(model, inputs, targets, names=["synflow", "zico", "default"], seed=0)

Higher is better for every score. ``docs/proxy_ranking.md`` measures how well each ranks trained
networks of the default space, and what each costs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from nas.proxies._default import DEFAULT, DefaultProxy, load_default
from nas.proxies._training import HalvingResult, Trainer, TrainRecipe, evaluate, short_training, successive_halving
from nas.proxies._zero_cost import PROXIES, Proxy, ProxyError

DEFAULT_NAME = "default"


def proxy_names() -> list[str]:
    """Every name ``score`` accepts."""
    return [*PROXIES, DEFAULT_NAME]


def needs_data(names: Iterable[str]) -> bool:
    """Whether scoring ``names`` needs real images (False: the input shape is enough)."""
    return any(PROXIES[n].needs_data for n in _expand(_check_names(names)))


def score(
    model: nn.Module,
    inputs: torch.Tensor | Sequence[int],
    targets: torch.Tensor | None = None,
    names: Iterable[str] = (DEFAULT_NAME,),
    seed: int = 0,
) -> dict[str, float]:
    """Score an initialised classifier on one batch; higher is better for every name.

    ``inputs`` is a (B, C, H, W) batch of real images with ``targets`` their class indices, or, for
    data-free proxies only (``synflow``, ``dss``, ``zen``, ``params``, ``flops``), just the batch shape.
    Each proxy runs on a copy of ``model`` under ``torch.manual_seed(seed)``, so the model is left
    as it was and the scores repeat exactly. A proxy that cannot score the model raises
    ``ProxyError`` saying why.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    wanted = _check_names(names)
    parts = _expand(wanted)
    x, y = _check_batch(inputs, targets, [n for n in parts if PROXIES[n].needs_data])
    first = next(model.parameters(), None)
    if first is not None:  # score where the model lives
        x, y = x.to(first.device), y.to(first.device) if y is not None else None
    values = {name: _run(PROXIES[name], model, x, y, seed) for name in parts}
    if DEFAULT_NAME in wanted:
        values[DEFAULT_NAME] = load_default().combine(values)
    return {name: values[name] for name in wanted}


def _check_names(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise ValueError(f"names: give at least one proxy; known: {', '.join(proxy_names())}")
    unknown = [n for n in wanted if n not in PROXIES and n != DEFAULT_NAME]
    if unknown:
        raise ValueError(f"names: unknown proxy {', '.join(map(repr, unknown))}; known: {', '.join(proxy_names())}")
    return wanted


def _expand(names: list[str]) -> list[str]:
    """The zero-cost proxies to run: those named, plus the default's components."""
    parts = [n for n in names if n != DEFAULT_NAME]
    if DEFAULT_NAME in names:
        parts += [n for n in load_default().components if n not in parts]
    return parts


def _check_batch(
    inputs: torch.Tensor | Sequence[int], targets: torch.Tensor | None, data_proxies: list[str]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    if not isinstance(inputs, torch.Tensor):
        shape = tuple(int(v) for v in inputs)
        if len(shape) != 4 or min(shape) < 1:
            raise ValueError(f"inputs: a batch shape must be (B, C, H, W) with every size >= 1, got {shape}")
        if data_proxies:
            raise ProxyError(
                f"{', '.join(data_proxies)}: need real images and labels, not just a shape; load a batch with "
                "nas.data.load_dataset(...).batch(...) or name only data-free proxies "
                f"({', '.join(n for n, p in PROXIES.items() if not p.needs_data)})"
            )
        return torch.zeros(shape), None
    if inputs.ndim != 4:
        raise ValueError(f"inputs: expected a (B, C, H, W) batch, got shape {tuple(inputs.shape)}")
    if data_proxies:
        if targets is None:
            raise ValueError(f"targets: {', '.join(data_proxies)} need the batch's class labels")
        if targets.shape != (len(inputs),) or targets.is_floating_point():
            raise ValueError(
                f"targets: expected {len(inputs)} integer class labels, got {targets.dtype} {tuple(targets.shape)}"
            )
    return inputs.float(), targets


def _run(proxy: Proxy, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None, seed: int) -> float:
    torch.manual_seed(seed)
    clone = copy.deepcopy(model).float().train()
    clone.zero_grad(set_to_none=True)
    try:
        value = proxy.fn(clone, inputs, targets)
    except ProxyError:
        raise
    except RuntimeError as e:  # shape mismatches and the like, from inside the model
        raise ProxyError(f"{proxy.name}: the model failed on inputs of shape {tuple(inputs.shape)}: {e}") from e
    if not math.isfinite(value):
        raise ProxyError(f"{proxy.name}: the score is {value} on this model")
    return value


__all__ = [
    "DEFAULT",
    "DEFAULT_NAME",
    "PROXIES",
    "DefaultProxy",
    "HalvingResult",
    "Proxy",
    "ProxyError",
    "TrainRecipe",
    "Trainer",
    "evaluate",
    "needs_data",
    "proxy_names",
    "score",
    "short_training",
    "successive_halving",
]
