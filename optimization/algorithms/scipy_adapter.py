"""SciPy's Nelder-Mead simplex, a local serial method driven through the loop bridge."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from optimization.algorithms.base import AlgorithmInfo
from optimization.algorithms.bridge import BatchObjective, BridgedAlgorithm, LibraryLoop
from optimization.algorithms.common import check_sizes, describe, start_point


def _nelder_mead(
    objective: BatchObjective, x0: np.ndarray, simplex: np.ndarray, options: dict[str, Any]
) -> Any:
    """Run ``scipy.optimize.minimize`` to convergence; it asks for one point per call."""
    from scipy.optimize import minimize  # imported here: keeps the registry import cheap

    def fun(x: np.ndarray) -> float:
        return float(objective(x)[0])

    bounds = [(0.0, 1.0)] * len(x0)
    options = {**options, "initial_simplex": simplex}
    return minimize(fun, x0, method="Nelder-Mead", bounds=bounds, options=options)


class NelderMead(BridgedAlgorithm):
    """``scipy.optimize.minimize(method="Nelder-Mead")`` with bounds [0, 1]^d.

    Serial: every ``ask`` returns the single point SciPy wants next, shape (1, d); the
    population is not used. Deterministic, so ``seed`` is not used either. Settings: ``x0``
    (default: cube centre), ``initial_step`` (edge of the starting simplex along each axis, in
    cube units; SciPy's own default of 5% of x0 is tiny in a unit cube), and SciPy's ``xatol``,
    ``fatol``, ``maxiter``, ``maxfev`` and ``adaptive``. When SciPy stops, ``done`` is True and
    ``ask`` returns an empty (0, d) array; ``result`` holds SciPy's ``OptimizeResult``.
    """

    info = AlgorithmInfo(
        name="scipy-nelder-mead",
        label="Nelder-Mead (SciPy)",
        package="scipy",
        multi_objective=False,
        parallel=False,
        defaults={
            "x0": None,
            "initial_step": 0.1,
            "xatol": 1e-4,
            "fatol": 1e-4,
            "maxiter": None,
            "maxfev": None,
            "adaptive": False,
        },
        summary="Downhill simplex from SciPy; local, serial (one point per ask).",
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)

    def library_loop(self) -> LibraryLoop:
        settings = self.settings
        x0 = start_point(self.info, settings["x0"], self.dimension)
        step = float(settings["initial_step"])
        if not 0 < step <= 1:
            raise ValueError(f"{describe(self.info)}: setting 'initial_step' must be in (0, 1]")
        # Vertices beyond the upper bound are reflected into the cube by SciPy.
        simplex = np.vstack([x0, x0 + step * np.eye(self.dimension)])
        options = {
            "xatol": float(settings["xatol"]),
            "fatol": float(settings["fatol"]),
            "maxiter": None if settings["maxiter"] is None else int(settings["maxiter"]),
            "maxfev": None if settings["maxfev"] is None else int(settings["maxfev"]),
            "adaptive": bool(settings["adaptive"]),
        }
        return partial(_nelder_mead, x0=x0, simplex=simplex, options=options)
