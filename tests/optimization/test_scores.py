"""Exact checks of the benchmark scores."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.scores import convergence_curve, convergence_score, final_score


def test_curve_samples_the_cumulative_minimum_once_per_generation():
    totals = np.array([5.0, 7.0, 3.0, 4.0, 6.0, 1.0])
    assert convergence_curve(totals, 2, 6).tolist() == [5.0, 3.0, 1.0]
    assert convergence_curve(totals, 3, 6).tolist() == [3.0, 1.0]


def test_a_run_that_stopped_early_keeps_its_best_to_the_budget():
    assert convergence_curve(np.array([4.0, 2.0, 3.0]), 2, 8).tolist() == [2.0, 2.0, 2.0, 2.0]


def test_scores():
    curve = np.array([100.0, 10.0, 1.0, 0.01])
    assert convergence_score(curve) == pytest.approx(2 + 1 + 0 - 2)
    assert convergence_score(np.array([0.0, 1.0])) == pytest.approx(-12.0)
    assert final_score(np.array([3.0, 0.5, 2.0])) == 0.5


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="step"):
        convergence_curve(np.ones(3), 0, 3)
    with pytest.raises(ValueError, match="without evaluations"):
        convergence_curve(np.ones(0), 1, 3)
