"""The nine inspyred algorithms of the paper's Table 2 (machinery in ``inspyred_base``)."""

from __future__ import annotations

import types
from random import Random
from typing import Any

from inspyred import ec, swarm
from inspyred.ec import archivers, emo, replacers, selectors, variators

from neuroptimus.optimization.algorithms.base import AlgorithmInfo
from neuroptimus.optimization.algorithms.common import describe
from neuroptimus.optimization.algorithms.inspyred_base import InspyredAlgorithm
from neuroptimus.optimization.algorithms.islands import DEFAULT_ISLANDS

_MUTATION = {"mutation_rate": 0.1, "gaussian_stdev": 1.0}  # inspyred's defaults
_BLEND = {"crossover_rate": 1.0, "blx_alpha": 0.1}


class CustomEvolutionaryOptimization(InspyredAlgorithm):
    """Generational EA (``ec.EvolutionaryComputation``) with the paper's adjusted defaults.

    Tournament selection of a whole population of parents, blend crossover, Gaussian mutation
    (per-coordinate rate 0.25, std 0.5) and generational replacement keeping ``num_elites``
    (default: half the population) of the best parents. Crossover pairs parents, so an odd
    population evaluates one offspring fewer.
    """

    info = AlgorithmInfo(
        name="inspyred-ceo",
        label="Custom Evolutionary Optimization (inspyred)",
        package="inspyred",
        multi_objective=False,
        parallel=True,
        defaults={
            "num_elites": None,  # None: half the population
            "mutation_rate": 0.25,
            "gaussian_stdev": 0.5,
            "tournament_size": 2,
            **_BLEND,
        },
        summary="Elitist evolutionary algorithm: blend crossover, Gaussian mutation.",
    )
    min_population = 2

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        algorithm = ec.EvolutionaryComputation(prng)
        algorithm.selector = selectors.tournament_selection
        algorithm.variator = [variators.blend_crossover, variators.gaussian_mutation]
        algorithm.replacer = replacers.generational_replacement
        return algorithm

    def evolve_args(self) -> dict[str, Any]:
        elites = self._number(
            "num_elites", 0, self.population, integer=True, default=self.population // 2
        )
        return {
            "num_elites": elites,
            **self._tournament_args(),
            **self._crossover_args(),
            **self._mutation_args(),
        }


class EvolutionStrategy(InspyredAlgorithm):
    """``ec.ES``: every parent gets one self-adaptive Gaussian mutant; (mu + mu) survival.

    The per-coordinate step sizes evolve with the candidates (initially uniform in [0, 1]);
    ``tau`` and ``tau_prime`` default to inspyred's 1/sqrt(2 sqrt(d)) and 1/sqrt(2d).
    """

    info = AlgorithmInfo(
        name="inspyred-es",
        label="Classic Evolution Strategy (inspyred)",
        package="inspyred",
        multi_objective=False,
        parallel=True,
        defaults={"tau": None, "tau_prime": None, "epsilon": 1e-5},
        summary="(mu + mu) evolution strategy with self-adaptive step sizes.",
    )

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        return ec.ES(prng)

    def evolve_args(self) -> dict[str, Any]:
        return {
            "tau": self._number("tau", 0.0, above=True),
            "tau_prime": self._number("tau_prime", 0.0, above=True),
            "epsilon": self._number("epsilon", 0.0, above=True),
        }


class ParticleSwarm(InspyredAlgorithm):
    """``swarm.PSO``: each particle moves from its previous position, its own best and its
    neighbourhood's best (topology ``star``: the whole swarm; ``ring``: ``neighborhood_size``
    particles around it)."""

    info = AlgorithmInfo(
        name="inspyred-pso",
        label="PSO (inspyred)",
        package="inspyred",
        multi_objective=False,
        parallel=True,
        defaults={
            "inertia": 0.5,
            "cognitive_rate": 2.1,
            "social_rate": 2.1,
            "topology": "star",
            "neighborhood_size": 3,
        },
        summary="Particle swarm optimization (star or ring topology).",
    )

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        algorithm = swarm.PSO(prng)
        algorithm.topology = getattr(swarm.topologies, f"{args['topology']}_topology")
        return algorithm

    def evolve_args(self) -> dict[str, Any]:
        topology = self.settings["topology"]
        if topology not in ("star", "ring"):
            raise ValueError(
                f"{describe(self.info)}: setting 'topology' must be 'star' or 'ring', "
                f"got {topology!r}"
            )
        return {
            "inertia": self._number("inertia", 0.0),
            "cognitive_rate": self._number("cognitive_rate", 0.0),
            "social_rate": self._number("social_rate", 0.0),
            "topology": topology,
            "neighborhood_size": self._number("neighborhood_size", 1, integer=True),
        }


class NSGA2(InspyredAlgorithm):
    """``emo.NSGA2`` on the error vector: binary tournaments, blend crossover and Gaussian
    mutation, survival by non-dominated sorting and crowding distance."""

    info = AlgorithmInfo(
        name="inspyred-nsga2",
        label="NSGA-II (inspyred)",
        package="inspyred",
        multi_objective=True,
        parallel=True,
        defaults={"tournament_size": 2, **_BLEND, **_MUTATION},
        summary="Multi-objective genetic algorithm (non-dominated sorting, crowding).",
    )
    min_population = 2

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        algorithm = emo.NSGA2(prng)
        algorithm.variator = [variators.blend_crossover, variators.gaussian_mutation]
        return algorithm

    def evolve_args(self) -> dict[str, Any]:
        return {**self._tournament_args(), **self._crossover_args(), **self._mutation_args()}


class DifferentialEvolution(InspyredAlgorithm):
    """``ec.DEA``: tournament-selected parents, heuristic crossover towards the better one,
    Gaussian mutation; the offspring replace the worst individuals (steady state).

    ``num_selected`` parents (default: the whole population) give as many offspring per
    generation, i.e. per batch; inspyred's own default of 2 would make batches of 2.
    """

    info = AlgorithmInfo(
        name="inspyred-de",
        label="Differential Evolution (inspyred)",
        package="inspyred",
        multi_objective=False,
        parallel=True,
        defaults={
            "num_selected": None,  # None: the population
            "tournament_size": 2,
            "crossover_rate": 1.0,
            **_MUTATION,
        },
        summary="Differential evolution: heuristic crossover, steady-state replacement.",
    )
    min_population = 2

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        return ec.DEA(prng)

    def evolve_args(self) -> dict[str, Any]:
        selected = self._number(
            "num_selected", 2, self.population, integer=True, default=self.population
        )
        return {
            **self._tournament_args(),
            "num_selected": selected,
            "crossover_rate": self._number("crossover_rate", 0.0, 1.0),
            **self._mutation_args(),
        }


def _own_grid_archiver() -> Any:
    """A private copy of ``archivers.adaptive_grid_archiver``.

    inspyred keeps the adaptive grid as attributes of that module-level function (it refers to
    itself by its global name), so concurrent or abandoned PAES runs would share one grid. The
    copy runs inspyred's code with its own name bound to itself.
    """
    original = archivers.adaptive_grid_archiver
    scope = dict(vars(archivers))
    copy = types.FunctionType(original.__code__, scope, original.__name__, original.__defaults__)
    scope[original.__name__] = copy
    return copy


class PAES(InspyredAlgorithm):
    """``emo.PAES`` on the error vector: a (1+1) evolution strategy with an adaptive-grid
    archive of non-dominated points. Serial: one mutant per generation; ``islands``
    independent runs (each with its own archive), one point of each per ask.
    """

    info = AlgorithmInfo(
        name="inspyred-paes",
        label="PAES (inspyred)",
        package="inspyred",
        multi_objective=True,
        parallel=False,
        defaults={
            "max_archive_size": 100,
            "num_grid_divisions": 1,
            **_MUTATION,
            "islands": DEFAULT_ISLANDS,
        },
        summary="Pareto archived (1+1) evolution strategy; serial: "
        f"{DEFAULT_ISLANDS} independent runs, one point of each per ask.",
    )

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        algorithm = emo.PAES(prng)
        algorithm.archiver = _own_grid_archiver()
        return algorithm

    def evolve_args(self) -> dict[str, Any]:
        return {
            "max_archive_size": self._number("max_archive_size", 1, integer=True),
            "num_grid_divisions": self._number("num_grid_divisions", 1, 8, integer=True),
            **self._mutation_args(),
        }


class SimulatedAnnealing(InspyredAlgorithm):
    """``ec.SA``: one Gaussian mutant per generation, accepted if better or with probability
    exp(-|delta| / temperature); the temperature is multiplied by ``cooling_rate`` after every
    evaluation. Serial: ``islands`` independent runs, one point of each per ask."""

    info = AlgorithmInfo(
        name="inspyred-sa",
        label="Simulated Annealing (inspyred)",
        package="inspyred",
        multi_objective=False,
        parallel=False,
        defaults={
            "temperature": 1.0,
            "cooling_rate": 0.95,
            **_MUTATION,
            "islands": DEFAULT_ISLANDS,
        },
        summary="Simulated annealing with Gaussian moves; serial: "
        f"{DEFAULT_ISLANDS} independent runs, one point of each per ask.",
    )

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        return ec.SA(prng)

    def evolve_args(self) -> dict[str, Any]:
        return {
            "temperature": self._number("temperature", 0.0),
            "cooling_rate": self._number("cooling_rate", 0.0, 1.0, above=True),
            **self._mutation_args(),
        }


class GeneticAlgorithm(InspyredAlgorithm):
    """``ec.GA`` for real values: rank selection, n-point crossover, Gaussian mutation (in
    place of inspyred's bit flips) and generational replacement keeping ``num_elites``."""

    info = AlgorithmInfo(
        name="inspyred-ga",
        label="Simple Genetic Algorithm (inspyred)",
        package="inspyred",
        multi_objective=False,
        parallel=True,
        defaults={
            "num_elites": 0,
            "num_crossover_points": 1,
            "crossover_rate": 1.0,
            **_MUTATION,
        },
        summary="Genetic algorithm: rank selection, n-point crossover, Gaussian mutation.",
    )
    min_population = 2

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        algorithm = ec.GA(prng)
        algorithm.variator = [variators.n_point_crossover, variators.gaussian_mutation]
        return algorithm

    def evolve_args(self) -> dict[str, Any]:
        return {
            "num_selected": self.population,
            "num_elites": self._number("num_elites", 0, self.population, integer=True),
            "num_crossover_points": self._number("num_crossover_points", 1, integer=True),
            "crossover_rate": self._number("crossover_rate", 0.0, 1.0),
            **self._mutation_args(),
        }


class EstimationOfDistribution(InspyredAlgorithm):
    """``ec.EDA``: a population of samples from independent normal distributions fitted to the
    ``num_selected`` best individuals (default: half the population).

    inspyred uses each coordinate's variance as the sampling standard deviation, which narrows
    the search quickly in the unit cube.
    """

    info = AlgorithmInfo(
        name="inspyred-eda",
        label="Estimation of Distribution Algorithm (inspyred)",
        package="inspyred",
        multi_objective=False,
        parallel=True,
        defaults={"num_selected": None, "num_elites": 0},  # None: half the population
        summary="Estimation of distribution algorithm with a per-coordinate normal model.",
    )
    min_population = 4

    @staticmethod
    def build(prng: Random, args: dict[str, Any]) -> ec.EvolutionaryComputation:
        return ec.EDA(prng)

    def evolve_args(self) -> dict[str, Any]:
        selected = self._number(
            "num_selected", 2, self.population, integer=True, default=self.population // 2
        )
        return {
            "num_selected": selected,
            "num_offspring": self.population,
            "num_elites": self._number("num_elites", 0, self.population, integer=True),
        }


ADAPTERS = (
    CustomEvolutionaryOptimization,
    EvolutionStrategy,
    ParticleSwarm,
    NSGA2,
    DifferentialEvolution,
    PAES,
    SimulatedAnnealing,
    GeneticAlgorithm,
    EstimationOfDistribution,
)
