"""Where an algorithm starts: the best points known before it runs.

A warm start (the best individuals of earlier runs of the same use case) and a chain's next
stage (the best individuals of the stages before it) hand an algorithm the same thing: a
``StartingPoint``, the best points in the unit cube with their weighted totals, best first.
Each adapter family takes it its own way (``Algorithm.start_from``): CMA-ES centres its search
on the best point with a step size from the spread of the best ones, population methods put
the points at the head of their initial population (the rest drawn as usual), local methods
start from the best point (islands: island i from the i-th best).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StartingPoint:
    """Best points first: ``points`` (n, d) in [0, 1]^d and their weighted ``totals`` (n,);
    ``source`` says where they come from, for notes and the store."""

    points: np.ndarray
    totals: np.ndarray
    source: str = ""

    def __post_init__(self) -> None:
        points = np.atleast_2d(np.asarray(self.points, dtype=float))
        totals = np.asarray(self.totals, dtype=float).reshape(-1)
        if len(points) != len(totals) or not len(points):
            raise ValueError("a starting point needs one total per point, and at least one point")
        order = np.argsort(totals, kind="stable")
        object.__setattr__(self, "points", np.clip(points[order], 0.0, 1.0))
        object.__setattr__(self, "totals", totals[order])

    @property
    def best(self) -> np.ndarray:
        return self.points[0].copy()

    def head(self, count: int) -> np.ndarray:
        """The ``count`` best points (fewer if there are fewer)."""
        return self.points[:count].copy()

    def for_island(self, island: int, islands: int, count: int) -> np.ndarray:
        """The points island ``island`` of ``islands`` takes: the i-th best, then the
        (i + islands)-th … (at most ``count``), so islands start apart."""
        return self.points[island::islands][:count].copy()

    def spread(self, count: int) -> float | None:
        """Root-mean-square standard deviation per coordinate of the ``count`` best points
        (None for a single point: no spread to measure)."""
        points = self.points[:count]
        if len(points) < 2:
            return None
        return float(np.sqrt(np.mean(np.var(points, axis=0))))


def best_points(
    points: np.ndarray, totals: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` best distinct finite rows of ``points`` (ties: the earlier row first)."""
    points = np.atleast_2d(np.asarray(points, dtype=float))
    totals = np.asarray(totals, dtype=float).reshape(-1)
    finite = np.isfinite(totals)
    points, totals = points[finite], totals[finite]
    order = np.argsort(totals, kind="stable")
    kept: list[int] = []
    seen: set[bytes] = set()
    for row in order:
        key = points[row].tobytes()
        if key not in seen:
            seen.add(key)
            kept.append(int(row))
            if len(kept) == count:
                break
    return points[kept], totals[kept]


def filled_population(head: np.ndarray, population: int, dimension: int, seed: int) -> np.ndarray:
    """An initial population of ``population`` points: ``head`` (cut to the population), then
    uniform points drawn from ``seed``."""
    head = np.asarray(head, dtype=float).reshape(-1, dimension)[:population]
    rest = np.random.default_rng(seed).random((population - len(head), dimension))
    return np.vstack([head, rest])
