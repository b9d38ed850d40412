"""Drive a library that owns its loop through ask/tell, one batch at a time.

Libraries such as SciPy's ``minimize`` call the objective themselves. The bridge runs the
library in a daemon thread and hands it a *batch objective* ``f(X: (n, d)) -> (n,)`` (weighted
totals) or ``(n, k)`` (error vectors, for multi-objective algorithms). Each call posts ``X`` to
the caller and blocks: ``ask()`` returns that batch, ``tell()`` returns the values to the
library and waits until it asks for its next batch, returns (then ``done`` is True and
``ask()`` returns an empty (0, d) array) or raises (re-raised as ``AlgorithmError``). A serial
library asks one point at a time; a library with a batch hook asks a whole population at once.

The state is the history of told batches: ``restore()`` starts a fresh library run and replays
it, which resumes bit for bit when the library is deterministic given its settings and seed
(checked: a replayed batch differing from the recorded one is an AlgorithmError).

How the loop-owning packages plug in (see their adapter modules):

- pygmo: the adapter evaluates a seeded initial population as one batch (which also tells it
  the number of objectives), then runs ONE ``evolve`` with a huge ``gen`` so algorithms keep
  their internal state; UDAs with ``set_bfe`` get a batch evaluator (whole generations per
  batch), the others ask through the UDP's ``fitness`` one point at a time.
- inspyred: ``ec.evolve`` hands its evaluator the whole candidate list; the EC's prng is a
  seeded ``random.Random``.
- DEAP / BluePyOpt: the ``map_function`` hook receives every individual of a generation; DEAP
  draws from the stdlib ``random`` module, which the adapter routes to a generator owned by
  the bridge thread (``routed_random``).
- SciPy: local methods ask a point and its finite-difference neighbours as one batch.

Library loops must call the objective from their own thread, one call at a time, and must not
reference the adapter object (so that an abandoned adapter can be garbage-collected; its
finalizer then stops the thread).

Serial libraries run as several islands (``neuroptimus.optimization.algorithms.islands``): one
bridge per island, their pending points asked together. An island's loop may also call
``objective.exchange(snapshot)``, which posts a migration request instead of a batch and
returns the caller's reply (the archipelago answers it once every island is there).

The adapter's state is small (constructor arguments) plus a journal, the told batches, which
only grows: the runner stores it append-only beside the checkpoint (``journal_state``).
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.base import AlgorithmError

BatchObjective = Callable[[np.ndarray], np.ndarray]
LibraryLoop = Callable[[BatchObjective], Any]  # runs the library to completion; returns its result
Told = tuple[np.ndarray, np.ndarray, np.ndarray]  # (points, errors, totals) of one batch

_STOP = object()  # reply that unwinds the library thread
_POLL_SECONDS = 0.1


class _Abandoned(BaseException):
    """Raised inside the library to unwind it when the bridge closes (not an ``Exception``,
    so that libraries catching ``Exception`` do not swallow it)."""


def _batch_objective(
    requests: queue.SimpleQueue, replies: queue.SimpleQueue, dimension: int
) -> BatchObjective:
    def exchange(snapshot: Any) -> Any:
        """Post a migration request (islands) and return the caller's reply."""
        requests.put(("migrate", snapshot))
        reply = replies.get()
        if reply is _STOP:
            raise _Abandoned
        return reply

    def objective(points: np.ndarray) -> np.ndarray:
        batch = np.atleast_2d(np.array(points, dtype=float))
        if batch.ndim != 2 or batch.shape[1] != dimension:
            raise ValueError(f"expected points of dimension {dimension}, got shape {batch.shape}")
        if len(batch) == 0:
            return np.empty(0)
        requests.put(("batch", np.clip(batch, 0.0, 1.0)))
        reply = replies.get()
        if reply is _STOP:
            raise _Abandoned
        return reply

    objective.exchange = exchange  # type: ignore[attr-defined]
    return objective


def _drive(loop: LibraryLoop, objective: BatchObjective, requests: queue.SimpleQueue) -> None:
    """Thread body: run the library and report how it ended."""
    try:
        result = loop(objective)
    except _Abandoned:
        return
    except BaseException as error:  # everything must reach the caller's thread
        requests.put(("failed", error))
    else:
        requests.put(("finished", result))


def _shutdown(replies: queue.SimpleQueue, thread: threading.Thread) -> None:
    replies.put(_STOP)
    thread.join(timeout=1.0)


def replay_history(stepper: Any, history: list[Told]) -> None:
    """Feed a recorded history to a fresh ``stepper`` (ask/tell/close/name), checking that it
    asks the recorded batches again."""
    for step, (points, errors, totals) in enumerate(history):
        asked = stepper.ask()
        if asked.shape != np.shape(points) or not np.array_equal(asked, points):
            stepper.close()
            raise AlgorithmError(
                f"{stepper.name}: cannot resume: algorithm is not deterministic "
                f"(batch {step} of the replay differs from the recorded one)"
            )
        stepper.tell(errors, totals)


class LoopBridge:
    """One run of a loop-owning library, stepped through ask/tell.

    Points are clipped to the unit cube (a no-op for libraries given [0, 1] bounds). The
    thread starts on the first ``ask``. ``close()`` stops it; so does garbage collection of an
    abandoned bridge and interpreter exit.
    """

    def __init__(
        self,
        loop: LibraryLoop,
        dimension: int,
        name: str,
        multi_objective: bool = False,
        record: bool = True,
    ) -> None:
        self.loop, self.dimension, self.name = loop, dimension, name
        self.multi_objective = multi_objective
        self.record = record  # keep the history (islands: the archipelago keeps it)
        self.history: list[Told] = []
        self.pending: np.ndarray | None = None  # the batch the library waits for
        self.migration: Any = None  # the snapshot of an island waiting to migrate
        self.finished = False
        self.result: Any = None  # what the library's loop returned
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._finalizer: weakref.finalize | None = None

    def ask(self) -> np.ndarray:
        """The batch the library wants evaluated; (0, d) once the library has returned."""
        if self._failure is not None:
            raise self._error()
        if self._thread is None and not self.finished:
            self._start()
        if self.finished or self.pending is None:
            return np.empty((0, self.dimension))
        return self.pending.copy()

    def tell(self, errors: np.ndarray, totals: np.ndarray) -> None:
        """Answer the pending batch; return once the library asks again, returns or fails."""
        self.answer(errors, totals)
        self.wait()

    def answer(self, errors: np.ndarray, totals: np.ndarray) -> None:
        """Send the values of the pending batch without waiting (see ``wait``)."""
        if self._failure is not None:
            raise self._error()
        if self.pending is None:
            raise ValueError(f"{self.name}: tell() without a pending ask()")
        errors, totals = np.array(errors, dtype=float), np.array(totals, dtype=float)
        if self.record:
            self.history.append((self.pending, errors, totals))
        self.pending = None
        self._replies.put((errors if self.multi_objective else totals).copy())

    def migrate(self, reply: Any) -> None:
        """Answer the pending migration request without waiting (see ``wait``)."""
        if self.migration is None:
            raise ValueError(f"{self.name}: no pending migration")
        self.migration = None
        self._replies.put(reply)

    def wait(self) -> None:
        """Block until the library asks again (a batch or a migration), returns or fails."""
        self._await()

    def start(self) -> None:
        """Start the library thread and wait for its first request (idempotent)."""
        if self._failure is not None:
            raise self._error()
        if self._thread is None and not self.finished:
            self._start()

    def replay(self, history: list[Told]) -> None:
        """Feed a recorded history to this fresh run, checking the library asks the same."""
        replay_history(self, history)

    def close(self) -> None:
        """Stop the library thread (idempotent). A closed bridge asks for nothing more."""
        if self._finalizer is not None:
            self._finalizer()
        self.finished, self.pending, self.migration = True, None, None

    def _start(self) -> None:
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        objective = _batch_objective(self._requests, self._replies, self.dimension)
        self._thread = threading.Thread(
            target=_drive,
            args=(self.loop, objective, self._requests),
            name=f"neuroptimus-bridge {self.name}",
            daemon=True,
        )
        self._finalizer = weakref.finalize(self, _shutdown, self._replies, self._thread)
        self._thread.start()
        self._await()

    def _await(self) -> None:
        """Block until the library posts its next batch, its result or its exception."""
        while True:
            try:
                kind, payload = self._requests.get(timeout=_POLL_SECONDS)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._requests.empty():
                    self._failure = RuntimeError("the library thread ended without a result")
                    raise self._error() from None
        if kind == "batch":
            self.pending = payload
            return
        if kind == "migrate":
            self.migration = payload
            return
        self._finalizer()  # the library has returned or raised: reap its thread
        if kind == "finished":
            self.finished, self.result = True, payload
        else:
            self._failure = payload
            raise self._error()

    def _error(self) -> AlgorithmError:
        failure = self._failure
        error = AlgorithmError(f"{self.name} failed: {type(failure).__name__}: {failure}")
        error.__cause__ = failure
        return error
