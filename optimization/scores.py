"""The paper's two scores of a run, from its evaluated totals in evaluation order.

Final score: the lowest total error of the run. Convergence score: the area under the log10
cumulative-minimum curve sampled once per generation (every ``step`` evaluations), i.e. the
sum of log10 of the best error found after each generation; smaller means faster.
"""

from __future__ import annotations

import numpy as np


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


def convergence_score(curve: np.ndarray, floor: float = 1e-12) -> float:
    """Sum of log10 of the curve; errors of exactly zero count as ``floor``."""
    return float(np.log10(np.maximum(np.asarray(curve, dtype=float), floor)).sum())
