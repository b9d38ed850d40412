"""CMA-ES from the ``cmaes`` package, which already speaks ask/tell."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np

from neuroptimus.optimization import pickles
from neuroptimus.optimization.algorithms.base import Algorithm, AlgorithmInfo
from neuroptimus.optimization.algorithms.common import (
    check_sizes,
    checked_results,
    describe,
    library_errors,
    start_point,
)
from neuroptimus.optimization.algorithms.start import StartingPoint

# The smallest step size a start gives (cube units): best points that all coincide (a
# converged run) would otherwise leave CMA-ES nothing to search with.
MIN_START_SIGMA = 1e-3


def _cma_class() -> type:
    """``cmaes.CMA``, imported when the first CMA-ES is created (the registry stays cheap).

    The package's ``__init__`` also imports its CMA-with-Margin variants, which take
    ``scipy.stats`` (half a second of CPU) when SciPy is installed and use the package's own
    fallback functions otherwise. ``CMA`` needs neither, so ``scipy.stats`` is hidden while
    the package is first imported (once scipy.stats is loaded, there is nothing to save).
    """
    if "cmaes" not in sys.modules and "scipy.stats" not in sys.modules:
        sys.modules["scipy.stats"] = None  # type: ignore[assignment]  # import raises ImportError
        try:
            import cmaes  # noqa: F401, PLC0415 (lazy: cmaes loads only when its algorithms run)
        finally:
            if sys.modules.get("scipy.stats", 0) is None:
                del sys.modules["scipy.stats"]
    from cmaes import CMA  # noqa: PLC0415 (lazy: cmaes loads only when its algorithms run)

    return CMA


class CMAES(Algorithm):
    """``cmaes.CMA`` bounded to [0, 1]^d, one whole population per ``ask``.

    Settings: ``sigma`` (default 0.3) is the initial step size in cube units — about a third
    of the box, the usual advice when the optimum may be anywhere in it; ``x0`` is the initial
    mean (default: the cube centre; a number, d numbers or "a, b, ..."). The population is the
    framework's; ``seed`` seeds the package's generator. Started from given points
    (``start_from``: a warm start, a chain's stage), the mean is the best of them and the step
    size their spread.

    :meth:`state` pickles the ``CMA`` object's attributes directly: ``CMA``'s own pickling
    replaces its seeded generator by an unseeded one and rebuilds the covariance matrix from one
    triangle, and either breaks bit-for-bit resumption.
    """

    info = AlgorithmInfo(
        name="cmaes",
        label="CMA-ES (cmaes)",
        package="cmaes",
        multi_objective=False,
        parallel=True,
        defaults={"sigma": 0.3, "x0": None},
        summary="Covariance matrix adaptation evolution strategy, bounded to the unit cube.",
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)
        if population < 2:
            raise ValueError(f"{describe(self.info)} needs a population of at least 2")
        sigma = float(self.settings["sigma"])
        if not sigma > 0:
            raise ValueError(f"{describe(self.info)}: setting 'sigma' must be positive")
        self._cma = self._new_cma(start_point(self.info, self.settings["x0"], dimension), sigma)
        self._asked: np.ndarray | None = None

    def _new_cma(self, mean: np.ndarray, sigma: float) -> Any:
        # Below 4 the library's mu is 1, its rank-mu rate 0, and two of the bounds it takes
        # the minimum of divide by that 0 (the minimum is then the finite third): no warning.
        with library_errors(self.info, "setup"), np.errstate(divide="ignore"):
            return _cma_class()(
                mean=mean,
                sigma=sigma,
                bounds=np.tile([0.0, 1.0], (self.dimension, 1)),
                seed=self.seed,
                population_size=self.population,
            )

    def start_from(self, start: StartingPoint) -> str | None:
        """The mean at the best point; the step size the spread of the best half population
        (the ``sigma`` setting bounds it, and stands in for it with a single point)."""
        ceiling = float(self.settings["sigma"])
        spread = start.spread(max(2, self.population // 2))
        sigma = ceiling if spread is None else float(np.clip(spread, MIN_START_SIGMA, ceiling))
        self._cma = self._new_cma(start.best, sigma)
        return None

    def ask(self) -> np.ndarray:
        with library_errors(self.info, "ask()"):
            self._asked = np.array([self._cma.ask() for _ in range(self.population)])
        return self._asked.copy()

    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        _, totals = checked_results(self.info, self._asked, points, errors, totals)
        with library_errors(self.info, "tell()"):
            self._cma.tell([(x, float(f)) for x, f in zip(self._asked, totals, strict=True)])
        self._asked = None

    @property
    def done(self) -> bool:
        with library_errors(self.info, "should_stop()"):
            return bool(self._cma.should_stop())

    def state(self) -> bytes:
        data = {**self.__dict__, "_cma": dict(vars(self._cma))}
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, state: bytes) -> None:
        data = pickles.loads(state)
        cma_class = _cma_class()
        cma = cma_class.__new__(cma_class)  # bypasses CMA.__setstate__ (see the class docstring)
        cma.__dict__.update(data["_cma"])
        self.__dict__.update({**data, "_cma": cma})


ADAPTERS = (CMAES,)
