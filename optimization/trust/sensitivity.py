"""Local sensitivity at the best individual: a finite-difference Jacobian of the weighted error
components with respect to the parameters in the unit cube, and what it says.

Each parameter is moved alone to two points ``2·step`` apart (``step`` in the unit cube, so a
share of the parameter's range, or of its log10 range for a log-scaled one): ``u − step`` and
``u + step`` (a central difference), shifted inwards as a pair when that would leave the bounds
(a one-sided difference at a bound). 2·d evaluations for d parameters.

* ``jacobian`` (k × d): ∂(weight × component)/∂u, per unit of the normalised parameter;
* each parameter's **local sensitivity**: the norm of its column (how fast the weighted
  components change when it alone moves), and the slope and curvature of the total along it
  (the curvature where the pair is centred on the best, from the best's stored total);
* the **stiff and sloppy directions**: the eigenvectors of JᵀJ, largest eigenvalue first. A
  stiff direction changes the components fast; a sloppy one (eigenvalue near 0) hardly at all,
  so the data cannot fix the parameters' combination along it.

Components are costs, not residuals: at an exact minimum of a smooth cost its first
derivatives vanish, and the curvature says more; and with k components JᵀJ has rank k at most,
so with fewer components than parameters (a single MSE) there is one stiff direction per
component and the rest are sloppy with eigenvalue 0 (any basis of what the components do not
see). A parameter whose column is exactly zero changed no component at all (an inert parameter
gives bitwise-identical simulations) and left the total at the best's: it is a sloppy
direction of its own, listed last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEP = 0.01  # default step: 1 % of each parameter's normalised range


def design(best_unit: np.ndarray, step: float = STEP) -> tuple[np.ndarray, np.ndarray]:
    """(points, low): the 2·d points in the unit cube (rows 2j and 2j + 1 move parameter j to
    ``low[j]`` and ``low[j] + 2·step``), every point inside the bounds."""
    if not 0 < step <= 0.25:
        raise ValueError(f"the step must be in (0, 0.25] of the normalised range, not {step:g}")
    best_unit = np.clip(np.asarray(best_unit, dtype=float), 0.0, 1.0)
    d = len(best_unit)
    low = np.clip(best_unit - step, 0.0, 1.0 - 2 * step)
    points = np.repeat(best_unit[None, :], 2 * d, axis=0)
    moved = np.arange(d)
    points[2 * moved, moved] = low
    points[2 * moved + 1, moved] = low + 2 * step
    return points, low


@dataclass(frozen=True)
class Sensitivity:
    """The Jacobian at the best and what follows from it."""

    step: float
    jacobian: np.ndarray  # k × d, weighted components per unit of normalised parameter
    sensitivity: np.ndarray  # d: column norms of the Jacobian (NaN: an evaluation failed)
    slope: np.ndarray  # d: ∂ total / ∂u
    curvature: np.ndarray  # d: ∂² total / ∂u² where the pair is centred (NaN elsewhere)
    eigenvalues: np.ndarray  # of JᵀJ, largest first (none for a parameter that failed)
    eigenvectors: np.ndarray  # d × m, column i belongs to eigenvalues[i]
    failed: np.ndarray  # bool per parameter: one of its two evaluations did not succeed


def analyse(
    best_unit: np.ndarray,
    best_total: float,
    low: np.ndarray,
    step: float,
    errors: np.ndarray,
    total: np.ndarray,
    status: np.ndarray,
    weights: np.ndarray,
) -> Sensitivity:
    """The Jacobian from the results of ``design``'s points: unweighted ``errors`` (2d × k),
    ``total`` and ``status`` (0: ok) per point, and the components' ``weights``."""
    d = len(best_unit)
    errors = np.asarray(errors, dtype=float) * np.asarray(weights, dtype=float)
    total = np.asarray(total, dtype=float)
    ok = np.asarray(status) == 0
    failed = ~(ok[0::2] & ok[1::2])
    spacing = 2 * step
    jacobian = (errors[1::2] - errors[0::2]).T / spacing  # k × d
    jacobian[:, failed] = np.nan
    slope = (total[1::2] - total[0::2]) / spacing
    slope[failed] = np.nan
    centred = np.isclose(low + step, np.clip(best_unit, 0, 1), rtol=0, atol=1e-12) & ~failed
    curvature = np.full(d, np.nan)
    curvature[centred] = (total[1::2] + total[0::2] - 2 * best_total)[centred] / step**2
    sensitivity = np.sqrt(np.sum(jacobian**2, axis=0))
    # A parameter that changed nothing is a sloppy direction by itself; the others' JᵀJ is
    # decomposed without it, so it is not mixed into an arbitrary null space.
    zero = no_effect(total, status, sensitivity, best_total)
    used = np.flatnonzero(~failed & ~zero)
    eigenvalues, eigenvectors = np.zeros(0), np.zeros((d, 0))
    if len(used):
        part = jacobian[:, used]
        values, vectors = np.linalg.eigh(part.T @ part)
        order = np.argsort(values)[::-1]
        eigenvalues = values[order]
        # rounding leaves ~1e-20 where JᵀJ has no rank (fewer components than parameters)
        eigenvalues[eigenvalues < 1e-12 * max(eigenvalues[0], 0.0)] = 0.0
        eigenvectors = np.zeros((d, len(used)))
        eigenvectors[used] = vectors[:, order]
        # a sign per vector: its largest entry positive (eigh's sign is arbitrary)
        signs = np.sign(eigenvectors[np.abs(eigenvectors).argmax(axis=0), np.arange(len(used))])
        eigenvectors *= np.where(signs == 0, 1.0, signs)
    inert = np.flatnonzero(zero)
    eigenvalues = np.concatenate([eigenvalues, np.zeros(len(inert))])
    eigenvectors = np.concatenate([eigenvectors, np.eye(d)[:, inert]], axis=1)
    return Sensitivity(
        step=step, jacobian=jacobian, sensitivity=sensitivity, slope=slope,
        curvature=curvature, eigenvalues=eigenvalues, eigenvectors=eigenvectors, failed=failed,
    )  # fmt: skip


def no_effect(
    total: np.ndarray, status: np.ndarray, sensitivity: np.ndarray, best_total: float
) -> np.ndarray:
    """Per parameter, whether it changed nothing: both its points succeeded, its column of the
    Jacobian is zero and the total at both points is the best's (not merely a valley's
    symmetric sides) — the model may not read it at all."""
    total, ok = np.asarray(total, dtype=float), np.asarray(status) == 0
    same = (total[0::2] == best_total) & (total[1::2] == best_total)
    return ok[0::2] & ok[1::2] & same & (np.asarray(sensitivity, dtype=float) == 0)


def leading(vector: np.ndarray, names: list[str], share: float = 0.9) -> list[tuple[str, float]]:
    """The parameters that make up ``share`` of a unit direction's squared length, largest
    first, with their signed weights: how a direction reads in a table."""
    order = np.argsort(-np.abs(vector))
    picked, covered = [], 0.0
    for i in order:
        picked.append((names[i], float(vector[i])))
        covered += float(vector[i] ** 2)
        if covered >= share:
            break
    return picked


__all__ = ["STEP", "Sensitivity", "analyse", "design", "leading", "no_effect"]
