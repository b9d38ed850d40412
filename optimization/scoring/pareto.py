"""Non-dominated fronts and hypervolume of error vectors (all objectives minimised)."""

from __future__ import annotations

import numpy as np

# Rows compared at once when merging into a large front: bounds the boolean temporaries to
# about block × new × objectives bytes whatever the front's size.
_BLOCK = 2048


def non_dominated(errors: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``errors`` (n × k) that no other row dominates.

    A row dominates another when it is no worse in every objective and better in one.
    Duplicated rows are all kept (neither dominates the other).
    """
    errors = np.asarray(errors, dtype=float)
    if len(errors) == 0:
        return np.zeros(0, dtype=bool)
    return ~_dominates_any(errors, errors)


def _dominates_any(by: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each row of ``rows``: is it dominated by some row of ``by``? (blockwise)"""
    dominated = np.zeros(len(rows), dtype=bool)
    for start in range(0, len(by), _BLOCK):
        no_worse, no_better = _relations(by[start : start + _BLOCK], rows)
        dominated |= (no_worse & ~no_better).any(axis=0)
    return dominated


def _relations(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[i, j]: a[i] <= b[j] everywhere, and a[i] >= b[j] everywhere. a[i] dominates b[j]
    when the first holds and not the second (not equal), and conversely."""
    return (a[:, None, :] <= b[None, :, :]).all(axis=2), (a[:, None, :] >= b[None, :, :]).all(
        axis=2
    )


def merge_front(front: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge ``new`` error vectors into a non-dominated ``front``: returns the masks of the
    front rows that stay and of the new rows that join. Costs O(front × new), not
    O((front + new)²): only the new rows are compared with everything."""
    front = np.asarray(front, dtype=float)
    new = np.asarray(new, dtype=float)
    joins = non_dominated(new)
    stays = np.ones(len(front), dtype=bool)
    candidates = np.flatnonzero(joins)
    for start in range(0, len(front), _BLOCK):
        block = slice(start, start + _BLOCK)
        no_worse, no_better = _relations(front[block], new[candidates])
        joins[candidates[(no_worse & ~no_better).any(axis=0)]] = False
        # a candidate the front dominates cannot dominate a front row (the front would not
        # be non-dominated): every candidate may be used here
        stays[block] = ~(no_better & ~no_worse).any(axis=1)
    return stays, joins


def hypervolume(
    front: np.ndarray, reference: np.ndarray, eps: float | None = None, delta: float = 0.05
) -> float:
    """Volume dominated by ``front`` and bounded by ``reference`` (0 if nothing is inside).

    Exact by default; with ``eps`` the Bringmann–Friedrich FPRAS (pygmo's ``bf_fpras``): within
    a factor 1 ± eps of the exact value with probability 1 − delta, in time linear in the front
    size (exact algorithms are exponential in the number of objectives). Points that do not
    strictly dominate the reference point add nothing and are dropped.
    """
    import pygmo  # noqa: PLC0415 (lazy: keeps `import neuroptimus.optimization` light)

    front = np.asarray(front, dtype=float)
    reference = np.asarray(reference, dtype=float)
    inside = front[(front < reference).all(axis=1)] if len(front) else front
    if len(inside) == 0:
        return 0.0
    if inside.shape[1] == 1:  # one objective: the interval from the best value to the reference
        return float(reference[0] - inside.min())
    volume = pygmo.hypervolume(inside)
    if eps is None:
        return float(volume.compute(reference))
    return float(volume.compute(reference, hv_algo=pygmo.bf_fpras(eps=eps, delta=delta)))
