"""BluePyOpt's multi-objective evolutionary algorithms NSGA-II and IBEA behind ask/tell.

``bluepyopt.deapext.optimisations.DEAPOptimisation`` owns its generational loop, so it runs in
the loop bridge's thread. Its ``map_function`` hook receives every individual DEAP evaluates in
a generation and sends them to the batch objective as one batch: one ask per generation. DEAP
evaluates only changed individuals; with the default ``cxpb = mutpb = 1`` that is the whole
population, with smaller probabilities a batch may be smaller.

DEAP and BluePyOpt draw from the stdlib ``random`` module (BluePyOpt seeds it; NSGA-II and IBEA
do not use numpy's global generator). Their ``random`` is routed to a generator the run's
thread owns (``routed_random``), so a run is a function of its seed alone, whatever other runs
or other code in the process draw meanwhile.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.base import AlgorithmInfo
from neuroptimus.optimization.algorithms.bridge import BatchObjective, LibraryLoop
from neuroptimus.optimization.algorithms.bridged import BridgedAlgorithm
from neuroptimus.optimization.algorithms.common import check_sizes, checked_results, describe
from neuroptimus.optimization.algorithms.routed_random import own_generator, route
from neuroptimus.optimization.algorithms.start import filled_population

_FOREVER = 2**62  # max_ngen: the framework counts evaluations and ends the run, not BluePyOpt


class _BatchEvaluator:
    """The minimal BluePyOpt evaluator: ``dimension`` parameters in [0, 1] and ``objectives``
    objectives, evaluated by the batch objective. ``map`` is the optimisation's map function:
    it ignores the per-individual function DEAP gives it and evaluates all individuals at once.
    """

    def __init__(self, objective: BatchObjective, dimension: int, objectives: int) -> None:
        from bluepyopt.objectives import Objective  # noqa: PLC0415 (lazy: bluepyopt loads only when its algorithms run)
        from bluepyopt.parameters import Parameter  # noqa: PLC0415 (lazy: bluepyopt loads only when its algorithms run)

        self.params = [Parameter(f"x{i}", bounds=[0.0, 1.0]) for i in range(dimension)]
        self.param_names = [param.name for param in self.params]
        self.objectives = [Objective(f"error{i}") for i in range(objectives)]
        self.objective = objective

    def errors(self, individuals: list) -> np.ndarray:
        """(n, k) errors of one batch."""
        errors = np.asarray(self.objective(np.array(individuals, dtype=float)), dtype=float)
        return errors.reshape(len(individuals), -1)

    def map(self, _evaluate: Any, individuals: Any) -> list[tuple[float, ...]]:
        individuals = list(individuals)
        if not individuals:
            return []
        errors = self.errors(individuals)
        # BluePyOpt gives each fitness its own weights (minimise every objective); set them from
        # the told columns, so the count may be learnt at the first batch. Offspring are copies.
        weights = (-1.0,) * errors.shape[1]
        for individual in individuals:
            individual.fitness.weights = weights
        return [tuple(row) for row in errors]

    def init_simulator_and_evaluate_with_lists(self, values: list[float]) -> tuple[float, ...]:
        """One individual (DEAP's per-individual hook; the map above bypasses it)."""
        return tuple(self.errors([values])[0])


class _QuietBluePyOpt(logging.Filter):
    """BluePyOpt logs each generation's statistics on the ``__main__`` logger: drop those."""

    def __init__(self, package_dir: str) -> None:
        super().__init__()
        self.package_dir = package_dir

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self.package_dir)


def _deap_loop(
    objective: BatchObjective,
    selector: str,
    dimension: int,
    population: int,
    seed: int,
    objectives: int,
    eta: float,
    cxpb: float,
    mutpb: float,
    parents: np.ndarray | None = None,
) -> Any:
    """Run BluePyOpt's (mu + lambda) loop with mu = lambda = population, without end."""
    import bluepyopt  # noqa: PLC0415 (lazy: bluepyopt loads only when its algorithms run)
    from bluepyopt.deapext.optimisations import DEAPOptimisation  # noqa: PLC0415 (lazy: bluepyopt loads only when its algorithms run)

    route("deap", "bluepyopt.deapext")  # every module the loop below runs is imported by now
    quiet = _QuietBluePyOpt(bluepyopt.__path__[0])
    logging.getLogger("__main__").addFilter(quiet)
    evaluator = _BatchEvaluator(objective, dimension, objectives)
    try:
        with own_generator(seed):  # BluePyOpt seeds it again, with the same seed
            optimisation = DEAPOptimisation(
                evaluator=evaluator,
                seed=seed,
                offspring_size=population,
                eta=eta,
                cxpb=cxpb,
                mutpb=mutpb,
                map_function=evaluator.map,
                selector_name=selector,
            )
            parent_population = None if parents is None else [list(map(float, p)) for p in parents]
            return optimisation.run(
                max_ngen=_FOREVER, cp_filename=None, parent_population=parent_population
            )
    finally:
        logging.getLogger("__main__").removeFilter(quiet)


def _real(value: Any) -> float:
    """A setting as a float; NaN (refused by every range check) if it is not a number."""
    try:
        return np.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return np.nan


class _BluePyOptAlgorithm(BridgedAlgorithm):
    """Shared adapter; subclasses name BluePyOpt's selector.

    ``objectives``: the number of error columns told (one objective each). DEAP needs the
    fitness weights up front; with ``None`` the count is taken from the first ``tell``, with
    a number every ``tell`` is checked against it. Settings are BluePyOpt's own: ``eta``
    (spread of simulated binary crossover and polynomial mutation; lower spreads more),
    ``cxpb`` and ``mutpb`` (crossover and mutation probabilities). The offspring size (and
    parent count) is the population.
    """

    selector: str
    takes_start = True

    def __init__(
        self,
        dimension: int,
        population: int,
        seed: int,
        objectives: int | None = None,
        **settings: Any,
    ) -> None:
        if objectives is not None and (isinstance(objectives, bool) or int(objectives) < 1):
            raise ValueError(f"{describe(self.info)}: 'objectives' must be an integer >= 1")
        self.objectives = None if objectives is None else int(objectives)
        check_sizes(self.info, dimension, population)
        super().__init__(dimension, population, seed, **settings)

    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        checked, _ = checked_results(self.info, self._bridge.pending, points, errors, totals)
        history = self._bridge.history
        expected = self.objectives or (history[0][1].shape[1] if history else None)
        if expected is not None and checked.shape[1] != expected:
            raise ValueError(
                f"{describe(self.info)}: expected {expected} error column(s) (one per "
                f"objective), got {checked.shape[1]}"
            )
        super().tell(points, errors, totals)

    def library_loop(self) -> LibraryLoop:
        name = describe(self.info)
        eta, cxpb, mutpb = (_real(self.settings[key]) for key in ("eta", "cxpb", "mutpb"))
        if not eta > 0:
            raise ValueError(f"{name}: setting 'eta' must be a number > 0")
        for key, value in (("cxpb", cxpb), ("mutpb", mutpb)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: setting {key!r} must be a number in [0, 1]")
        if cxpb == mutpb == 0:
            raise ValueError(f"{name}: 'cxpb' and 'mutpb' cannot both be 0 (nothing would change)")
        return partial(
            _deap_loop,
            selector=self.selector,
            dimension=self.dimension,
            population=self.population,
            seed=self.seed,
            objectives=self.objectives or 1,
            eta=eta,
            cxpb=cxpb,
            mutpb=mutpb,
            parents=self._parents(),
        )

    def _parents(self) -> np.ndarray | None:
        """The first population when given start points (``start_from``): the best of them,
        then uniform points drawn from the seed; None: BluePyOpt draws its own."""
        if self._start is None:
            return None
        head = self._start.head(self.population)
        return filled_population(head, self.population, self.dimension, self.seed)


_DEFAULTS = {"eta": 10.0, "cxpb": 1.0, "mutpb": 1.0}  # DEAPOptimisation's own


class BluePyOptNSGA2(_BluePyOptAlgorithm):
    """NSGA-II: parents chosen by non-dominated rank, then crowding distance."""

    selector = "NSGA2"
    info = AlgorithmInfo(
        name="bluepyopt-nsga2",
        label="NSGA-II (BluePyOpt)",
        package="bluepyopt",
        multi_objective=True,
        parallel=True,
        defaults=dict(_DEFAULTS),
        summary="Non-dominated sorting genetic algorithm II from BluePyOpt (DEAP); "
        "multi-objective, one generation per ask.",
    )


class BluePyOptIBEA(_BluePyOptAlgorithm):
    """IBEA: parents chosen by tournaments on an additive epsilon-indicator fitness."""

    selector = "IBEA"
    info = AlgorithmInfo(
        name="bluepyopt-ibea",
        label="IBEA (BluePyOpt)",
        package="bluepyopt",
        multi_objective=True,
        parallel=True,
        defaults=dict(_DEFAULTS),
        summary="Indicator-based evolutionary algorithm from BluePyOpt (DEAP); "
        "multi-objective, one generation per ask.",
    )


ADAPTERS = (BluePyOptNSGA2, BluePyOptIBEA)
