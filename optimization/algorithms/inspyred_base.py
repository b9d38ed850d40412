"""How inspyred algorithms are driven through the loop bridge (adapters: inspyred_adapters).

inspyred owns its loop (``ec.evolve``) but hands its evaluator the whole candidate list of a
generation, so one inspyred generation is one ask/tell batch. Every run searches the unit cube
(uniform generator, ``Bounder(0, 1)``), minimises (``maximize=False``), draws only from its
own ``random.Random(seed)`` (so the bridge can resume it by replay) and never stops by itself:
the framework counts evaluations and ends the run. Single-objective algorithms get the weighted
totals; NSGA-II and PAES get each error vector as an ``emo.Pareto``, whose comparisons
``maximize=False`` turns into domination in the minimising sense.

Settings default to inspyred's own values, as in the paper, except CEO's (the paper's adjusted
ones) and those inspyred leaves to the caller (SA's temperature schedule, DE's batch size, the
PAES archive size). Gaussian mutation acts in cube units, so inspyred's standard deviation of 1
spans the whole cube.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from random import Random
from typing import Any

import numpy as np
from inspyred import ec
from inspyred.ec import emo

from neuroptimus.optimization.algorithms.bridge import BatchObjective, LibraryLoop
from neuroptimus.optimization.algorithms.bridged import BridgedAlgorithm, island_seeds
from neuroptimus.optimization.algorithms.common import check_sizes, describe


def _never_terminate(population, num_generations, num_evaluations, args) -> bool:
    """Terminator that never ends a run: the framework, not inspyred, owns the budget."""
    return False


def _evolve(
    objective: BatchObjective,
    *,
    build: Callable[[Random, dict[str, Any]], ec.EvolutionaryComputation],
    dimension: int,
    pop_size: int,
    seed: int,
    args: dict[str, Any],
    multi_objective: bool,
    seeds: list[list[float]] | None = None,
) -> list:
    """Thread body: one inspyred run whose evaluator sends each generation as one batch."""
    algorithm = build(Random(seed), args)
    algorithm.terminator = _never_terminate

    def generator(random: Random, args: dict) -> list[float]:
        return [random.random() for _ in range(dimension)]

    def evaluator(candidates: list, args: dict) -> list:
        if not candidates:  # would spin forever without asking the framework for anything
            raise RuntimeError("inspyred produced an empty generation")
        values = objective(np.array(candidates, dtype=float)).tolist()
        return [emo.Pareto(row) for row in values] if multi_objective else values

    bounder = ec.Bounder(0.0, 1.0)
    return algorithm.evolve(
        generator, evaluator, pop_size=pop_size, seeds=seeds, maximize=False, bounder=bounder,
        **args,
    )  # fmt: skip


class InspyredAlgorithm(BridgedAlgorithm):
    """Shared adapter: a subclass gives ``info``, ``build`` and ``evolve_args``.

    ``info.parallel`` False means inspyred varies a single individual (pop_size 1); such an
    adapter runs ``islands`` independent restarts (seeds derived from the run's seed), each
    ask holding one point of each.
    """

    min_population = 1
    takes_start = True

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        """The configured EC (a static method: the library loop must not hold the adapter)."""
        raise NotImplementedError

    def evolve_args(self) -> dict[str, Any]:
        """The checked keyword arguments inspyred's ``evolve`` receives."""
        return {}

    def island_loops(self) -> list[LibraryLoop] | None:
        if self.info.parallel:
            return None
        seeds = island_seeds(self.seed, self.islands)
        return [self._loop(seed, island) for island, seed in enumerate(seeds)]

    def library_loop(self) -> LibraryLoop:
        return self._loop(self.seed)

    def _seeds(self, island: int | None, size: int) -> list[list[float]] | None:
        """inspyred's ``seeds``: the given start points (``start_from``) that begin the
        population (island i of a serial method: the i-th best, the (i + islands)-th …)."""
        if self._start is None:
            return None
        if island is None:
            given = self._start.head(size)
        else:
            given = self._start.for_island(island, self.islands, size)
        return [list(map(float, point)) for point in given] or None

    def _loop(self, seed: int, island: int | None = None) -> LibraryLoop:
        check_sizes(self.info, self.dimension, self.population)
        if self.info.parallel and self.population < self.min_population:
            raise ValueError(
                f"{describe(self.info)} needs a population of at least {self.min_population}"
            )
        return partial(
            _evolve,
            build=type(self).build,
            dimension=self.dimension,
            pop_size=self.population if self.info.parallel else 1,
            seed=seed,
            args=self.evolve_args(),
            multi_objective=self.info.multi_objective,
            seeds=self._seeds(island, self.population if self.info.parallel else 1),
        )

    # --- checked settings ---------------------------------------------------------------

    def _number(
        self,
        name: str,
        low: float,
        high: float = math.inf,
        *,
        integer: bool = False,
        above: bool = False,
        default: Any = None,
    ) -> Any:
        """Setting ``name`` checked to lie in [low, high] ((low, high] if ``above``);
        ``None`` stands for ``default``."""
        value = self.settings[name]
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        fits = (number > low if above else number >= low) and number <= high
        if isinstance(value, bool) or not fits or (integer and not number.is_integer()):
            kind = "an integer" if integer else "a number"
            interval = f"{'(' if above else '['}{low:g}, {high:g}]"
            raise ValueError(
                f"{describe(self.info)}: setting {name!r} must be {kind} in {interval}, "
                f"got {value!r}"
            )
        return int(number) if integer else number

    def _mutation_args(self) -> dict[str, float]:
        return {
            "mutation_rate": self._number("mutation_rate", 0.0, 1.0),
            "gaussian_stdev": self._number("gaussian_stdev", 0.0, above=True),
        }

    def _crossover_args(self) -> dict[str, float]:
        return {
            "crossover_rate": self._number("crossover_rate", 0.0, 1.0),
            "blx_alpha": self._number("blx_alpha", 0.0),
        }

    def _tournament_args(self) -> dict[str, int]:
        return {
            "num_selected": self.population,
            "tournament_size": self._number("tournament_size", 1, integer=True),
        }
