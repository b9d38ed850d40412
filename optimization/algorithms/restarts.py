"""Restarts: a serial or local method that stops by its own criterion starts again.

Nelder-Mead, L-BFGS-B, Praxis and pygmo's DE family stop when their simplex, gradient or
population has converged. Left alone, an island that converged asks for nothing more and a run
of converged islands ends with budget left. With restarts, such an island (or the single run
of a local method) starts again from a new start drawn from a seed derived from the run's seed,
the island and the restart count, until the run's budget or stopping rule ends the run; the
run keeps its best individual, every start adds to the same store. The ``restarts`` setting
caps the restarts per island (0: the library's own stopping ends the island, as before).

The restarts happen inside the library loop of the island's bridge thread, so the run stays a
pure function of its seed and the told values: replaying the told batches (resume) restarts
the islands at the same points.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.base import AlgorithmInfo
from neuroptimus.optimization.algorithms.bridge import BatchObjective, LibraryLoop
from neuroptimus.optimization.algorithms.common import describe

# Restarts per island: None, until the run ends.
RESTART_DEFAULTS: dict[str, Any] = {"restarts": None}
# A start of an island: (objective, restart count: 0 for the first start) -> library result.
Start = Callable[[BatchObjective, int], Any]


def restart_seed(seed: int, island: int, restart: int) -> int:
    """The seed of restart ``restart`` (1, 2, ...) of ``island``, from the run's seed alone.

    Restart 0 is the island's own seed (``island_seeds``: the same spawn key (island,)); the
    keys (island, restart) of later starts never collide with it or with each other.
    """
    key = (island,) if restart == 0 else (island, restart)
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])


def restart_point(seed: int, island: int, restart: int, dimension: int) -> np.ndarray:
    """A uniform start point in the cube for restart ``restart`` of ``island``."""
    return np.random.default_rng(restart_seed(seed, island, restart)).random(dimension)


def restart_limit(info: AlgorithmInfo, settings: dict[str, Any]) -> int | None:
    """The ``restarts`` setting checked: None (no limit) or an integer >= 0; 0 for adapters
    without the setting (their libraries never stop by themselves, or stop by design)."""
    if "restarts" not in info.defaults:
        return 0
    value = settings["restarts"]
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not (number >= 0 and number.is_integer()):
        raise ValueError(
            f"{describe(info)}: setting 'restarts' must be an integer >= 0 (leave it out to "
            f"restart until the run ends), got {value!r}"
        )
    return int(number)


def restarting(start: Start, limit: int | None) -> LibraryLoop:
    """A library loop that runs ``start`` again whenever it returns, at most ``limit`` more
    times (None: until the bridge is closed); it returns the last start's result."""
    return partial(_run_starts, start=start, limit=limit)


def _run_starts(objective: BatchObjective, *, start: Start, limit: int | None) -> Any:
    restart = 0
    while True:
        result = start(objective, restart)
        if limit is not None and restart >= limit:
            return result
        restart += 1
