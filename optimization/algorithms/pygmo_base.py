"""How pygmo algorithms are driven through the loop bridge (the adapters are in pygmo_adapters).

Each adapter runs ONE ``pygmo.algorithm.evolve`` in the bridge thread, on a problem over
[0, 1]^d whose fitness is the bridge's batch objective:

- The initial population is drawn here (uniform in the cube, seeded from ``seed``) and
  evaluated as one batch. Its reply also shows how many error components k there are, so a
  multi-objective problem (``get_nobj() == k``) is only built then: the adapters need not know
  k when they are constructed. pygmo's multi-objective UDAs need two objectives or more; a
  single error component is given to them twice (which makes Pareto dominance plain comparison).
- UDAs with a batch hook (``set_bfe``: pso_gen, nsga2, cmaes, gaco, maco, nspso) get a batch
  fitness evaluator, so each generation reaches ``ask`` as one batch of the whole population
  (``parallel=True``). The others call the problem's ``fitness`` one point at a time: after the
  initial batch, every ``ask`` returns a single point (``parallel=False``).
- UDAs without a batch hook run as ``islands`` (pygmo's archipelago; ``islands`` module): each
  island evolves its own population, seeded from the run's seed, in epochs of
  ``migration_interval`` generations (``memory=True`` where the UDA has it, so F/CR adaptation,
  velocities and covariances carry over, as in pygmo's own archipelago); between epochs the
  ``migrants`` best of island i-1 replace the worst of island i where better (ring). An island
  whose epoch stopped short (fewer evaluations than its generations take) has met the UDA's
  own ftol/xtol criterion: it starts again from a new seeded population (``restarts``, see
  ``neuroptimus.optimization.algorithms.restarts``), which evolves for the rest of the epoch and
  then migrates with the others. Praxis islands are independent starts (no migration), restarted
  from seeded random points when NLopt stops.
- Batch UDAs get a practically unlimited ``gen``: the framework counts evaluations and stops the
  run. One long ``evolve`` (rather than ``gen=1`` in a loop) keeps every UDA's internal state —
  velocities, adapted F and CR, covariance, ABC's trial counters — also for UDAs that have no
  ``memory`` flag. ``evolve`` returns only when the UDA's own stopping criteria fire (ftol/xtol,
  GACO's impstop/evalstop, NLopt's tolerances); then ``done`` is True and ``result`` is pygmo's
  final population.
- The seeds of the initial population, of the UDA and (Praxis) of NLopt's generator derive from
  ``seed``: the same seed gives the same run, which is what resuming by replay relies on.

pygmo itself is imported lazily, which keeps the registry import cheap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from neuroptimus.optimization.algorithms.base import AlgorithmInfo
from neuroptimus.optimization.algorithms.bridge import BatchObjective, LibraryLoop
from neuroptimus.optimization.algorithms.bridged import BridgedAlgorithm, island_seeds
from neuroptimus.optimization.algorithms.common import check_sizes, describe
from neuroptimus.optimization.algorithms.islands import DEFAULT_ISLANDS, ring_migration
from neuroptimus.optimization.algorithms.restarts import restart_limit, restart_seed
from neuroptimus.optimization.algorithms.start import filled_population

GENERATIONS = 10**9  # "forever": the framework, not pygmo, ends the run


# --- what pygmo sees: a problem, a batch fitness evaluator, one evolve ---------------------


def _fitness_rows(values: Any, objectives: int) -> np.ndarray:
    """Replies of the batch objective — totals (n,) or errors (n, k) — as (n, objectives)."""
    values = np.asarray(values, dtype=float)
    values = values.reshape(len(values), -1)
    if values.shape[1] == 1 and objectives == 2:
        values = np.repeat(values, 2, axis=1)  # one error component, given twice
    return values


class _Problem:
    """pygmo UDP over [0, 1]^d; ``fitness`` sends one point to the batch objective."""

    def __init__(self, objective: BatchObjective, dimension: int, objectives: int) -> None:
        self.objective, self.dimension, self.objectives = objective, dimension, objectives

    def fitness(self, x: np.ndarray) -> np.ndarray:
        return _fitness_rows(self.objective(np.reshape(x, (1, -1))), self.objectives)[0]

    def get_bounds(self) -> tuple[list[float], list[float]]:
        return [0.0] * self.dimension, [1.0] * self.dimension

    def get_nobj(self) -> int:
        return self.objectives

    def get_name(self) -> str:
        return "Neuroptimus batch objective"


class _BatchEvaluator:
    """pygmo UDBFE: all decision vectors of a call go to the batch objective as one batch."""

    def __init__(self, objective: BatchObjective, objectives: int) -> None:
        self.objective, self.objectives = objective, objectives

    def __call__(self, problem: Any, decision_vectors: np.ndarray) -> np.ndarray:
        points = np.reshape(decision_vectors, (-1, problem.get_nx()))
        return _fitness_rows(self.objective(points), self.objectives).reshape(-1)

    def get_name(self) -> str:
        return "Neuroptimus batch evaluator"


@functools.cache
def _nlopt_srand() -> Any:
    """``nlopt_srand`` of the NLopt library pygmo links, or None if it cannot be found.

    Praxis draws random numbers from NLopt's thread-local generator, which is seeded from the
    clock unless ``nlopt_srand`` is called in that thread; pygmo has no binding for it.
    """
    import pygmo  # noqa: PLC0415 (lazy: pygmo loads only when its algorithms run)

    bundled = sorted((Path(pygmo.__file__).parent.parent / "pygmo.libs").glob("libnlopt*"))
    for path in [*map(str, bundled), ctypes.util.find_library("nlopt")]:
        try:
            srand = ctypes.CDLL(path).nlopt_srand
        except (OSError, AttributeError, TypeError):
            continue
        srand.argtypes, srand.restype = [ctypes.c_ulong], None
        return srand
    return None


def _failing_for_good(objective: BatchObjective) -> BatchObjective:
    """``objective``, except that after one call raised, every later call re-raises at once.

    NLopt's callback in pygmo records an exception but PRAXIS may evaluate a few more points
    before it stops; those must not reach the bridge (after it closed, nobody would answer).
    A closure, not an object: pygmo deep-copies its problems, and copies would not share a flag.
    """
    failure: list[BaseException] = []

    def guarded(points: np.ndarray) -> np.ndarray:
        if failure:
            raise failure[0]
        try:
            return objective(points)
        except BaseException as error:
            failure.append(error)
            raise

    return guarded


@dataclass(frozen=True)
class _Restarts:
    """Where an island's restarts draw their seeds, and how many it may make (None: no
    limit; 0: the island ends when the UDA stops)."""

    seed: int  # the run's seed
    island: int
    limit: int | None

    def allow(self, done: int) -> bool:
        return self.limit is None or done < self.limit

    def seeds(self, restart: int) -> tuple[int, int, int]:
        """Seeds of the population, of the UDA and of the UDA of the epochs after the first."""
        seed = restart_seed(self.seed, self.island, restart)
        return tuple(int(s) for s in np.random.SeedSequence(seed).generate_state(3))


_NO_RESTARTS = _Restarts(0, 0, 0)


def _evolve(
    objective: BatchObjective,
    *,
    make_uda: Any,
    start: np.ndarray | None,
    dimension: int,
    population: int,
    population_seed: int,
    algorithm_seed: int,
    multi_objective: bool,
    batch: bool,
    epoch: tuple[int, int] | None = None,
    restarts: _Restarts = _NO_RESTARTS,
) -> Any:
    """The library loop: evaluate the initial population (``start``, or ``population`` seeded
    uniform points) as one batch, then let pygmo evolve it. ``epoch`` (islands): (generations
    per evolve, evaluations per generation or 0 if the UDA never stops by itself). When the
    UDA stops by itself, the island starts again (``restarts``) from a new uniform population
    of the same size, drawn from a seed derived from the run's seed, the island and the
    restart count."""
    import pygmo  # noqa: PLC0415 (lazy: pygmo loads only when its algorithms run)

    exchange = getattr(objective, "exchange", None)
    objective = _failing_for_good(objective)
    if start is None:
        start = np.random.default_rng(population_seed).random((population, dimension))
    first = np.asarray(objective(start), dtype=float)
    objectives = max(first.reshape(len(start), -1).shape[1], 2) if multi_objective else 1
    problem = pygmo.problem(_Problem(objective, dimension, objectives))

    def populated(points: np.ndarray, values: np.ndarray, seed: int) -> Any:
        pop = pygmo.population(problem, size=0, seed=seed)
        for x, f in zip(points, _fitness_rows(values, objectives), strict=True):
            pop.push_back(x, f)
        return pop

    def algorithm(seed: int, **generations: int) -> Any:
        uda = make_uda(seed=seed, **generations)
        if batch:
            uda.set_bfe(pygmo.bfe(_BatchEvaluator(objective, objectives)))
        if isinstance(uda, pygmo.nlopt) and (srand := _nlopt_srand()) is not None:
            srand(seed)
        return pygmo.algorithm(uda)

    def restarted(restart: int) -> tuple[Any, int, int]:
        """A new population, evaluated as one batch, and the seeds of its UDAs."""
        population_seed, first_seed, later_seed = restarts.seeds(restart)
        points = np.random.default_rng(population_seed).random(start.shape)
        return populated(points, objective(points), population_seed), first_seed, later_seed

    pop, restart = populated(start, first, population_seed), 0
    if epoch is None:
        while True:
            pop = algorithm(algorithm_seed).evolve(pop)
            if not restarts.allow(restart):
                return pop
            restart += 1
            pop, algorithm_seed, _ = restarted(restart)
    # An island: evolve in epochs, migrating in between (the archipelago answers exchange()).
    generations, per_generation = epoch
    evolver, length, later_seed = algorithm(algorithm_seed), generations, None
    while True:
        before = pop.problem.get_fevals()
        if length:
            pop = evolver.evolve(pop)
        used = pop.problem.get_fevals() - before
        if per_generation and used < length * per_generation:  # the UDA's own criterion
            if not restarts.allow(restart):
                return pop
            restart += 1
            pop, first_seed, later_seed = restarted(restart)
            # The new start evolves for what is left of the epoch (its first population took
            # the time of a generation), so that it reaches the migration with the others.
            length -= used // per_generation + 1
            if length > 0:
                evolver = algorithm(first_seed, gen=length)
                continue
            length = 0
        for index, x, f in exchange((pop.get_x().copy(), pop.get_f().copy())):
            pop.set_xf(index, x, f)
        if length != generations:  # after a restart's shortened epoch: whole epochs again
            evolver, length = algorithm(later_seed, gen=generations), generations


# --- settings ------------------------------------------------------------------------------

ISLAND_SETTINGS = ("islands", "migration_interval", "migrants", "restarts")
# Serial UDAs run as an archipelago (pygmo's defaults: a ring, one migrant per island).
ISLAND_DEFAULTS = {"islands": DEFAULT_ISLANDS, "migration_interval": 10, "migrants": 1}


def convert_setting(info: AlgorithmInfo, name: str, value: Any) -> Any:
    """A setting converted to the type of its default (problem files give scalars, strings)."""
    default = info.defaults[name]
    try:
        if isinstance(default, bool):
            if value in (True, False):  # also 0 and 1
                return bool(value)
            raise ValueError
        if isinstance(default, int):
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        kinds = {bool: "true or false", int: "an integer", float: "a number"}
        raise ValueError(
            f"{describe(info)}: setting {name!r} must be {kinds.get(type(default), 'a string')}, "
            f"got {value!r}"
        ) from None


def _pygmo_message(error: Exception) -> str:
    """The useful part of pygmo's 'function: ... where: ... what: ...' messages."""
    return str(error).split("what:")[-1].strip()


# --- the adapters --------------------------------------------------------------------------


class PygmoAlgorithm(BridgedAlgorithm):
    """Shared adapter: a subclass names its pygmo UDA and lists its keyword arguments in
    ``info.defaults``; ``info.parallel`` says whether the UDA gets the batch evaluator."""

    uda: ClassVar[str]  # name of the pygmo class
    takes_start = True
    min_population: ClassVar[int] = 2  # pygmo refuses (or crashes on) smaller populations
    has_memory: ClassVar[bool] = False  # the UDA takes ``memory`` (islands set it)
    # Evaluations per generation per individual of a UDA that can stop by itself (0: never).
    stops_by_itself: ClassVar[int] = 0

    def start(self) -> np.ndarray | None:
        """Initial population; None: ``population`` uniform points drawn from the seed."""
        return None

    def uda_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the UDA, from the settings."""
        return {
            name: convert_setting(self.info, name, value)
            for name, value in self.settings.items()
            if name not in ISLAND_SETTINGS
        }

    @classmethod
    def make_uda(cls, arguments: dict[str, Any], seed: int, gen: int = GENERATIONS) -> Any:
        import pygmo  # noqa: PLC0415 (lazy: pygmo loads only when its algorithms run)

        memory = {"memory": True} if cls.has_memory and gen != GENERATIONS else {}
        return getattr(pygmo, cls.uda)(gen=gen, seed=seed, **arguments, **memory)

    def island_loops(self) -> list[LibraryLoop] | None:
        if self.info.parallel:
            return None
        return [self._loop(seed, island) for island, seed in enumerate(self._island_seeds())]

    def migration(self) -> Any:
        if "migrants" not in self.info.defaults:
            return None  # independent starts
        return partial(ring_migration, migrants=self._island_setting("migrants", 0))

    def _island_seeds(self) -> list[int]:
        return island_seeds(self.seed, self.islands)

    def _island_setting(self, name: str, low: int) -> int:
        value = convert_setting(self.info, name, self.settings[name])
        if value < low:
            raise ValueError(f"{describe(self.info)}: setting {name!r} must be at least {low}")
        return value

    def island_start(self, island: int, seed: int) -> np.ndarray | None:
        """Initial population of an island; None: uniform points drawn from its seed."""
        return self.start()

    def _initial(self, island: int | None, seed: int, population_seed: int) -> np.ndarray | None:
        """The initial population of the run (``island`` None) or of an island: given start
        points (``start_from``) at its head, island i taking the i-th best, the (i +
        islands)-th …; the rest as without them."""
        initial = self.start() if island is None else self.island_start(island, seed)
        if self._start is None:
            return initial
        if island is None:
            given = self._start.head(self.population)
        else:
            given = self._start.for_island(island, self.islands, self.population)
        if not len(given):
            return initial
        if initial is None:
            return filled_population(given, self.population, self.dimension, population_seed)
        initial = np.array(initial, dtype=float)
        initial[: len(given)] = given[: len(initial)]
        return initial

    def library_loop(self) -> LibraryLoop:
        """The loop of one library run (of island 0 for a serial UDA)."""
        if self.info.parallel:
            return self._loop(self.seed, None)
        return self._loop(self._island_seeds()[0], 0)

    def _loop(self, seed: int, island: int | None) -> LibraryLoop:
        check_sizes(self.info, self.dimension, self.population)
        if self.population < self.min_population:
            raise ValueError(
                f"{describe(self.info)} needs a population of at least {self.min_population}, "
                f"got {self.population}"
            )
        arguments = self.uda_arguments()
        try:
            type(self).make_uda(arguments, seed=0)  # pygmo checks the values
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"{describe(self.info)}: invalid settings: {_pygmo_message(error)}"
            ) from None
        population_seed, algorithm_seed = np.random.SeedSequence(seed).generate_state(2)
        make_uda, epoch = partial(type(self).make_uda, arguments), None
        if island is not None and "migration_interval" in self.info.defaults:
            interval = self._island_setting("migration_interval", 2)
            make_uda = partial(type(self).make_uda, arguments, gen=interval)
            epoch = (interval, self.stops_by_itself * self.population)
        return partial(
            _evolve,
            make_uda=make_uda,
            start=self._initial(island, seed, int(population_seed)),
            dimension=self.dimension,
            population=self.population,
            population_seed=int(population_seed),
            algorithm_seed=int(algorithm_seed),
            multi_objective=self.info.multi_objective,
            batch=self.info.parallel,
            epoch=epoch,
            restarts=_NO_RESTARTS
            if island is None
            else _Restarts(self.seed, island, restart_limit(self.info, self.settings)),
        )
