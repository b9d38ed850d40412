"""lq-CMA-ES: CMA-ES with a global linear-quadratic surrogate, from pycma (``cma``).

pycma runs lq-CMA-ES as a loop that evaluates one solution at a time
(``cma.fitness_models.SurrogatePopulation``). Here the same steps are driven through ask/tell
with pycma's ``CMAEvolutionStrategy`` and ``LQModel``, so that each ask is a whole batch:

1. CMA-ES samples ``popsize`` candidates (default: the population).
2. Each ask holds the next ``population`` candidates not evaluated yet, best first by the
   model (in sampling order while the model has fewer than two points).
3. After each tell the model takes the new points; when its ranking of the most recent points
   agrees with their true ranking (Kendall tau >= 0.85, pycma's threshold and sample size) or
   every candidate is evaluated, CMA-ES is told the model's values for all candidates (the
   true ones if all were evaluated), shifted so that the best equals the best true value, and
   the model's optimum is injected into the next sample.

So with ``popsize`` above the population a well-fitting model saves the evaluations of the
rest of the candidates, and every round still keeps ``population`` workers busy. With the
default every candidate is evaluated and the model's part is its injected optimum: measured at
population 16 (9-D and 20-D ellipsoid, Rosenbrock and Ackley, 960 evaluations, seeds 1-3) the
default beat ``cmaes`` on five of six and by 2.3x in the geometric mean of the final errors,
twice the population on three of six (1.0x: far better on the ellipsoids, worse on 20-D
Rosenbrock and Ackley).
"""

from __future__ import annotations

import functools
import math
import pickle
import warnings
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from neuroptimus.optimization import pickles
from neuroptimus.optimization.algorithms.base import Algorithm, AlgorithmInfo
from neuroptimus.optimization.algorithms.cmaes_adapter import MIN_START_SIGMA
from neuroptimus.optimization.algorithms.common import (
    check_sizes,
    checked_results,
    describe,
    library_errors,
    start_point,
)
from neuroptimus.optimization.algorithms.start import StartingPoint

TAU_THRESHOLD = 0.85  # pycma's SurrogatePopulationSettings.tau_truth_threshold
# stored evaluations a start hands the model, best first: above a 20-D full quadratic's 231
# coefficients twice over; the model prunes to its own size limit
MODEL_POINTS = 500


@functools.cache
def _blas() -> Any:
    """threadpoolctl's controller of the BLAS libraries numpy loaded (found once)."""

    return ThreadpoolController()


def one_blas_thread() -> Any:
    """The model's linear algebra (a pseudo-inverse of up to d(d+3) rows) on one BLAS thread:
    OpenBLAS's threads make it 10-100 times slower when the cores are busy (measured at 20-D
    on 2 loaded cores: 0.4-12 s instead of 0.05 s), and the flow process has other work."""
    return _blas().limit(limits=1, user_api="blas")


def _tau_sample(popsize: int, evaluated: int) -> int:
    """How many of the newest points the model's ranking is checked on (pycma's n_for_tau)."""
    return int(max(15, min(1.2 * evaluated, 0.75 * popsize)))


class StandardNormal:
    """pycma's ``randn`` option: N(0, 1) samples of shape (rows, columns) from a generator owned
    by the run (pycma's default is numpy's process-wide one). Pickled with the strategy."""

    def __init__(self, seed: int) -> None:
        self.generator = np.random.Generator(np.random.PCG64(seed))

    def __call__(self, *shape: int) -> np.ndarray:
        return self.generator.standard_normal(shape)


class LqCMAES(Algorithm):
    """lq-CMA-ES on [0, 1]^d, ``population`` true evaluations per ask (see the module).

    Settings: ``sigma`` (0.3) and ``x0`` (the cube centre) as for ``cmaes``; ``popsize``
    (default 0: the population) is CMA-ES's number of candidates per iteration, of which the
    model decides how many are evaluated, in batches of the population.
    """

    info = AlgorithmInfo(
        name="cma-lq",
        label="lq-CMA-ES (pycma)",
        package="cma",
        multi_objective=False,
        parallel=True,
        defaults={"sigma": 0.3, "x0": None, "popsize": 0},
        summary="CMA-ES with a linear-quadratic surrogate; its optimum joins every sample.",
        model_points=MODEL_POINTS,
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)
        sigma = float(self.settings["sigma"])
        if not sigma > 0:
            raise ValueError(f"{describe(self.info)}: setting 'sigma' must be positive")
        popsize = int(self.settings["popsize"]) or population
        if popsize < max(population, 2):
            raise ValueError(
                f"{describe(self.info)}: setting 'popsize' must be at least the population "
                f"({population}) and 2, or 0 for the population"
            )
        mean = start_point(self.info, self.settings["x0"], dimension)
        self.popsize = popsize
        with library_errors(self.info, "setup"):
            from cma.fitness_models import LQModel  # noqa: PLC0415 (lazy: cma loads only when its algorithms run)

            self._es = self._new_es(mean, sigma)
            self._model = LQModel()
            self._model.settings.max_absolute_size = popsize  # as SurrogatePopulation sets it
        self._sample: list[np.ndarray] = []  # this iteration's candidates, as pycma made them
        self._candidates: np.ndarray | None = None  # the same inside the cube, evaluated
        self._values = np.full(popsize, np.nan)  # their true values, NaN: not evaluated
        self._asked: np.ndarray | None = None  # rows of the candidates in the pending ask
        self.true_evaluations = 0
        self.iterations = 0

    def _new_es(self, mean: np.ndarray, sigma: float) -> Any:
        import cma  # noqa: PLC0415 (lazy: cma loads only when its algorithms run)

        options = {
            "bounds": [0.0, 1.0],
            "popsize": self.popsize,
            "randn": StandardNormal(self.seed),
            "seed": math.nan,  # a number would reseed numpy's process-wide generator
            "verbose": -9,
            "verb_log": 0,  # no output files
            "verb_disp": 0,
            "CMA_diagonal": False,
        }
        return cma.CMAEvolutionStrategy(mean, sigma, options)

    def start_from(self, start: StartingPoint) -> str | None:
        """As ``cmaes``: the mean at the best point, the step size the spread of the best half
        population (bounded by ``sigma``). The surrogate model begins with the start's points
        (the best ones; it keeps as many as its size allows)."""
        ceiling = float(self.settings["sigma"])
        spread = start.spread(max(2, self.population // 2))
        sigma = ceiling if spread is None else float(np.clip(spread, MIN_START_SIGMA, ceiling))
        count = self.info.model_points
        with library_errors(self.info, "start"), warnings.catch_warnings(), one_blas_thread():
            warnings.simplefilter("ignore")  # pycma's note on a repeated point
            self._es = self._new_es(start.best, sigma)
            self._model.add_data(start.head(count), start.totals[:count])
        return None

    # -- ask/tell ---------------------------------------------------------------------------
    def ask(self) -> np.ndarray:
        with library_errors(self.info, "ask()"), one_blas_thread():
            if self._candidates is None:
                self._sample = self._es.ask()  # told back as sampled (pycma looks them up)
                self._candidates = np.clip(np.array(self._sample, dtype=float), 0.0, 1.0)
                self._values = np.full(len(self._candidates), np.nan)
            waiting = np.flatnonzero(np.isnan(self._values))
            if self._model.size > 1:
                predicted = np.array([self._model.eval(x) for x in self._candidates[waiting]])
                waiting = waiting[np.argsort(predicted, kind="stable")]
            self._asked = waiting[: self.population]
        return self._candidates[self._asked].copy()

    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        asked = None if self._asked is None else self._candidates[self._asked]
        _, totals = checked_results(self.info, asked, points, errors, totals)
        with library_errors(self.info, "tell()"), warnings.catch_warnings(), one_blas_thread():
            warnings.simplefilter("ignore")  # pycma's notes on a repeated point or a pinv
            model = self._model
            for row, total in zip(self._asked, totals, strict=True):
                self._values[row] = total
                model.add_data_row(self._candidates[row], float(total))
            self.true_evaluations += len(totals)
            evaluated = int(np.count_nonzero(~np.isnan(self._values)))
            model.sort(evaluated)
            tau = model.kendall(_tau_sample(self.popsize, evaluated))
            if tau >= TAU_THRESHOLD or evaluated == len(self._values):
                self._finish_iteration(tau, evaluated)
        self._asked = None

    def _finish_iteration(self, tau: float, evaluated: int) -> None:
        """Tell CMA-ES the iteration's values and inject the model's optimum."""
        model, candidates = self._model, self._candidates
        model.adapt_max_relative_size(tau)
        if evaluated == len(candidates):
            values = self._values.copy()
        else:  # the model's values, shifted so that the best is the best true value
            predicted = np.array([model.eval(x) for x in candidates])
            values = predicted - predicted.min() + np.nanmin(self._values)
        self._es.tell(self._sample, list(values))
        self._es.countevals = self.true_evaluations
        self._es.inject([model.xopt])
        self._sample, self._candidates, self.iterations = [], None, self.iterations + 1

    @property
    def done(self) -> bool:
        if self._candidates is not None:  # stop only between iterations
            return False
        with library_errors(self.info, "stop()"):
            return bool(self._es.stop())

    # -- resumption -------------------------------------------------------------------------
    def state(self) -> bytes:
        return pickle.dumps(self.__dict__, protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, state: bytes) -> None:
        self.__dict__.update(pickles.loads(state))
        # The model finds its points by Python's hash of their bytes, which differs from one
        # process to the next: hashed again here, so a resumed run finds them as the first did.
        model = self._model
        model.hashes = [model._hash(np.asarray(x)) for x in model.X] if model.count else []


ADAPTERS = (LqCMAES,)
