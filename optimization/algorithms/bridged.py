"""Algorithms of libraries that own their loop, behind ask/tell: ``BridgedAlgorithm`` runs one
library loop through a ``LoopBridge`` (see ``neuroptimus.optimization.algorithms.bridge``), or,
for serial libraries with an ``islands`` setting, several through an ``Archipelago``
(``neuroptimus.optimization.algorithms.islands``)."""

from __future__ import annotations

import abc
import pickle
from typing import Any, ClassVar

import numpy as np

from neuroptimus.optimization import pickles
from neuroptimus.optimization.algorithms.base import Algorithm
from neuroptimus.optimization.algorithms.bridge import LibraryLoop, LoopBridge, Told
from neuroptimus.optimization.algorithms.common import checked_results, describe
from neuroptimus.optimization.algorithms.islands import Archipelago
from neuroptimus.optimization.algorithms.start import StartingPoint


class BridgedAlgorithm(Algorithm):
    """Base of adapters for loop-owning libraries: subclasses only provide ``library_loop``.

    Serial adapters (``info.parallel`` False) that have an ``islands`` setting run that many
    islands (``island_loops``, optionally with ``migration``) behind one ask/tell.
    """

    # The family's loops use ``self._start`` (see ``start_from``).
    takes_start: ClassVar[bool] = False

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        self._start: StartingPoint | None = None
        self._bridge = self._new_bridge()

    def start_from(self, start: StartingPoint) -> str | None:
        """Keep ``start`` for the library loops (rebuilt here; their thread starts at the first
        ``ask``). It is no part of the saved state: the runner gives it again before a
        restore."""
        if not self.takes_start:
            return super().start_from(start)
        self._start = start
        self._bridge.close()
        self._bridge = self._new_bridge()
        return None

    @abc.abstractmethod
    def library_loop(self) -> LibraryLoop:
        """A callable that runs the library to completion on a batch objective.

        Build it from ``self.settings`` etc. but do not capture ``self`` (see module docs).
        """

    def island_loops(self) -> list[LibraryLoop] | None:
        """One library loop per island, or None for a single library run (the default)."""
        return None

    def migration(self) -> Any:
        """The archipelago's migration (``islands.Migration``), or None: independent islands."""
        return None

    @property
    def islands(self) -> int:
        """Number of islands (1 without the ``islands`` setting)."""
        return _island_count(self.info, self.settings)

    @property
    def points_per_ask(self) -> int:
        return self.population if self.info.parallel else self.islands

    def ask(self) -> np.ndarray:
        return self._bridge.ask()

    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        errors, totals = checked_results(self.info, self._bridge.pending, points, errors, totals)
        self._bridge.tell(errors, totals)

    @property
    def done(self) -> bool:
        return self._bridge.finished

    @property
    def result(self) -> Any:
        """What the library returned (e.g. SciPy's ``OptimizeResult``), once ``done``; with
        islands, the list of what each island's library returned."""
        return self._bridge.result

    def _head(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "population": self.population,
            "seed": self.seed,
            "settings": self.settings,
        }

    def state(self) -> bytes:
        """Constructor arguments and the told batches (a thread cannot be pickled)."""
        data = {**self._head(), "history": list(self._bridge.history)}
        return pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)

    def journal_state(self) -> tuple[bytes, list[Told]]:
        """Constructor arguments, and the told batches as a journal that only grows."""
        return pickle.dumps(self._head(), protocol=pickle.HIGHEST_PROTOCOL), self._bridge.history

    def restore(self, state: bytes) -> None:
        """Start a fresh library run and replay the saved history into it."""
        self.restore_journal(state, [])

    def restore_journal(self, head: bytes, journal: list[Told]) -> None:
        data = pickles.loads(head)
        self._bridge.close()
        self.dimension, self.population = data["dimension"], data["population"]
        self.seed, self.settings = data["seed"], data["settings"]
        self._bridge = self._new_bridge()
        self._bridge.replay([*data.get("history", []), *journal])

    def close(self) -> None:
        """Stop the library thread(s) now instead of at garbage collection."""
        self._bridge.close()

    def _new_bridge(self) -> LoopBridge | Any:
        name = describe(self.info)
        loops = self.island_loops()
        if loops is None:
            return LoopBridge(self.library_loop(), self.dimension, name, self.info.multi_objective)
        bridges = [
            LoopBridge(loop, self.dimension, f"{name} island {i}", self.info.multi_objective, False)
            for i, loop in enumerate(loops)
        ]
        return Archipelago(bridges, name, self.migration())


def _island_count(info: Any, settings: dict[str, Any]) -> int:
    """The ``islands`` setting, checked (1 for adapters without it)."""
    if "islands" not in info.defaults:
        return 1
    value = settings["islands"]
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not (number >= 1 and number.is_integer() and number <= 1024):
        raise ValueError(f"{describe(info)}: setting 'islands' must be an integer in [1, 1024]")
    return int(number)


def island_seeds(seed: int, islands: int) -> list[int]:
    """Independent seeds of the islands, derived from the run's seed alone."""
    children = np.random.SeedSequence(seed).spawn(islands)
    return [int(child.generate_state(1)[0]) for child in children]
