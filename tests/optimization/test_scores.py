"""Exact checks of the benchmark scores."""

from __future__ import annotations

import numpy as np
import pytest

from neuroptimus.optimization.scoring.scores import (
    ZERO_ERROR_LOG10,
    convergence_curve,
    convergence_score,
    evaluations_to_reach,
    final_score,
)


def test_curve_samples_the_cumulative_minimum_once_per_generation():
    totals = np.array([5.0, 7.0, 3.0, 4.0, 6.0, 1.0])
    assert convergence_curve(totals, 2, 6).tolist() == [5.0, 3.0, 1.0]
    assert convergence_curve(totals, 3, 6).tolist() == [3.0, 1.0]


def test_a_run_that_stopped_early_keeps_its_best_to_the_budget():
    assert convergence_curve(np.array([4.0, 2.0, 3.0]), 2, 8).tolist() == [2.0, 2.0, 2.0, 2.0]


def test_scores():
    curve = np.array([100.0, 10.0, 1.0, 0.01])
    assert convergence_score(curve) == pytest.approx(2 + 1 + 0 - 2)
    assert final_score(np.array([3.0, 0.5, 2.0])) == 0.5


def test_convergence_score_has_no_floor():
    """The definition in docs/comparing.md: tiny errors count as they are (the old score
    clamped them at 1e-12, so 1e-20 and 1e-12 scored the same)."""
    assert convergence_score(np.array([1e-20, 1e-30])) == pytest.approx(-50.0, abs=1e-12)
    assert convergence_score(np.array([1e-300])) == pytest.approx(-300.0, abs=1e-12)
    assert convergence_score(np.array([1e-20])) < convergence_score(np.array([1e-12]))


def test_an_exact_zero_counts_as_the_smallest_positive_double():
    assert ZERO_ERROR_LOG10 == pytest.approx(-323.3062153431158, abs=1e-12)
    assert convergence_score(np.array([0.0, 1.0])) == ZERO_ERROR_LOG10
    # monotone: reaching zero never scores worse than any positive error, even a subnormal one
    tiniest = np.finfo(float).smallest_subnormal
    assert convergence_score(np.array([0.0])) <= convergence_score(np.array([tiniest]))
    assert convergence_score(np.array([0.0])) < convergence_score(np.array([1e-300]))


def test_negative_or_nan_errors_have_no_score():
    with pytest.raises(ValueError, match="errors >= 0"):
        convergence_score(np.array([1.0, -1e-3]))
    with pytest.raises(ValueError, match="NaN"):
        convergence_score(np.array([np.nan]))


def test_evaluations_to_reach_a_threshold():
    totals = np.array([5.0, 1e-3, 2.0, 1e-10, 0.0])
    assert evaluations_to_reach(totals, 1e-3) == 2
    assert evaluations_to_reach(totals, 1e-10) == 4  # at or below the threshold
    assert evaluations_to_reach(totals, 1e-11) == 5
    assert evaluations_to_reach(totals[:3], 1e-10) is None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="step"):
        convergence_curve(np.ones(3), 0, 3)
    with pytest.raises(ValueError, match="without evaluations"):
        convergence_curve(np.ones(0), 1, 3)
