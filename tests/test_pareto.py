import itertools

import numpy as np
import pytest

from nas.objectives import loss_vector
from nas.pareto import add_to_front, dominates, hypervolume, non_dominated


def brute_front(points):
    return {i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)}


def test_dominance():
    assert dominates((1, 1), (1, 2)) and not dominates((1, 2), (1, 2)) and not dominates((0, 3), (1, 2))


@pytest.mark.parametrize("m", [2, 3, 4])
def test_incremental_front_equals_the_batch_front(m):
    rng = np.random.default_rng(m)
    points = [tuple(p) for p in rng.integers(0, 6, size=(300, m)).astype(float)]  # ties included
    front: dict[int, tuple] = {}
    for i, p in enumerate(points):
        joins, pushed = add_to_front(front, i, p)
        for k in pushed:
            del front[k]
        if joins:
            front[i] = p
    assert set(front) == brute_front(points)
    assert set(np.flatnonzero(non_dominated(np.array(points)))) == brute_front(points)


def test_hypervolume_2d_exact():
    # staircase: (1,3), (2,2), (3,1) with reference (4,4): 3 + 2 + 1 = 6
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (4, 4)) == pytest.approx(6.0)
    assert hypervolume([(1, 3), (2, 2), (3, 1), (3, 3)], (4, 4)) == pytest.approx(6.0)  # a dominated point adds 0
    assert hypervolume([(5, 0)], (4, 4)) == 0.0  # outside the reference box
    assert hypervolume([], (4, 4)) == 0.0


def test_hypervolume_3d_matches_a_grid_count():
    rng = np.random.default_rng(0)
    pts = rng.integers(0, 8, size=(12, 3))
    ref = (8, 8, 8)
    cells = sum(
        any(all(p[k] <= c[k] for k in range(3)) for p in pts) for c in itertools.product(range(8), repeat=3)
    )  # unit cells [c, c+1) dominated by some point
    assert hypervolume(pts.tolist(), ref) == pytest.approx(cells)


def test_loss_vector_turns_maximised_objectives_into_losses():
    assert loss_vector({"accuracy": 0.9, "latency_ms": 2.0}, ["accuracy", "latency_ms"]) == (-0.9, 2.0)
