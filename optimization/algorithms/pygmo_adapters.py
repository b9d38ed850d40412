"""The thirteen pygmo algorithms of the paper's Table 2, driven through the loop bridge.

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
- The UDA gets a practically unlimited ``gen``: the framework counts evaluations and stops the
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
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from optimization.algorithms.base import AlgorithmInfo
from optimization.algorithms.bridge import BatchObjective, BridgedAlgorithm, LibraryLoop
from optimization.algorithms.common import check_sizes, describe, start_point

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
    import pygmo

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
) -> Any:
    """The library loop: evaluate the initial population (``start``, or ``population`` seeded
    uniform points) as one batch, then let pygmo evolve it."""
    import pygmo

    objective = _failing_for_good(objective)
    if start is None:
        start = np.random.default_rng(population_seed).random((population, dimension))
    first = np.asarray(objective(start), dtype=float)
    objectives = max(first.reshape(len(start), -1).shape[1], 2) if multi_objective else 1
    problem = pygmo.problem(_Problem(objective, dimension, objectives))
    pop = pygmo.population(problem, size=0, seed=population_seed)
    for x, f in zip(start, _fitness_rows(first, objectives), strict=True):
        pop.push_back(x, f)
    uda = make_uda(seed=algorithm_seed)
    if batch:
        uda.set_bfe(pygmo.bfe(_BatchEvaluator(objective, objectives)))
    if isinstance(uda, pygmo.nlopt) and (srand := _nlopt_srand()) is not None:
        srand(algorithm_seed)
    return pygmo.algorithm(uda).evolve(pop)


# --- settings ------------------------------------------------------------------------------


def _convert(info: AlgorithmInfo, name: str, value: Any) -> Any:
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
    min_population: ClassVar[int] = 2  # pygmo refuses (or crashes on) smaller populations

    def start(self) -> np.ndarray | None:
        """Initial population; None: ``population`` uniform points drawn from the seed."""
        return None

    def uda_arguments(self) -> dict[str, Any]:
        """Keyword arguments of the UDA, from the settings."""
        return {name: _convert(self.info, name, value) for name, value in self.settings.items()}

    @classmethod
    def make_uda(cls, arguments: dict[str, Any], seed: int) -> Any:
        import pygmo

        return getattr(pygmo, cls.uda)(gen=GENERATIONS, seed=seed, **arguments)

    def library_loop(self) -> LibraryLoop:
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
        population_seed, algorithm_seed = np.random.SeedSequence(self.seed).generate_state(2)
        return partial(
            _evolve,
            make_uda=partial(type(self).make_uda, arguments),
            start=self.start(),
            dimension=self.dimension,
            population=self.population,
            population_seed=int(population_seed),
            algorithm_seed=int(algorithm_seed),
            multi_objective=self.info.multi_objective,
            batch=self.info.parallel,
        )


def _info(
    name: str,
    label: str,
    parallel: bool,
    defaults: dict[str, Any],
    summary: str,
    multi_objective: bool = False,
) -> AlgorithmInfo:
    return AlgorithmInfo(
        name, f"{label} (pygmo)", "pygmo", multi_objective, parallel, defaults, summary
    )


_PSO_DEFAULTS = {
    "omega": 0.7298,
    "eta1": 2.05,
    "eta2": 2.05,
    "max_vel": 0.5,
    "variant": 5,
    "neighb_type": 2,
    "neighb_param": 4,
}
_TOLERANCES = {"ftol": 1e-6, "xtol": 1e-6}  # stop when the population has converged


class PSO(PygmoAlgorithm):
    """Particle swarm; particles move (and are evaluated) one after the other: serial."""

    uda = "pso"
    info = _info(
        "pygmo-pso",
        "PSO",
        False,
        _PSO_DEFAULTS,
        "Particle swarm optimisation; serial (one point per ask after the first population).",
    )


class PSOGenerational(PygmoAlgorithm):
    """PSO that moves the whole swarm, then evaluates it: one batch per generation."""

    uda = "pso_gen"
    info = _info(
        "pygmo-pso-gen",
        "PSO generational",
        True,
        _PSO_DEFAULTS,
        "Particle swarm optimisation, the swarm evaluated as one batch per generation.",
    )


class NSGA2(PygmoAlgorithm):
    """NSGA-II on the error vector; at least 5 individuals (pygmo 2.20 has no multiple-of-4
    rule any more)."""

    uda = "nsga2"
    min_population = 5
    info = _info(
        "pygmo-nsga2",
        "NSGA-II",
        True,
        {"cr": 0.95, "eta_c": 10.0, "m": 0.01, "eta_m": 50.0},
        "Non-dominated sorting genetic algorithm on the error components; batch per generation.",
        multi_objective=True,
    )


class DE(PygmoAlgorithm):
    """Differential evolution; trial vectors are evaluated one by one."""

    uda = "de"
    min_population = 5
    info = _info(
        "pygmo-de",
        "DE",
        False,
        {"F": 0.8, "CR": 0.9, "variant": 2, **_TOLERANCES},
        "Differential evolution; serial. Stops by itself when the population has converged.",
    )


class SADE(PygmoAlgorithm):
    """Self-adaptive DE (F and CR adapt per individual); serial."""

    uda = "sade"
    min_population = 7
    info = _info(
        "pygmo-sade",
        "SADE",
        False,
        {"variant": 2, "variant_adptv": 1, **_TOLERANCES},
        "Self-adaptive differential evolution; serial. Stops when the population has converged.",
    )


class DE1220(PygmoAlgorithm):
    """pygmo's DE that also adapts the mutation variant among ``allowed_variants`` (a string
    "2, 3, 7" or a list of numbers in 1..18)."""

    uda = "de1220"
    min_population = 7
    info = _info(
        "pygmo-de1220",
        "DE1220",
        False,
        {"allowed_variants": "2, 3, 7, 10, 13, 14, 15, 16", "variant_adptv": 1, **_TOLERANCES},
        "Differential evolution adapting F, CR and the mutation variant; serial.",
    )

    def uda_arguments(self) -> dict[str, Any]:
        variants = self.settings["allowed_variants"]
        if isinstance(variants, str):
            variants = variants.replace(",", " ").split()
        try:
            numbers = [float(v) for v in np.atleast_1d(variants)]
            if not numbers or not all(v.is_integer() for v in numbers):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(
                f"{describe(self.info)}: setting 'allowed_variants' must list integers in "
                f"1..18, got {variants!r}"
            ) from None
        return super().uda_arguments() | {"allowed_variants": [int(v) for v in numbers]}


class CMAES(PygmoAlgorithm):
    """pygmo's CMA-ES; the offspring of a generation form one batch. ``force_bounds`` (on by
    default here) keeps samples inside the cube; -1 means an automatic learning rate."""

    uda = "cmaes"
    min_population = 5
    info = _info(
        "pygmo-cmaes",
        "CMA-ES",
        True,
        {
            "sigma0": 0.5,
            "cc": -1.0,
            "cs": -1.0,
            "c1": -1.0,
            "cmu": -1.0,
            **_TOLERANCES,
            "force_bounds": True,
        },
        "Covariance matrix adaptation evolution strategy; batch per generation.",
    )


class XNES(PygmoAlgorithm):
    """Exponential natural evolution strategy; pygmo evaluates its samples one by one.
    ``sigma0`` -1 means the whole cube; -1 learning rates are automatic."""

    uda = "xnes"
    min_population = 4
    info = _info(
        "pygmo-xnes",
        "xNES",
        False,
        {
            "sigma0": -1.0,
            "eta_mu": -1.0,
            "eta_sigma": -1.0,
            "eta_b": -1.0,
            **_TOLERANCES,
            "force_bounds": True,
        },
        "Exponential natural evolution strategy; serial (one point per ask).",
    )


class _AntColony(PygmoAlgorithm):
    """Ant colonies keep a solution archive of ``ker`` individuals (pygmo's default 63),
    which cannot exceed the population: larger values are clamped to it."""

    def uda_arguments(self) -> dict[str, Any]:
        arguments = super().uda_arguments()
        if arguments["ker"] < 2:  # pygmo's maco crashes on ker 1
            raise ValueError(f"{describe(self.info)}: setting 'ker' must be at least 2")
        return arguments | {"ker": min(arguments["ker"], self.population)}


class GACO(_AntColony):
    uda = "gaco"
    info = _info(
        "pygmo-gaco",
        "GACO",
        True,
        {
            "ker": 63,
            "q": 1.0,
            "oracle": 0.0,
            "acc": 0.01,
            "threshold": 1,
            "n_gen_mark": 7,
            "impstop": 100000,
            "evalstop": 100000,
            "focus": 0.0,
        },
        "Extended ant colony optimisation; batch per generation.",
    )


class MACO(_AntColony):
    uda = "maco"
    info = _info(
        "pygmo-maco",
        "MACO",
        True,
        {"ker": 63, "q": 1.0, "threshold": 1, "n_gen_mark": 7, "evalstop": 100000, "focus": 0.0},
        "Multi-objective hypervolume-based ant colony optimisation; batch per generation.",
        multi_objective=True,
    )


class NSPSO(PygmoAlgorithm):
    """Non-dominated sorting PSO on the error vector; ``diversity_mechanism`` is one of
    "crowding distance", "niche count", "max min"."""

    uda = "nspso"
    info = _info(
        "pygmo-nspso",
        "NSPSO",
        True,
        {
            "omega": 0.6,
            "c1": 0.01,
            "c2": 0.5,
            "chi": 0.5,
            "v_coeff": 0.5,
            "leader_selection_range": 2,
            "diversity_mechanism": "crowding distance",
        },
        "Non-dominated sorting particle swarm on the error components; batch per generation.",
        multi_objective=True,
    )


class Praxis(PygmoAlgorithm):
    """NLopt's PRAXIS (Brent's principal-axis method), a local serial method started from
    ``x0`` (default: the cube centre; a number, d numbers or "a, b, ..."), like
    scipy-nelder-mead; the population is not used. The run ends when NLopt's ``xtol_rel`` or
    ``ftol_rel`` criterion is met (0 = off). NLopt's initial step shrinks with the distance of
    the start to the bounds, so a start near a face of the cube makes PRAXIS crawl. The seed
    only seeds the random steps PRAXIS takes on ill-conditioned problems."""

    uda = "nlopt"
    min_population = 1
    info = _info(
        "pygmo-praxis",
        "Praxis",
        False,
        {"x0": None, "xtol_rel": 1e-8, "ftol_rel": 0.0},
        "Brent's principal-axis method (NLopt) from a start point; local, serial.",
    )

    def start(self) -> np.ndarray:
        return start_point(self.info, self.settings["x0"], self.dimension)[None, :]

    def uda_arguments(self) -> dict[str, Any]:
        names = ("xtol_rel", "ftol_rel")
        return {name: _convert(self.info, name, self.settings[name]) for name in names}

    @classmethod
    def make_uda(cls, arguments: dict[str, Any], seed: int) -> Any:
        import pygmo

        uda = pygmo.nlopt("praxis")
        uda.xtol_rel, uda.ftol_rel = arguments["xtol_rel"], arguments["ftol_rel"]
        return uda  # NLopt's generator is seeded in the bridge thread (see _nlopt_srand)


class ABC(PygmoAlgorithm):
    """Artificial bee colony; ``limit`` trials before a food source is abandoned. Serial."""

    uda = "bee_colony"
    info = _info(
        "pygmo-abc",
        "ABC",
        False,
        {"limit": 20},
        "Artificial bee colony; serial (one point per ask after the first population).",
    )


ADAPTERS = (
    PSO,
    PSOGenerational,
    NSGA2,
    DE,
    SADE,
    DE1220,
    CMAES,
    XNES,
    GACO,
    MACO,
    NSPSO,
    Praxis,
    ABC,
)
