"""Held-out validation: the problem a run's best individuals are evaluated on after the fit
(the problem file's ``validation:`` protocols and targets) and which individuals those are."""

from __future__ import annotations

import numpy as np

from neuroptimus.optimization.evaluation.problem import Problem, build_problem
from neuroptimus.optimization.problem.spec import ProblemSpec, validation_spec


def validation_problem(spec: ProblemSpec) -> Problem:
    """The validation of ``spec`` as a problem of its own: the same model and parameters,
    scored on the held-out protocols and targets (a regenerated target is simulated from the
    true values now)."""
    return build_problem(validation_spec(spec))


def best_distinct(parameters: np.ndarray, total: np.ndarray, k: int) -> np.ndarray:
    """Rows of the ``k`` lowest finite totals whose parameter vectors differ (an algorithm
    may evaluate one point again: it is validated once, at its first row)."""
    chosen: list[int] = []
    seen: set[bytes] = set()
    for row in np.argsort(total, kind="stable"):
        if len(chosen) == k or not np.isfinite(total[row]):
            break
        key = np.asarray(parameters[row], dtype=float).tobytes()
        if key not in seen:
            seen.add(key)
            chosen.append(int(row))
    return np.array(chosen, dtype=int)
