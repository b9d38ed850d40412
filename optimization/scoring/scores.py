"""The paper's two scores of a run, from its evaluated totals in evaluation order.

Final score: the lowest total error of the run. Convergence score: the area under the log10
cumulative-minimum curve sampled once per generation (every ``step`` evaluations), i.e. the
sum of log10 of the best error found after each generation, without any floor; smaller means
faster. Only an error of exactly zero has no logarithm: it counts as the smallest positive
double (see :data:`ZERO_ERROR_LOG10`).
"""

from __future__ import annotations

import numpy as np

# log10 of the smallest positive double (4.9e-324): the value an exactly-zero error counts as.
# It is below log10 of every positive error a run can store, so the score stays monotone in
# the curve (a run that reached zero never scores worse than one that stayed above it) and the
# rule is the same for every run, whatever the other runs reached.
ZERO_ERROR_LOG10 = float(np.log10(np.finfo(float).smallest_subnormal))


def convergence_curve(totals: np.ndarray, step: int, budget: int) -> np.ndarray:
    """Cumulative minimum after every ``step`` evaluations, up to ``budget``.

    Serial and batch algorithms are compared on the same evaluation grid. A run that stopped
    before the budget (its algorithm converged) keeps its last best value to the end.
    """
    totals = np.asarray(totals, dtype=float)
    if step < 1 or budget < step:
        raise ValueError(f"need 1 <= step <= budget, got step {step} and budget {budget}")
    if len(totals) == 0:
        raise ValueError("a run without evaluations has no convergence curve")
    running = np.minimum.accumulate(totals)
    marks = np.arange(step, budget + 1, step)
    return running[np.minimum(marks, len(totals)) - 1]


def final_score(totals: np.ndarray) -> float:
    return float(np.min(totals))


def convergence_score(curve: np.ndarray) -> float:
    """Σ log10 of the curve, errors taken as they are (no floor); an exact zero counts as
    :data:`ZERO_ERROR_LOG10`. Negative or NaN errors have no logarithm and are refused."""
    curve = np.asarray(curve, dtype=float)
    if np.isnan(curve).any() or (curve < 0).any():
        raise ValueError("a convergence curve holds errors >= 0 only (got NaN or a negative)")
    logs = np.full(curve.shape, ZERO_ERROR_LOG10)
    positive = curve > 0
    logs[positive] = np.log10(curve[positive])
    return float(logs.sum())


def evaluations_to_reach(totals: np.ndarray, threshold: float) -> int | None:
    """The evaluation (counted from 1) at which the best total first was <= ``threshold``;
    None if the run never reached it."""
    reached = np.flatnonzero(np.asarray(totals, dtype=float) <= threshold)
    return int(reached[0]) + 1 if len(reached) else None
