"""The finite-difference design and the Jacobian analysis, on cost functions whose derivatives
are known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from neuroptimus.optimization.trust.sensitivity import analyse, design, leading


def _costs(points: np.ndarray) -> np.ndarray:
    """Two components of four parameters: a valley in p0 (centre 0.5) plus p3, and a slope in
    p2 and p3; p1 changes nothing."""
    return np.column_stack(
        [10 * (points[:, 0] - 0.5) ** 2 + points[:, 3], 3 * points[:, 2] + 2 * points[:, 3]]
    )


def test_each_parameter_moves_alone_by_two_steps_inside_the_bounds():
    best = np.array([0.5, 0.0, 1.0, 0.3])
    points, low = design(best, 0.01)
    assert points.shape == (8, 4)
    assert np.all((points >= 0) & (points <= 1))
    for j in range(4):
        pair = points[2 * j : 2 * j + 2]
        others = np.delete(np.arange(4), j)
        assert np.array_equal(pair[:, others], np.tile(best[others], (2, 1)))
        assert pair[1, j] - pair[0, j] == pytest.approx(0.02)
    # central where it can be, one-sided at a bound
    assert list(low) == pytest.approx([0.49, 0.0, 0.98, 0.29])
    with pytest.raises(ValueError, match="the step must be in"):
        design(best, 0.5)


def test_jacobian_directions_and_curvature_of_known_costs():
    best = np.array([0.5, 0.0, 1.0, 0.3])
    points, low = design(best, 0.01)
    errors = _costs(points)
    weights = np.array([1.0, 2.0])
    total = errors @ weights
    found = analyse(best, float(_costs(best[None])[0] @ weights), low, 0.01, errors, total,
                    np.zeros(8, dtype=np.int8), weights)  # fmt: skip
    # ∂(w·component)/∂u: exact for these (a quadratic's central difference is exact)
    expected = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 6.0, 4.0]])
    assert found.jacobian == pytest.approx(expected, abs=1e-9)
    assert found.sensitivity[0] == 0  # the valley's floor: both sides equal, ...
    assert found.sensitivity[1] == 0  # ... and p1, which no component sees
    assert found.curvature[0] == pytest.approx(20.0)  # ∂²/∂p0² of 10 (p0 − 0.5)²
    assert np.isnan(found.curvature[1]) and np.isnan(found.curvature[2])  # one-sided at bounds
    assert found.slope == pytest.approx([0.0, 0.0, 6.0, 5.0], abs=1e-9)
    # JᵀJ: two stiff directions in (p2, p3), p0 and p1 sloppy (eigenvalue 0); p1, which left
    # the total as it was, a direction of its own (last)
    stiff = np.linalg.eigvalsh(expected.T @ expected)[::-1][:2]
    assert found.eigenvalues[:2] == pytest.approx(stiff)
    assert list(found.eigenvalues[2:]) == [0.0, 0.0]
    assert [name for name, _ in leading(found.eigenvectors[:, 0], list("abcd"))] == ["c", "d"]
    assert list(found.eigenvectors[:, -1]) == [0.0, 1.0, 0.0, 0.0]


def test_a_failed_evaluation_leaves_its_parameter_without_a_derivative():
    best = np.array([0.4, 0.6])
    points, low = design(best, 0.05)
    errors = np.column_stack([points[:, 0] + points[:, 1]])
    status = np.array([0, 0, 0, 1], dtype=np.int8)  # the second parameter's upper point failed
    found = analyse(best, 1.0, low, 0.05, errors, errors[:, 0], status, np.ones(1))
    assert list(found.failed) == [False, True]
    assert found.sensitivity[0] == pytest.approx(1.0) and np.isnan(found.sensitivity[1])
    assert found.eigenvectors.shape == (2, 1)
