"""Pareto fronts and hypervolumes over loss vectors (every coordinate minimised; see
``nas.objectives.loss_vector``). Pure functions: the store keeps fronts up to date with them one
arrival at a time, so a new result costs O(front), never O(candidates)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from optuna._hypervolume import compute_hypervolume  # exact (WFG); Optuna's own, pinned to 5.x

Loss = Sequence[float]


def dominates(a: Loss, b: Loss) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def add_to_front(front: Mapping[int, Loss], key: int, loss: Loss) -> tuple[bool, list[int]]:
    """Whether ``loss`` joins ``front`` (id -> loss), and the ids it pushes off."""
    if any(dominates(other, loss) for other in front.values()):
        return False, []
    return True, [k for k, other in front.items() if dominates(loss, other)]


def non_dominated(losses: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``losses`` (n, m) that no other row dominates.

    Sorts by the first objective so each point is compared only with the current front: O(n * front).
    """
    n = len(losses)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort(losses.T[::-1])  # lexicographic: a point can only be dominated by earlier ones
    front: list[int] = []
    for i in order:
        p = losses[i]
        if front:
            f = losses[front]
            if np.any(np.all(f <= p, axis=1) & np.any(f < p, axis=1)):
                continue
        front.append(i)
        mask[i] = True
    return mask


def hypervolume(losses: Sequence[Loss], reference: Loss) -> float:
    """Volume dominated by ``losses`` and bounded by ``reference``; points not strictly better than
    the reference in every objective add nothing."""
    ref = np.asarray(reference, dtype=float)
    pts = np.asarray(losses, dtype=float).reshape(-1, len(ref))
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    return float(compute_hypervolume(pts, ref))
