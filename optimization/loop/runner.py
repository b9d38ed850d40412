"""The generation loop as a small state machine: ask → (evaluate elsewhere) → tell → record.

``OptimizationRun`` owns the algorithm, the stopping rules and the run store, and knows how to
continue from the store's checkpoint. Evaluation is injected, so the same loop runs in a
notebook (``run_to_end(run, evaluate_batch_locally)``) or in the Prefect flow on Dask.

A *generation* is the unit written to the store, checkpointed and (in the flow) run as one
Prefect task: one ask/evaluate/tell round for a batch algorithm, and for a serial one (one
point per island per ask) as many rounds as make ``population`` evaluations. So a serial point
costs no more store writes and checkpoints than a member of a batch. Stopping rules count
evaluations, so they mean the same for both kinds.

Each result is streamed to the store as it arrives (``Store.stream``), and a point asked again
in the same generation — after a kill and resume, or a retry — takes its streamed result
(``Store.streamed``) instead of being evaluated again: the algorithm restarts from its
checkpoint, so it asks the same points, and the run stays bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np

from neuroptimus.optimization.algorithms import Algorithm, AlgorithmError
from neuroptimus.optimization.algorithms.chain import create_for_spec
from neuroptimus.optimization.algorithms.start import StartingPoint
from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.evaluation.problem import Problem
from neuroptimus.optimization.scoring.likelihood import NOISE_SETTING, likelihood_of


@dataclass
class Checkpoint:
    """Everything needed to continue a run after its last committed generation."""

    generation: int  # generations committed (the next one to run)
    evaluations: int  # rows committed
    algorithm_state: bytes  # the head of Algorithm.journal_state()
    stopping_state: dict[str, Any]
    journal_records: int = 0  # records of the algorithm's journal the state continues
    journal_bytes: int = 0  # their length in the store's journal file (set by the store)


class Store(Protocol):
    """What the loop needs of a run store (neuroptimus.storage.RunStore implements it)."""

    def write_generation(
        self, generation, offset, points, result, seconds, algorithm_seconds=...
    ) -> None: ...
    def commit(self, checkpoint: Checkpoint, journal: Sequence[Any] = ()) -> None: ...
    def checkpoint(self) -> Checkpoint | None: ...
    def journal(self, checkpoint: Checkpoint | None) -> list[Any]: ...
    def rollback(self, checkpoint: Checkpoint | None) -> None: ...
    def set_attributes(self, **values: Any) -> None: ...
    def write_rows(self, group: str, first: int, arrays: dict[str, np.ndarray]) -> None: ...
    def arrays(self, group: str) -> dict[str, np.ndarray]: ...
    def stream(self, generation: int, values: np.ndarray, result: BatchResult) -> None: ...
    def streamed(self, generation: int, values: np.ndarray) -> list[BatchResult | None]: ...


@dataclass
class Stopping:
    """Progress the stopping rules need: the best total so far and how many evaluations came
    after the last one that improved it (by more than the relative tolerance)."""

    best: float = float("inf")
    stagnant_evaluations: int = 0

    def update(self, totals: np.ndarray, tolerance: float) -> None:
        """Count the batch's evaluations in order."""
        for total in np.asarray(totals, dtype=float):
            threshold = self.best - tolerance * abs(self.best) if np.isfinite(self.best) else np.inf
            if total < threshold:
                self.best, self.stagnant_evaluations = float(total), 0
            else:
                self.best = min(self.best, float(total))
                self.stagnant_evaluations += 1

    @classmethod
    def from_state(cls, state: dict[str, Any], population: int) -> Stopping:
        """From a checkpoint; checkpoints written before the rules counted evaluations held
        ``stagnant_generations``."""
        state = dict(state)
        if "stagnant_generations" in state:
            state["stagnant_evaluations"] = state.pop("stagnant_generations") * population
        return cls(**state)


class OptimizationRun:
    """One run of one algorithm on one problem, resumable from its store."""

    def __init__(self, problem: Problem, store: Store) -> None:
        self.problem = problem
        self.store = store
        self.algorithm: Algorithm = self._new_algorithm()
        checkpoint = store.checkpoint()
        store.rollback(checkpoint)
        self._load(checkpoint)
        self.resumed_at = self.generation
        self._exhausted = False
        self._cut_by_budget = False
        self._pending: np.ndarray | None = None  # asked, not yet evaluated and told
        self._attempt: tuple[int, Stopping] | None = None  # set while a generation runs
        self._dirty = False  # the algorithm was told something after the last commit
        self.failed_in_generation = 0  # failed evaluations in the last committed generation
        # called with (evaluations done, best total so far) as results arrive (progress bars)
        self.on_results: Callable[[int, float], None] | None = None
        self.reused = 0  # evaluations taken from the store's streamed results
        self._algorithm_attributes: dict[str, Any] = {}  # store_attributes() last written
        self._algorithm_seconds = 0.0  # set per generation (run_generation)

    def _new_algorithm(self) -> Algorithm:
        """The problem's algorithm (or chain), begun at the store's start points if it has
        any (a warm start); ``start_note`` says why not when it cannot take them."""
        algorithm = create_for_spec(self.problem.spec)
        if algorithm.info.samples_posterior:
            noise = algorithm.settings.get(NOISE_SETTING)
            algorithm.bind_likelihood(likelihood_of(self.problem, noise))
        given = self.store.arrays("start")
        self.start_note = None
        if given:
            points = self.problem.space.to_unit(given["parameters"])
            start = StartingPoint(points, given["total"], source="warm start")
            self.start_note = algorithm.start_from(start)
        return algorithm

    def _load(self, checkpoint: Checkpoint | None) -> None:
        """Put the algorithm and the counters where ``checkpoint`` left them."""
        population = self.problem.spec.algorithm.population
        if checkpoint:
            journal = self.store.journal(checkpoint)
            self.algorithm.restore_journal(checkpoint.algorithm_state, journal)
            self.generation, self.evaluations = checkpoint.generation, checkpoint.evaluations
            self.stopping = Stopping.from_state(checkpoint.stopping_state, population)
            self._journal_saved = checkpoint.journal_records
        else:
            self.algorithm.close()
            self.algorithm = self._new_algorithm()
            self.generation, self.evaluations, self.stopping = 0, 0, Stopping()
            self._journal_saved = 0

    @property
    def stagnation_window(self) -> int | None:
        """Evaluations without improvement that stop the run: ``stagnation_generations``
        generations of ``population`` evaluations, for serial and batch algorithms alike."""
        generations = self.problem.spec.stopping.stagnation_generations
        if generations is None:
            return None
        return generations * self.problem.spec.algorithm.population

    @property
    def stop_reason(self) -> str | None:
        """Why the run is over, or None while it goes on."""
        rules = self.problem.spec.stopping
        if self.evaluations >= self.problem.spec.budget:
            return f"evaluation budget of {self.problem.spec.budget} used"
        if rules.error_target is not None and self.stopping.best <= rules.error_target:
            return f"error target {rules.error_target:g} reached"
        window = self.stagnation_window
        if window is not None and self.stopping.stagnant_evaluations >= window:
            return (
                f"no improvement in {rules.stagnation_generations} generations "
                f"({window} evaluations)"
            )
        if self._exhausted or self.algorithm.done:
            return f"{self.algorithm.info.label} converged"
        return None

    def ask(self) -> np.ndarray:
        """Next batch in the unit cube, cut to the remaining budget (a batch asked before a
        failed evaluation is asked again as it was)."""
        if self._pending is not None:
            return self._pending
        started = time.perf_counter()
        try:
            points = np.atleast_2d(self.algorithm.ask())
        except AlgorithmError:
            raise
        except Exception as error:
            raise AlgorithmError(f"{self.algorithm.info.label} failed in ask(): {error}") from error
        finally:
            self._algorithm_seconds += time.perf_counter() - started
        if points.size == 0:
            self._exhausted = True
            return points.reshape(0, self.problem.space.dimension)
        remaining = self.problem.spec.budget - self.evaluations
        self._cut_by_budget = len(points) > remaining
        self._pending = points[:remaining]
        return self._pending

    def to_real(self, points: np.ndarray) -> np.ndarray:
        return self.problem.space.to_real(points)

    def run_generation(self, evaluate: Evaluator) -> int:
        """Run one generation: ask/evaluate/tell rounds until it holds ``population``
        evaluations (one round for a batch algorithm) or a stopping rule fires, then write its
        rows and commit once. Returns the number of rows (0: the algorithm asked nothing).

        Called again after it raised (a Prefect retry), it starts the generation afresh from
        the last checkpoint, so an algorithm is never left half-told.
        """
        if self._attempt is not None:
            if self._dirty:
                checkpoint = self.store.checkpoint()
                self.store.rollback(checkpoint)
                self._load(checkpoint)
                self._pending, self._dirty, self._cut_by_budget = None, False, False
            else:  # nothing told: the pending batch (if any) is asked again as it was
                self.evaluations, self.stopping = self._attempt[0], replace(self._attempt[1])
        self._attempt = (self.evaluations, replace(self.stopping))
        self._algorithm_seconds = 0.0  # the algorithm's own time (ask and tell) this generation
        rounds: list[tuple[np.ndarray, BatchResult, float]] = []
        wanted = 1 if self.algorithm.info.parallel else self.problem.spec.algorithm.population
        try:
            while True:
                points = self.ask()
                if len(points) == 0:
                    break
                started = time.perf_counter()
                result = self._evaluate(points, evaluate)
                rounds.append((points, result, time.perf_counter() - started))
                self._pending = None
                if not self._cut_by_budget:  # a batch cut by the budget ends the run, untold
                    self._dirty = True
                    self._tell(points, result)
                self.evaluations += len(points)
                tolerance = self.problem.spec.stopping.stagnation_tolerance
                self.stopping.update(result.total, tolerance)
                rows = sum(len(r[0]) for r in rounds)
                if self._cut_by_budget or rows >= wanted or self.stop_reason is not None:
                    break
                if self.algorithm.ends_generation:  # a chain's stage is over
                    break
        except AlgorithmError as error:
            self._keep_failed(rounds, error)
            raise
        if rounds:
            self._record(rounds)
        self._attempt, self._dirty = None, False
        return sum(len(points) for points, _, _ in rounds)

    def _evaluate(self, points: np.ndarray, evaluate: Evaluator) -> BatchResult:
        """The results of one round: streamed ones of this generation taken from the store,
        the others evaluated, each streamed to the store as it arrives."""
        values = self.to_real(points)
        generation, done, best = self.generation, self.evaluations, self.stopping.best
        parts = self.store.streamed(generation, values)
        missing = np.array([i for i, part in enumerate(parts) if part is None], dtype=int)
        self.reused += len(values) - len(missing)
        done += len(values) - len(missing)
        for part in parts:
            best = min(best, float(part.total[0])) if part is not None else best
        if self.on_results is not None and len(missing) < len(values):
            self.on_results(done, best)
        if len(missing) == 0:
            return BatchResult.concatenate(parts)
        asked = values[missing]

        def arrived(rows: np.ndarray, result: BatchResult) -> None:
            nonlocal done, best
            self.store.stream(generation, asked[rows], result)
            done += len(rows)
            best = min(best, float(result.total.min()))
            if self.on_results is not None:
                self.on_results(done, best)

        if getattr(evaluate, "streams", False):  # hands each part over as it arrives
            fresh = evaluate(asked, on_result=arrived)
        else:
            fresh = evaluate(asked)
            arrived(np.arange(len(asked)), fresh)
        if len(missing) == len(values):
            return fresh
        for i, row in enumerate(missing):
            parts[row] = fresh.take(slice(i, i + 1))
        return BatchResult.concatenate(parts)

    def _tell(self, points: np.ndarray, result: BatchResult) -> None:
        # Multi-objective algorithms see one objective per weighted cost component.
        weighted = result.errors * self.problem.objective.weights
        started = time.perf_counter()
        try:
            self.algorithm.tell(points, weighted, result.total)
        except AlgorithmError:
            raise
        except Exception as failure:
            label = self.algorithm.info.label
            raise AlgorithmError(f"{label} failed in tell(): {failure}") from failure
        finally:
            self._algorithm_seconds += time.perf_counter() - started

    def _write(self, rounds: list[tuple[np.ndarray, BatchResult, float]], offset: int) -> int:
        points = np.concatenate([r[0] for r in rounds])
        result = BatchResult.concatenate([r[1] for r in rounds])
        seconds = float(sum(r[2] for r in rounds))
        self.store.write_generation(
            self.generation, offset, self.to_real(points), result, seconds, self._algorithm_seconds
        )
        return len(points)

    def _keep_failed(
        self, rounds: list[tuple[np.ndarray, BatchResult, float]], error: AlgorithmError
    ) -> None:
        """The algorithm broke: its evaluated rows stay readable and the run says why it ended.
        The checkpoint stays at the previous generation (the algorithm state is gone)."""
        offset = self._attempt[0] if self._attempt else self.evaluations
        n = self._write(rounds, offset) if rounds else 0
        self.store.set_attributes(
            committed_generations=self.generation + (1 if n else 0),
            committed_evaluations=offset + n,
            finished=f"failed: {error}",
        )

    def _record(self, rounds: list[tuple[np.ndarray, BatchResult, float]]) -> None:
        """Store the generation's rows, then checkpoint with the journal's new records."""
        self._write(rounds, self._attempt[0])
        rows = self.algorithm.store_rows()
        if rows is not None:  # before the checkpoint: a resume rewrites the same rows
            self.store.write_rows(*rows)
        self.failed_in_generation = int(sum(np.count_nonzero(r[1].status) for r in rounds))
        self.generation += 1
        head, journal = self.algorithm.journal_state()
        checkpoint = Checkpoint(
            self.generation,
            self.evaluations,
            head,
            asdict(self.stopping),
            journal_records=len(journal),
        )
        self.store.commit(checkpoint, list(journal[self._journal_saved :]))
        self._journal_saved = len(journal)
        self._keep_algorithm_attributes()

    def _keep_algorithm_attributes(self) -> None:
        """The algorithm's progress facts (a chain's stages) into the store's attributes, when
        they changed (after the commit: they describe committed generations only)."""
        values = self.algorithm.store_attributes()
        if values != self._algorithm_attributes:
            self.store.set_attributes(**values)
            self._algorithm_attributes = values

    def finish(self) -> str:
        self._keep_algorithm_attributes()  # a resume of a finished run: they may lag
        reason = self.stop_reason or "stopped"
        self.store.set_attributes(finished=reason, generations_run=self.generation)
        return reason


# Evaluates a batch (real units). One with ``streams = True`` also takes
# ``on_result(rows, result)`` and calls it with each part of the batch as it arrives.
Evaluator = Callable[..., BatchResult]


def run_to_end(
    run: OptimizationRun,
    evaluate: Evaluator,
    on_generation: Callable[[OptimizationRun], None] | None = None,
) -> str:
    """The plain loop (no Prefect, no Dask needed): returns why the run stopped."""
    while run.stop_reason is None:
        if run.run_generation(evaluate) and on_generation:
            on_generation(run)
    return run.finish()
