"""Uniform random search: the baseline every method has to beat."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.base import Algorithm, AlgorithmInfo
from neuroptimus.optimization.algorithms.common import check_sizes, checked_results, library_errors


class RandomSearch(Algorithm):
    """A population of independent uniform points in the unit cube per ``ask``.

    The generator is ``numpy.random.Generator(PCG64(seed))``; it is part of the pickled state,
    so a restored run draws the same points as an uninterrupted one.
    """

    info = AlgorithmInfo(
        name="random",
        label="Random search",
        package="numpy",
        multi_objective=False,
        parallel=True,
        defaults={},
        summary="Uniform random points in the unit cube; ignores the errors it is told.",
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._asked: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        with library_errors(self.info, "ask()"):
            self._asked = self._rng.random((self.population, self.dimension))
        return self._asked.copy()

    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        checked_results(self.info, self._asked, points, errors, totals)
        self._asked = None


ADAPTERS = (RandomSearch,)
