"""Several islands of a serial library, stepped together: pygmo's archipelago, in lockstep.

A serial library (one point per call of its objective) would keep one worker busy. Like
pygmo's archipelago and the original Neuroptimus, the adapter runs ``islands`` copies of the
algorithm, each with its own population and seed, each in its own bridge thread; one ``ask``
gathers the pending point (or batch) of every island, so the cluster gets them together, and
``tell`` hands each island its share.

Migration (pygmo semantics, ring topology): an island's loop that reaches a migration point
calls ``objective.exchange(snapshot)``. It waits there, contributing no points, until every
live island is at its migration point; then the caller's thread computes all replies from all
snapshots at once (``ring_migration``) and the islands go on. Nothing depends on thread timing:
the run is a pure function of the seed and the told values. Islands without migration (SciPy,
inspyred: independent restarts) simply never call ``exchange``.

The number of islands is a setting with a fixed default, never the cluster size: a seed gives
the same run on any cluster. So a cluster larger than the islands (or a batch algorithm's
population) keeps workers idle; ``idle_workers_note`` says so, for the run to log once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.bridge import LoopBridge, Told, replay_history

DEFAULT_ISLANDS = 8
# Replies for all islands from their snapshots (island order); None: no migration.
Migration = Callable[[list[Any]], list[Any]]


def ring_migration(snapshots: list[tuple[np.ndarray, np.ndarray]], migrants: int) -> list[list]:
    """pygmo's default migration on a ring: the ``migrants`` best individuals of island i-1
    replace the worst of island i where they are better (``fair_replace``).

    A snapshot is (X (n, d), F (n, 1)) of an island's population; a reply is the list of
    (index, x, f) to set in that island. Selection uses the snapshots before any replacement,
    so the result does not depend on the order islands are served in.
    """
    replies: list[list] = []
    count = len(snapshots)
    for i, (_, f) in enumerate(snapshots):
        if count < 2:
            replies.append([])
            continue
        source_x, source_f = snapshots[(i - 1) % count]
        best = np.argsort(source_f[:, 0], kind="stable")[:migrants]
        worst = np.argsort(-f[:, 0], kind="stable")[:migrants]
        reply = []
        for incoming, slot in zip(best, worst, strict=False):
            if source_f[incoming, 0] < f[slot, 0]:
                reply.append((int(slot), source_x[incoming].copy(), source_f[incoming].copy()))
        replies.append(reply)
    return replies


class Archipelago:
    """Islands behind the interface of one ``LoopBridge`` (ask, tell, pending, finished,
    result, history, replay, close), so ``BridgedAlgorithm`` drives either."""

    def __init__(
        self, bridges: Sequence[LoopBridge], name: str, migration: Migration | None = None
    ) -> None:
        self.bridges = list(bridges)
        self.name, self.migration = name, migration
        self.dimension = self.bridges[0].dimension
        self.history: list[Told] = []
        self.pending: np.ndarray | None = None
        self._parts: list[tuple[LoopBridge, int]] = []  # islands of the pending batch
        self._started = False
        self._failure: BaseException | None = None  # one island failed: the run has failed

    @property
    def finished(self) -> bool:
        return all(bridge.finished for bridge in self.bridges)

    @property
    def result(self) -> list[Any]:
        """What each island's library returned (None for an island still running)."""
        return [bridge.result for bridge in self.bridges]

    def ask(self) -> np.ndarray:
        if self._failure is not None:
            raise self._failure
        if not self._started:
            self._started = True
            with self._failing():
                for bridge in self.bridges:
                    bridge.start()
                self._gather()
        if self.pending is None:
            return np.empty((0, self.dimension))
        return self.pending.copy()

    def tell(self, errors: np.ndarray, totals: np.ndarray) -> None:
        if self._failure is not None:
            raise self._failure
        if self.pending is None:
            raise ValueError(f"{self.name}: tell() without a pending ask()")
        errors, totals = np.array(errors, dtype=float), np.array(totals, dtype=float)
        self.history.append((self.pending, errors, totals))
        with self._failing():
            start = 0
            for bridge, n in self._parts:
                bridge.answer(errors[start : start + n], totals[start : start + n])
                start += n
            for bridge, _ in self._parts:  # the islands compute meanwhile, each in its thread
                bridge.wait()
            self._gather()

    @contextmanager
    def _failing(self) -> Iterator[None]:
        """An island's failure is the run's: remember it and stop the other islands."""
        try:
            yield
        except BaseException as error:
            self._failure = error
            self.close()
            raise

    def _gather(self) -> None:
        """Migrate while every live island waits to, then collect the pending batches."""
        while True:
            live = [bridge for bridge in self.bridges if not bridge.finished]
            waiting = [bridge for bridge in live if bridge.migration is not None]
            if not live or len(waiting) < len(live):
                break
            replies = self.migration([bridge.migration for bridge in live])
            for bridge, reply in zip(live, replies, strict=True):
                bridge.migrate(reply)
            for bridge in live:
                bridge.wait()
        self._parts = [(b, len(b.pending)) for b in self.bridges if b.pending is not None]
        self.pending = np.concatenate([b.pending for b, _ in self._parts]) if self._parts else None

    def replay(self, history: list[Told]) -> None:
        replay_history(self, history)

    def close(self) -> None:
        for bridge in self.bridges:
            bridge.close()
        self.pending, self._parts = None, []


def idle_workers_note(algorithm: Any, workers: int) -> str | None:
    """One sentence for the run's log when ``workers`` exceed the points ``algorithm`` asks at
    a time (``points_per_ask``), naming the setting that would use more; None otherwise."""
    points = algorithm.points_per_ask
    if workers <= points:
        return None
    label = algorithm.info.label
    if not algorithm.info.parallel:
        why = f"one per island, setting 'islands': {points}"
        more = "more islands would use more of them (and give a different run of the seed)"
    elif points == algorithm.population:
        why = "its population"
        more = "a larger population would use more of them"
    else:
        why = "its batches"
        more = "a batch algorithm would use more of them"
    return (
        f"the cluster has {workers} workers but {label} evaluates at most {points} "
        f"point{'s' if points > 1 else ''} at a time ({why}), so this run keeps at most "
        f"{points} of them busy; {more}"
    )
