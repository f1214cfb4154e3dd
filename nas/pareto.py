"""Pareto fronts and hypervolumes over loss vectors (every coordinate minimised; see
``nas.objectives.loss_vector``). Pure functions: the store keeps fronts up to date with them one
arrival at a time, so a new result costs O(front), never O(candidates)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from optuna._hypervolume import compute_hypervolume  # exact (WFG); private: tests/test_optuna_pins.py pins it

Loss = Sequence[float]


def dominates(a: Loss, b: Loss) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def add_to_front(front: Mapping[int, Loss], key: int, loss: Loss) -> tuple[bool, list[int]]:
    """Whether ``loss`` joins ``front`` (id -> loss), and the ids it pushes off."""
    if any(dominates(other, loss) for other in front.values()):
        return False, []
    return True, [k for k, other in front.items() if dominates(loss, other)]


def non_dominated(losses: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Boolean mask of the rows of ``losses`` (n, m) that no other row dominates.

    Equal rows share one fate, so the sweep runs on distinct rows. In lexicographic order a row can
    only be dominated by earlier rows: one sweep keeps the front, chunk by chunk, checking each chunk
    against the front so far, then its survivors against each other (domination is transitive, so
    being dominated by any row of the chunk is enough). With three objectives the first is sorted,
    and the front so far is a staircase over the other two: a binary search per row.
    """
    losses = np.asarray(losses, dtype=float)
    if len(losses) == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort(losses.T[::-1])  # lexicographic; faster than np.unique(axis=0)
    ordered = losses[order]
    starts = np.ones(len(ordered), dtype=bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    unique = ordered[starts]
    inverse = np.empty(len(losses), dtype=np.intp)
    inverse[order] = np.cumsum(starts) - 1
    keep_unique = np.zeros(len(unique), dtype=bool)
    front = np.empty((0, unique.shape[1]))
    for start in range(0, len(unique), chunk):
        pts = unique[start : start + chunk]
        alive = ~_dominated_by_front(pts, front)
        alive[alive] = ~_dominated_by(pts[alive], pts[alive]).any(axis=1)
        keep_unique[start : start + chunk] = alive
        front = np.vstack([front, pts[alive]])
    return keep_unique[inverse]


def _dominated_by_front(points: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Whether some row of ``front`` (all lexicographically before ``points``, all distinct from
    them) dominates each point: being no worse everywhere is enough."""
    if len(front) == 0:
        return np.zeros(len(points), dtype=bool)
    if points.shape[1] != 3:
        return _dominated_by(points, front).any(axis=1)
    # the first objective is already no worse: look for a front row no worse in the other two
    order = np.argsort(front[:, 1], kind="stable")
    second, best_third = front[order, 1], np.minimum.accumulate(front[order, 2])
    pos = np.searchsorted(second, points[:, 1], side="right")
    found = pos > 0
    found[found] = best_third[pos[found] - 1] <= points[found, 2]
    return found


def _dominated_by(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """[i, j]: ``others[j]`` dominates ``points[i]``."""
    le = (others[None, :, :] <= points[:, None, :]).all(axis=2)
    lt = (others[None, :, :] < points[:, None, :]).any(axis=2)
    return le & lt


def hypervolume(losses: Sequence[Loss], reference: Loss) -> float:
    """Volume dominated by ``losses`` and bounded by ``reference``; points not strictly better than
    the reference in every objective add nothing."""
    ref = np.asarray(reference, dtype=float)
    pts = np.asarray(losses, dtype=float).reshape(-1, len(ref))
    pts = pts[np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    return float(compute_hypervolume(pts, ref))
