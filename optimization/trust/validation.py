"""Held-out validation: the problem a run's best individuals are evaluated on after the fit
(the problem file's ``validation:`` protocols and targets) and which individuals those are."""

from __future__ import annotations

import numpy as np

from neuroptimus.optimization.evaluation.problem import Problem, TargetError, build_problem
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


def check_validation_targets(spec: ProblemSpec) -> None:
    """Before a run starts (milliseconds): the validation's target file fits its protocol
    (TargetError in one line otherwise), so that a mistake in it is not found only after the
    optimization. A regenerated target needs a simulation: it is made at the end."""
    validation = spec.validation
    if validation is None or validation.best == 0:
        return
    if validation.target is not None and validation.target.regenerate:
        return
    try:
        validation_problem(spec)
    except TargetError as error:
        raise TargetError(f"validation: {error}") from None
