"""A run's curve on a common evaluation grid, and the paper's scores read from it.

The catalog keeps one point per generation: the cumulative evaluations at its end and the best
error found so far. On a grid of ``budget // grid`` evaluations (as
``neuroptimus.optimization.scoring.scores``), the value at a mark is the best after the last
generation
completed within the mark (before the first generation ends: the first generation's best, the
earliest the catalog knows); a run that stopped before the budget keeps its last value to the
end.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neuroptimus.optimization.scoring.scores import convergence_score


def grid_marks(budget: int, grid: int) -> np.ndarray:
    """Evaluations at which curves are compared: every ``budget // grid`` (at least 1)."""
    if budget < 1 or grid < 1:
        raise ValueError(f"need a budget and a grid of at least 1, got {budget} and {grid}")
    step = max(1, budget // grid)
    return np.arange(step, budget + 1, step)


def on_grid(
    evaluations: Sequence[int], best: Sequence[float | None], marks: np.ndarray
) -> np.ndarray | None:
    """The curve's values at ``marks`` (None when the curve has no known value to give)."""
    if not len(evaluations) or any(value is None for value in best):
        return None
    index = np.searchsorted(np.asarray(evaluations), marks, side="right") - 1
    return np.asarray(best, dtype=float)[np.clip(index, 0, None)]


def value_at(evaluations: Sequence[int], best: Sequence[float | None], at: int) -> float | None:
    """The best error after ``at`` evaluations."""
    values = on_grid(evaluations, best, np.array([at]))
    return None if values is None else float(values[0])


def convergence_at(
    evaluations: Sequence[int], best: Sequence[float | None], budget: int, grid: int
) -> float | None:
    """The convergence score (Σ log10 of the curve on the grid) up to ``budget``."""
    values = on_grid(evaluations, best, grid_marks(budget, grid))
    if values is None or (values < 0).any():
        return None
    return convergence_score(values)
