"""Small helpers shared by the adapters: error wrapping, start points, checking a ``tell``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.base import AlgorithmError, AlgorithmInfo


def describe(info: AlgorithmInfo) -> str:
    """How error messages name an algorithm: registry key and human label."""
    return f"algorithm {info.name!r} ({info.label})"


@contextmanager
def library_errors(info: AlgorithmInfo, during: str) -> Iterator[None]:
    """Re-raise whatever the optimizer package raises as an AlgorithmError naming the algorithm."""
    try:
        yield
    except AlgorithmError:
        raise
    except Exception as error:
        raise AlgorithmError(
            f"{describe(info)} failed in {during}: {type(error).__name__}: {error}"
        ) from error


def check_sizes(info: AlgorithmInfo, dimension: int, population: int) -> None:
    if dimension < 1 or population < 1:
        raise ValueError(
            f"{describe(info)} needs dimension >= 1 and population >= 1, "
            f"got {dimension} and {population}"
        )


def start_point(info: AlgorithmInfo, value: Any, dimension: int, name: str = "x0") -> np.ndarray:
    """A start point in the cube from a setting.

    ``None`` means the cube centre; a number sets every coordinate; otherwise ``dimension``
    values, as a sequence or as a comma-separated string (problem files allow only scalars and
    strings as settings).
    """
    if value is None:
        return np.full(dimension, 0.5)
    if isinstance(value, str):
        value = [float(part) for part in value.replace(",", " ").split()]
    point = np.array(np.broadcast_to(np.asarray(value, dtype=float), (dimension,)))
    if not (np.all(point >= 0.0) and np.all(point <= 1.0)):
        raise ValueError(f"{describe(info)}: setting {name!r} must lie in the unit cube [0, 1]")
    return point


def checked_results(
    info: AlgorithmInfo,
    asked: np.ndarray | None,
    points: np.ndarray,
    errors: np.ndarray,
    totals: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a ``tell`` against the last ``ask``; return float copies of (errors, totals).

    ``errors`` may be 1-D (one component); it comes back as (n, k). NaN totals are refused:
    the evaluator is expected to replace failed evaluations by a finite penalty.
    """
    if asked is None:
        raise ValueError(f"{describe(info)}: tell() without a pending ask()")
    points = np.asarray(points, dtype=float)
    if points.shape != asked.shape or not np.array_equal(points, asked):
        raise ValueError(
            f"{describe(info)}: tell() must receive exactly the {len(asked)} point(s) of the "
            f"last ask(), got an array of shape {points.shape}"
        )
    n = len(asked)
    totals = np.array(totals, dtype=float).reshape(-1)
    errors = np.array(errors, dtype=float)
    if errors.ndim == 1:
        errors = errors.reshape(n, -1) if errors.size == n else errors.reshape(1, -1)
    if totals.shape != (n,) or errors.ndim != 2 or len(errors) != n:
        raise ValueError(
            f"{describe(info)}: expected totals of shape ({n},) and errors of shape ({n}, k), "
            f"got {totals.shape} and {errors.shape}"
        )
    if np.isnan(totals).any():
        raise ValueError(f"{describe(info)}: totals contain NaN; use a finite penalty instead")
    return errors, totals
