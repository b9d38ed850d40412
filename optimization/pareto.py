"""Non-dominated fronts and hypervolume of error vectors (all objectives minimised)."""

from __future__ import annotations

import numpy as np


def non_dominated(errors: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``errors`` (n × k) that no other row dominates.

    A row dominates another when it is no worse in every objective and better in one.
    Duplicated rows are all kept (neither dominates the other).
    """
    errors = np.asarray(errors, dtype=float)
    if len(errors) == 0:
        return np.zeros(0, dtype=bool)
    # no_worse[i, j]: row i is <= row j everywhere; better[i, j]: row i < row j somewhere.
    no_worse = (errors[:, None, :] <= errors[None, :, :]).all(axis=2)
    better = (errors[:, None, :] < errors[None, :, :]).any(axis=2)
    return ~(no_worse & better).any(axis=0)


def hypervolume(front: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``front`` and bounded by ``reference`` (0 if nothing is inside).

    Points that do not strictly dominate the reference point add nothing and are dropped.
    """
    import pygmo  # imported here: keeps `import optimization` light

    front = np.asarray(front, dtype=float)
    reference = np.asarray(reference, dtype=float)
    inside = front[(front < reference).all(axis=1)] if len(front) else front
    if len(inside) == 0:
        return 0.0
    if inside.shape[1] == 1:  # one objective: the interval from the best value to the reference
        return float(reference[0] - inside.min())
    return float(pygmo.hypervolume(inside).compute(reference))
