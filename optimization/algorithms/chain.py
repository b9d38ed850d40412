"""Chains: one run, several algorithms in turn, each stage starting from the best so far.

``algorithm: {chain: [{name: cmaes, evaluations: 2000}, {name: scipy-nelder-mead,
evaluations: 500}]}`` runs CMA-ES for 2000 evaluations, then Nelder-Mead for 500 from the best
points CMA-ES found (a ``StartingPoint``, as a warm start gives one). A stage ends when its
evaluations are used — its last batch is cut to them, as the run's budget cuts the run's last
batch, and that batch is not told to the finished stage — or when its algorithm stops by its
own criterion; the last stage runs until the run's budget or stopping rules end the run.

The chain is one ``Algorithm`` to the runner: one store, one checkpoint. Its state is the
current stage's (restored by that stage's own means) plus where each stage began; its journal
is the finished stages' records followed by the current stage's, so it only grows. A stage
ends the runner's generation (``ends_generation``), so no generation mixes two stages, and the
store keeps where each stage began (``store_attributes``: ``stages``) for the report.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroptimus.optimization import pickles
from neuroptimus.optimization.algorithms import CATALOGUE, create_algorithm, get_algorithm
from neuroptimus.optimization.algorithms.base import Algorithm, AlgorithmInfo
from neuroptimus.optimization.algorithms.common import checked_results
from neuroptimus.optimization.algorithms.islands import DEFAULT_ISLANDS
from neuroptimus.optimization.algorithms.start import StartingPoint, best_points

if TYPE_CHECKING:
    from neuroptimus.optimization.problem.spec import AlgorithmSpec, ProblemSpec

CHAIN = "chain"  # the algorithm name of a chained run (``algorithm.name`` in its spec)


@dataclass(frozen=True)
class Stage:
    name: str  # a registered algorithm
    evaluations: int
    population: int
    settings: dict[str, Any] = field(default_factory=dict)


def stage_seed(seed: int, stage: int) -> int:
    """Stage 0 runs with the run's seed (a chain of one stage is the plain run); the others
    with seeds derived from it and the stage's index alone."""
    if stage == 0:
        return seed
    return int(np.random.SeedSequence([seed, stage]).generate_state(1)[0])


def stages_of(spec: AlgorithmSpec) -> list[Stage]:
    return [
        Stage(s.name, s.evaluations, s.population or spec.population, dict(s.settings))
        for s in spec.chain or []
    ]


def chain_info(stages: Sequence[Stage]) -> AlgorithmInfo:
    """The chain's registry-like facts (``parallel``: of its first stage; the running chain
    reports its current stage's)."""
    infos = [get_algorithm(stage.name).info for stage in stages]
    return AlgorithmInfo(
        name=CHAIN,
        label=" → ".join(info.label for info in infos),
        package="+".join(dict.fromkeys(info.package for info in infos)),
        multi_objective=any(info.multi_objective for info in infos),
        parallel=infos[0].parallel,
        summary="Algorithms in turn, each stage starting from the best points so far.",
    )


def algorithm_info(spec: AlgorithmSpec) -> AlgorithmInfo:
    """The facts of a problem's algorithm: a registered one's, or a chain's."""
    return chain_info(stages_of(spec)) if spec.chain else get_algorithm(spec.name).info


def start_points_wanted(spec: ProblemSpec) -> int:
    """How many best points a start may use: the largest population of the run (or of its
    stages), one per island, or as many as a surrogate model takes (``model_points``)."""
    algorithm = spec.algorithm
    sizes = [algorithm.population, DEFAULT_ISLANDS]
    for part in [algorithm, *(algorithm.chain or [])]:
        sizes += [part.population or 0, int(part.settings.get("islands") or 0)]
        if part.name in CATALOGUE:
            sizes.append(get_algorithm(part.name).info.model_points)
    return max(sizes)


def create_for_spec(spec: ProblemSpec) -> Algorithm:
    """The algorithm a problem asks for: a registered one, or a chain of them."""
    algorithm = spec.algorithm
    dimension = len(spec.parameters)
    if algorithm.chain:
        return Chain(stages_of(algorithm), dimension, spec.seed)
    settings = dict(algorithm.settings)
    return create_algorithm(algorithm.name, dimension, algorithm.population, spec.seed, settings)


class Chain(Algorithm):
    """Registered algorithms run in turn behind one ask/tell (see the module's docstring)."""

    def __init__(self, stages: Sequence[Stage], dimension: int, seed: int) -> None:
        if not stages:
            raise ValueError("a chain needs at least one stage")
        self.stages = list(stages)
        self.dimension, self.seed, self.settings = dimension, seed, {}
        self.population = self.stages[0].population
        self._facts = chain_info(self.stages)
        for index in range(1, len(self.stages)):  # a stage's mistake fails now, not hours later
            self._build(index, None)[0].close()
        # how many best points a next stage may take: its population, or one per island
        islands = [int(s.settings.get("islands") or DEFAULT_ISLANDS) for s in self.stages]
        self._keep = max(max(s.population for s in self.stages), *islands)
        self._stage, self._told, self._stage_told = 0, 0, 0
        self._begun = [0]  # evaluations told when each stage began
        self._starts: list[StartingPoint | None] = [None]
        self._notes: list[str | None] = [None]
        self._best = (np.empty((0, dimension)), np.empty(0))  # the best points told so far
        self._past: list[Any] = []  # journal records of the finished stages
        self._asked: np.ndarray | None = None
        self._cut = False  # the pending batch was cut to the end of its stage
        self._switched = False  # the last tell began a new stage
        self._current, _ = self._build(0, None)

    # -- facts -----------------------------------------------------------------------------
    @property
    def info(self) -> AlgorithmInfo:  # type: ignore[override]
        return replace(self._facts, parallel=self._current.info.parallel)

    @property
    def stage(self) -> int:
        return self._stage

    @property
    def points_per_ask(self) -> int:
        return self._current.points_per_ask

    @property
    def done(self) -> bool:
        return self._last and self._current.done

    @property
    def ends_generation(self) -> bool:
        return self._switched

    @property
    def _last(self) -> bool:
        return self._stage == len(self.stages) - 1

    def store_attributes(self) -> dict[str, Any]:
        """``stages``: each stage begun so far, with the evaluations before it."""
        stages = []
        for index, begun in enumerate(self._begun):
            stage, start = self.stages[index], self._starts[index]
            stages.append({
                "stage": index,
                "algorithm": stage.name,
                "label": get_algorithm(stage.name).info.label,
                "evaluations": stage.evaluations,
                "first_evaluation": begun,
                "started_from": start.source if start is not None else None,
                "note": self._notes[index],
            })  # fmt: skip
        return {"stages": stages}

    # -- ask / tell ------------------------------------------------------------------------
    def start_from(self, start: StartingPoint) -> str | None:
        """The first stage starts at ``start`` (a warm start)."""
        self._current.close()
        self._current, note = self._build(0, start)
        self._starts[0], self._notes[0] = start, note
        return note

    def ask(self) -> np.ndarray:
        self._switched = False
        while True:
            self._advance()
            points = np.atleast_2d(self._current.ask())
            if len(points) or self._last:
                break
            self._stage_told = self.stages[self._stage].evaluations  # asks nothing more
        remaining = self.stages[self._stage].evaluations - self._stage_told
        self._cut = not self._last and len(points) > remaining
        self._asked = points[:remaining] if self._cut else points
        return self._asked.copy()

    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        _, checked = checked_results(self.info, self._asked, points, errors, totals)
        merged = np.vstack([self._best[0], points]), np.concatenate([self._best[1], checked])
        self._best = best_points(*merged, self._keep)
        if not self._cut:  # a cut batch ends its stage: the stage's algorithm is done with
            self._current.tell(points, errors, totals)
        self._told += len(points)
        self._stage_told += len(points)
        self._asked = None
        before = self._stage
        self._advance()
        self._switched = self._stage != before

    def _advance(self) -> None:
        """Begin the next stage(s) while the current one is over."""
        while not self._last and (
            self._stage_told >= self.stages[self._stage].evaluations or self._current.done
        ):
            self._past.extend(self._current.journal_state()[1])
            self._current.close()
            label = get_algorithm(self.stages[self._stage].name).info.label
            start = None
            if len(self._best[1]):
                start = StartingPoint(*self._best, source=f"stage {self._stage + 1} ({label})")
            self._stage += 1
            self._stage_told, self._cut = 0, False
            self._current, note = self._build(self._stage, start)
            self._begun.append(self._told)
            self._starts.append(start)
            self._notes.append(note)

    def _build(self, index: int, start: StartingPoint | None) -> tuple[Algorithm, str | None]:
        stage = self.stages[index]
        seed = stage_seed(self.seed, index)
        algorithm = create_algorithm(
            stage.name, self.dimension, stage.population, seed, dict(stage.settings)
        )
        return algorithm, (algorithm.start_from(start) if start is not None else None)

    # -- state -----------------------------------------------------------------------------
    def journal_state(self) -> tuple[bytes, list[Any]]:
        head, journal = self._current.journal_state()
        data = {
            "stage": self._stage, "told": self._told, "stage_told": self._stage_told,
            "begun": self._begun, "starts": [_plain(start) for start in self._starts],
            "notes": self._notes,
            "best": self._best, "past": len(self._past), "current": head,
        }  # fmt: skip
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL), [*self._past, *journal]

    def restore_journal(self, head: bytes, journal: Sequence[Any]) -> None:
        data = pickles.loads(head)
        self._current.close()
        self._stage, self._told = data["stage"], data["told"]
        self._stage_told, self._begun = data["stage_told"], list(data["begun"])
        self._starts = [None if s is None else StartingPoint(*s) for s in data["starts"]]
        self._notes = list(data["notes"])
        self._best, self._asked, self._cut, self._switched = data["best"], None, False, False
        past = data["past"]
        self._past = list(journal[:past])
        self._current, _ = self._build(self._stage, self._starts[self._stage])
        self._current.restore_journal(data["current"], list(journal[past:]))

    def state(self) -> bytes:
        return pickle.dumps(self.journal_state(), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, state: bytes) -> None:
        self.restore_journal(*pickles.loads(state))

    def close(self) -> None:
        self._current.close()


def _plain(start: StartingPoint | None) -> tuple | None:
    """A start as plain values for the checkpoint (no class of ours in the pickle: a module
    that moves later cannot break reading it back)."""
    return None if start is None else (start.points, start.totals, start.source)
