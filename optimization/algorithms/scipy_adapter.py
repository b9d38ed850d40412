"""SciPy's methods driven through the loop bridge, in the unit cube [0, 1]^d.

Nelder-Mead asks one point at a time, so it runs ``islands`` independent starts whose points
are asked together. L-BFGS-B and basin-hopping (whose local steps are
L-BFGS-B) need f and its gradient together: each such request is one batch of d + 1 points,
x and its d finite-difference neighbours, so every iteration reaches the cluster at once.
Nelder-Mead's islands and L-BFGS-B start again from a seeded random point when SciPy returns
(``restarts``), so they use the run's budget. Given start points (``start_from``), the first
start is the best of them (Nelder-Mead's island i: the i-th best).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.base import AlgorithmInfo
from neuroptimus.optimization.algorithms.bridge import BatchObjective, LibraryLoop
from neuroptimus.optimization.algorithms.bridged import BridgedAlgorithm, island_seeds
from neuroptimus.optimization.algorithms.common import check_sizes, describe, start_point
from neuroptimus.optimization.algorithms.islands import DEFAULT_ISLANDS
from neuroptimus.optimization.algorithms.restarts import (
    RESTART_DEFAULTS,
    restart_limit,
    restart_point,
    restarting,
)


def _nelder_mead(
    objective: BatchObjective, x0: np.ndarray, simplex: np.ndarray, options: dict[str, Any]
) -> Any:
    """Run ``scipy.optimize.minimize`` to convergence; it asks for one point per call."""
    from scipy.optimize import minimize  # noqa: PLC0415 (lazy: keeps the registry import cheap)

    def fun(x: np.ndarray) -> float:
        return float(objective(x)[0])

    bounds = [(0.0, 1.0)] * len(x0)
    options = {**options, "initial_simplex": simplex}
    return minimize(fun, x0, method="Nelder-Mead", bounds=bounds, options=options)


def _nelder_mead_start(
    objective: BatchObjective,
    restart: int,
    *,
    first: np.ndarray,
    seed: int,
    island: int,
    step: float,
    options: dict[str, Any],
) -> Any:
    """One start of an island: from ``first``, then (restarts) from seeded random points."""
    x0 = first if restart == 0 else restart_point(seed, island, restart, len(first))
    # Vertices beyond the upper bound are reflected into the cube by SciPy.
    simplex = np.vstack([x0, x0 + step * np.eye(len(x0))])
    return _nelder_mead(objective, x0, simplex, options)


def _x0(algorithm: BridgedAlgorithm) -> np.ndarray:
    """The first start: the best given point (``start_from``), else the ``x0`` setting."""
    if algorithm._start is not None:
        return algorithm._start.best
    return start_point(algorithm.info, algorithm.settings["x0"], algorithm.dimension)


class NelderMead(BridgedAlgorithm):
    """``scipy.optimize.minimize(method="Nelder-Mead")`` with bounds [0, 1]^d.

    Serial: SciPy asks one point at a time, so the adapter runs ``islands`` independent
    starts, island 0 from ``x0`` and the others from uniform random points drawn from the
    seed; every ``ask`` returns the point each live island wants next, shape (islands, d); the
    population is not used. An island whose SciPy run returns starts again from a uniform
    random point drawn from the seed, the island and the restart count, at most ``restarts``
    times (default None: until the run ends). Settings: ``x0`` (default: cube centre),
    ``initial_step`` (edge of the starting simplex along each axis, in cube units; SciPy's own
    default of 5% of x0 is tiny in a unit cube), ``restarts``, and SciPy's ``xatol``,
    ``fatol``, ``maxiter``, ``maxfev`` (both per start) and ``adaptive``. When every island
    has stopped (only with a ``restarts`` limit), ``done`` is True and ``ask`` returns an
    empty (0, d) array; ``result`` holds SciPy's ``OptimizeResult`` of each island's last
    start.
    """

    takes_start = True
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
            "islands": DEFAULT_ISLANDS,
            **RESTART_DEFAULTS,
        },
        summary=f"Downhill simplex from SciPy; local, serial: {DEFAULT_ISLANDS} independent "
        "starts (x0, then seeded random starts), one point of each per ask; an island that "
        "converged starts again.",
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)

    def island_loops(self) -> list[LibraryLoop]:
        x0 = start_point(self.info, self.settings["x0"], self.dimension)
        starts = [x0] + [
            np.random.default_rng(seed).random(self.dimension)
            for seed in island_seeds(self.seed, self.islands)[1:]
        ]
        if self._start is not None:  # island i from the i-th best given point, if any
            given = self._start.head(self.islands)
            starts[: len(given)] = list(given)
        return [self._loop(start, island) for island, start in enumerate(starts)]

    def library_loop(self) -> LibraryLoop:
        return self._loop(_x0(self), 0)

    def _loop(self, x0: np.ndarray, island: int) -> LibraryLoop:
        settings = self.settings
        step = float(settings["initial_step"])
        if not 0 < step <= 1:
            raise ValueError(f"{describe(self.info)}: setting 'initial_step' must be in (0, 1]")
        options = {
            "xatol": float(settings["xatol"]),
            "fatol": float(settings["fatol"]),
            "maxiter": None if settings["maxiter"] is None else int(settings["maxiter"]),
            "maxfev": None if settings["maxfev"] is None else int(settings["maxfev"]),
            "adaptive": bool(settings["adaptive"]),
        }
        start = partial(
            _nelder_mead_start, first=x0, seed=self.seed, island=island, step=step, options=options
        )
        return restarting(start, restart_limit(self.info, settings))


def _value_and_gradient(
    objective: BatchObjective, eps: float
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """``fun(x) -> (f, grad)`` from ONE batch: x and x + h_i e_i, with h_i = eps, or -eps where
    the forward step would leave the cube (so ``eps`` <= 0.5 keeps every point inside)."""

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.asarray(x, dtype=float)
        steps = np.where(x + eps <= 1.0, eps, -eps)
        values = objective(np.vstack([x, x + np.diag(steps)]))
        return float(values[0]), (values[1:] - values[0]) / steps

    return fun


def _lbfgsb(
    objective: BatchObjective,
    restart: int,
    *,
    x0: np.ndarray,
    seed: int,
    eps: float,
    options: dict[str, Any],
) -> Any:
    """One start: from ``x0``, then (restarts) from seeded random points."""
    from scipy.optimize import minimize  # noqa: PLC0415 (lazy: keeps the registry import cheap)

    if restart:
        x0 = restart_point(seed, 0, restart, len(x0))
    fun = _value_and_gradient(objective, eps)
    bounds = [(0.0, 1.0)] * len(x0)
    return minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)


def _basinhopping(
    objective: BatchObjective,
    x0: np.ndarray | None,
    dimension: int,
    seed: int,
    eps: float,
    local_options: dict[str, Any],
    options: dict[str, Any],
) -> Any:
    from scipy.optimize import basinhopping  # noqa: PLC0415 (lazy: scipy loads only when its algorithms run)

    rng = np.random.default_rng(seed)  # the start (if not given) and SciPy's random steps
    start = rng.uniform(size=dimension) if x0 is None else x0
    local = {
        "method": "L-BFGS-B",
        "jac": True,
        "bounds": [(0.0, 1.0)] * dimension,
        "options": local_options,
    }
    fun = _value_and_gradient(objective, eps)
    return basinhopping(fun, start, minimizer_kwargs=local, rng=rng, **options)


def _number(info: AlgorithmInfo, settings: dict[str, Any], key: str, low: float, high: float):
    """Setting ``key`` as a float in [low, high] (None passes through)."""
    value = settings[key]
    if value is None:
        return None
    try:
        number = np.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        number = np.nan
    if not low <= number <= high:
        raise ValueError(f"{describe(info)}: setting {key!r} must be in [{low}, {high}]")
    return number


def _count(info: AlgorithmInfo, settings: dict[str, Any], key: str, low: int = 1):
    """Setting ``key`` as an integer >= low (None passes through)."""
    value = _number(info, settings, key, low, np.inf)
    if value is not None and value != int(value):
        raise ValueError(f"{describe(info)}: setting {key!r} must be an integer")
    return None if value is None else int(value)


def _eps(info: AlgorithmInfo, settings: dict[str, Any]) -> float:
    eps = _number(info, settings, "eps", 0.0, 0.5)
    if not eps:
        raise ValueError(f"{describe(info)}: setting 'eps' must be in (0, 0.5]")
    return eps


class LBFGSB(BridgedAlgorithm):
    """``scipy.optimize.minimize(method="L-BFGS-B")`` with bounds [0, 1]^d.

    Each request of SciPy for f and its gradient at x is one batch of d + 1 points: x, then
    x + eps e_i for each coordinate i (backwards at the upper bound). ``eps`` is in cube units,
    large by default because simulated errors are noisy at tiny steps. The population is not
    used. When SciPy returns, the search starts again from a uniform random point drawn from
    ``seed`` and the restart count, at most ``restarts`` times (default None: until the run
    ends); the first start is deterministic. Settings: ``x0`` (default: cube centre), ``eps``,
    ``restarts`` and SciPy's options per start (``maxfun`` counts batches). With a
    ``restarts`` limit it stops by itself: ``done``.
    """

    takes_start = True
    info = AlgorithmInfo(
        name="scipy-lbfgsb",
        label="L-BFGS-B (SciPy)",
        package="scipy",
        multi_objective=False,
        parallel=True,
        defaults={
            "x0": None,
            "eps": 1e-3,
            "maxiter": 15000,
            "maxfun": 15000,
            "ftol": 2.220446049250313e-09,
            "gtol": 1e-5,
            "maxcor": 10,
            "maxls": 20,
            **RESTART_DEFAULTS,
        },
        summary="Quasi-Newton method from SciPy; local, each gradient one batch of d + 1; "
        "starts again from a seeded random point when it has converged.",
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)

    @property
    def points_per_ask(self) -> int:
        return self.dimension + 1  # a point and its finite-difference neighbours

    def library_loop(self) -> LibraryLoop:
        info, settings = self.info, self.settings
        options = {key: _count(info, settings, key) for key in ("maxiter", "maxfun", "maxcor")}
        options["maxls"] = _count(info, settings, "maxls")
        options["ftol"] = _number(info, settings, "ftol", 0.0, np.inf)
        options["gtol"] = _number(info, settings, "gtol", 0.0, np.inf)
        x0 = _x0(self)
        start = partial(_lbfgsb, x0=x0, seed=self.seed, eps=_eps(info, settings), options=options)
        return restarting(start, restart_limit(info, settings))


class BasinHopping(BridgedAlgorithm):
    """``scipy.optimize.basinhopping`` with L-BFGS-B local minimisations in [0, 1]^d.

    ``niter`` random jumps (uniform in +-``stepsize`` per coordinate, adapted every
    ``interval`` jumps), each followed by an L-BFGS-B minimisation of at most ``local_maxiter``
    iterations whose gradients are batched as in ``scipy-lbfgsb``; a new minimum is accepted by
    the Metropolis criterion at temperature ``T``. Defaults: the paper's 100 jumps x 100 local
    iterations, SciPy's own otherwise. ``x0``: default a uniform random point from ``seed``,
    which also seeds the jumps. Stops by itself after ``niter`` jumps (or ``niter_success``
    jumps without a new best): ``done``.
    """

    takes_start = True
    info = AlgorithmInfo(
        name="scipy-basinhopping",
        label="Basin-hopping (SciPy)",
        package="scipy",
        multi_objective=False,
        parallel=True,
        defaults={
            "x0": None,
            "niter": 100,
            "T": 1.0,
            "stepsize": 0.5,
            "interval": 50,
            "niter_success": None,
            "local_maxiter": 100,
            "eps": 1e-3,
        },
        summary="Random jumps plus L-BFGS-B local searches from SciPy; global, "
        "each gradient one batch of d + 1.",
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)

    @property
    def points_per_ask(self) -> int:
        return self.dimension + 1  # a point and its finite-difference neighbours

    def library_loop(self) -> LibraryLoop:
        info, settings = self.info, self.settings
        x0 = settings["x0"]
        if self._start is not None:
            x0 = self._start.best
        options = {
            "niter": _count(info, settings, "niter", 0),
            "T": _number(info, settings, "T", 0.0, np.inf),
            "stepsize": _number(info, settings, "stepsize", 0.0, np.inf),
            "interval": _count(info, settings, "interval"),
            "niter_success": _count(info, settings, "niter_success"),
        }
        if not options["stepsize"]:
            raise ValueError(f"{describe(info)}: setting 'stepsize' must be > 0")
        return partial(
            _basinhopping,
            x0=None if x0 is None else start_point(info, x0, self.dimension),
            dimension=self.dimension,
            seed=self.seed,
            eps=_eps(info, settings),
            local_options={"maxiter": _count(info, settings, "local_maxiter")},
            options=options,
        )


ADAPTERS = (NelderMead, LBFGSB, BasinHopping)
