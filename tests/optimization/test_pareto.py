"""Exact checks of the non-dominated front and hypervolume."""

from __future__ import annotations

import numpy as np
import pytest

from neuroptimus.optimization.scoring.pareto import hypervolume, non_dominated


def test_non_dominated_on_a_hand_made_set():
    errors = np.array(
        [
            [1.0, 4.0],  # front
            [2.0, 2.0],  # front
            [4.0, 1.0],  # front
            [3.0, 3.0],  # dominated by [2, 2]
            [2.0, 2.0],  # duplicate of a front point: kept
            [4.0, 4.0],  # dominated
            [1.0, 5.0],  # dominated by [1, 4] (equal first, worse second)
        ]
    )
    assert non_dominated(errors).tolist() == [True, True, True, False, True, False, False]
    assert non_dominated(np.empty((0, 3))).shape == (0,)
    assert non_dominated(np.array([[5.0, 5.0, 5.0]])).tolist() == [True]


def test_non_dominated_matches_brute_force():
    rng = np.random.default_rng(0)
    errors = rng.integers(0, 5, size=(60, 3)).astype(float)
    expected = [
        not any(np.all(other <= row) and np.any(other < row) for other in errors) for row in errors
    ]
    assert non_dominated(errors).tolist() == expected


def test_hypervolume_of_staircases():
    reference = np.array([4.0, 4.0])
    # One point: a 3 × 2 rectangle.
    assert hypervolume(np.array([[1.0, 2.0]]), reference) == pytest.approx(6.0)
    # Two points: union of 3×1 and 1×3 rectangles overlapping in 1×1... computed by hand:
    # [1,3] covers x∈[1,4], y∈[3,4] → 3; [3,1] covers x∈[3,4], y∈[1,4] → 3; overlap 1.
    assert hypervolume(np.array([[1.0, 3.0], [3.0, 1.0]]), reference) == pytest.approx(5.0)
    # A point outside the reference box adds nothing.
    assert hypervolume(np.array([[1.0, 2.0], [5.0, 0.0]]), reference) == pytest.approx(6.0)
    assert hypervolume(np.empty((0, 2)), reference) == 0.0
    cube = hypervolume(np.array([[0.0, 0.0, 0.0]]), np.array([1.0, 2.0, 3.0]))
    assert cube == pytest.approx(6.0)
    assert hypervolume(np.array([[3.0], [1.5]]), np.array([4.0])) == pytest.approx(2.5)


def test_merging_into_a_front_equals_filtering_everything():
    from neuroptimus.optimization.scoring.pareto import merge_front

    rng = np.random.default_rng(4)
    for _ in range(20):
        front = rng.integers(0, 6, size=(30, 3)).astype(float)
        front = front[non_dominated(front)]
        new = rng.integers(0, 6, size=(15, 3)).astype(float)
        stays, joins = merge_front(front, new)
        merged = np.concatenate([front[stays], new[joins]])
        everything = np.concatenate([front, new])
        expected = everything[non_dominated(everything)]
        assert sorted(map(tuple, merged)) == sorted(map(tuple, expected))
