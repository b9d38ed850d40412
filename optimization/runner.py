"""The generation loop as a small state machine: ask → (evaluate elsewhere) → record.

``OptimizationRun`` owns the algorithm, the stopping rules and the run store, and knows how to
continue from the store's checkpoint. Evaluation is injected, so the same loop runs in a
notebook (``run_to_end(run, evaluate_batch_locally)``) or in the Prefect flow on Dask.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from optimization.algorithms import Algorithm, AlgorithmError, create_algorithm
from optimization.evaluation import BatchResult
from optimization.problem import Problem


@dataclass
class Checkpoint:
    """Everything needed to continue a run after its last committed generation."""

    generation: int  # generations committed (the next one to run)
    evaluations: int  # rows committed
    algorithm_state: bytes
    stopping_state: dict[str, Any]


class Store(Protocol):
    """What the loop needs of a run store (storage.RunStore implements it)."""

    def write_generation(self, generation, offset, points, result, seconds) -> None: ...
    def commit(self, checkpoint: Checkpoint) -> None: ...
    def checkpoint(self) -> Checkpoint | None: ...
    def rollback(self, checkpoint: Checkpoint | None) -> None: ...
    def set_attributes(self, **values: Any) -> None: ...


@dataclass
class Stopping:
    """Progress the stopping rules need: best so far and generations without improvement."""

    best: float = float("inf")
    stagnant_generations: int = 0

    def update(self, generation_best: float, tolerance: float) -> None:
        threshold = self.best - tolerance * abs(self.best) if np.isfinite(self.best) else np.inf
        if generation_best < threshold:
            self.best = generation_best
            self.stagnant_generations = 0
        else:
            self.best = min(self.best, generation_best)
            self.stagnant_generations += 1


class OptimizationRun:
    """One run of one algorithm on one problem, resumable from its store."""

    def __init__(self, problem: Problem, store: Store) -> None:
        spec = problem.spec
        self.problem = problem
        self.store = store
        self.algorithm: Algorithm = create_algorithm(
            spec.algorithm.name,
            problem.space.dimension,
            spec.algorithm.population,
            spec.seed,
            dict(spec.algorithm.settings),
        )
        checkpoint = store.checkpoint()
        store.rollback(checkpoint)
        if checkpoint:
            self.algorithm.restore(checkpoint.algorithm_state)
            self.generation, self.evaluations = checkpoint.generation, checkpoint.evaluations
            self.stopping = Stopping(**checkpoint.stopping_state)
        else:
            self.generation, self.evaluations, self.stopping = 0, 0, Stopping()
        self.resumed_at = self.generation
        self._exhausted = False
        self._cut_by_budget = False

    @property
    def stop_reason(self) -> str | None:
        """Why the run is over, or None while it goes on."""
        rules = self.problem.spec.stopping
        if self.evaluations >= self.problem.spec.budget:
            return f"evaluation budget of {self.problem.spec.budget} used"
        if rules.error_target is not None and self.stopping.best <= rules.error_target:
            return f"error target {rules.error_target:g} reached"
        if (
            rules.stagnation_generations is not None
            and self.stopping.stagnant_generations >= rules.stagnation_generations
        ):
            return f"no improvement in {rules.stagnation_generations} generations"
        if self._exhausted or self.algorithm.done:
            return f"{self.algorithm.info.label} converged"
        return None

    def ask(self) -> np.ndarray:
        """Next batch in the unit cube, cut to the remaining budget."""
        try:
            points = np.atleast_2d(self.algorithm.ask())
        except AlgorithmError:
            raise
        except Exception as error:
            raise AlgorithmError(f"{self.algorithm.info.label} failed in ask(): {error}") from error
        if points.size == 0:
            self._exhausted = True
            return points.reshape(0, self.problem.space.dimension)
        remaining = self.problem.spec.budget - self.evaluations
        self._cut_by_budget = len(points) > remaining
        return points[:remaining]

    def to_real(self, points: np.ndarray) -> np.ndarray:
        return self.problem.space.to_real(points)

    def record(self, points: np.ndarray, result: BatchResult, seconds: float) -> None:
        """Store the evaluated batch, tell the algorithm, checkpoint — in that order."""
        n = len(points)
        self.store.write_generation(
            self.generation, self.evaluations, self.to_real(points), result, seconds
        )
        if not self._cut_by_budget:  # a batch cut by the budget ends the run, untold
            try:
                # Multi-objective algorithms see one objective per weighted cost component.
                weighted = result.errors * self.problem.objective.weights
                self.algorithm.tell(points, weighted, result.total)
            except Exception as failure:
                error = failure
                if not isinstance(failure, AlgorithmError):
                    label = self.algorithm.info.label
                    error = AlgorithmError(f"{label} failed in tell(): {failure}")
                    error.__cause__ = failure
                # The batch was evaluated: readers see its rows, and the run says why it ended.
                # The checkpoint stays at the previous generation (the algorithm state is gone).
                self.store.set_attributes(
                    committed_generations=self.generation + 1,
                    committed_evaluations=self.evaluations + n,
                    finished=f"failed: {error}",
                )
                raise error from error.__cause__
        self.generation += 1
        self.evaluations += n
        tolerance = self.problem.spec.stopping.stagnation_tolerance
        self.stopping.update(float(result.total.min()) if n else np.inf, tolerance)
        self.store.commit(
            Checkpoint(
                self.generation, self.evaluations, self.algorithm.state(), asdict(self.stopping)
            )
        )

    def finish(self) -> str:
        reason = self.stop_reason or "stopped"
        self.store.set_attributes(finished=reason, generations_run=self.generation)
        return reason


Evaluator = Callable[[np.ndarray], BatchResult]


def run_to_end(
    run: OptimizationRun,
    evaluate: Evaluator,
    on_generation: Callable[[OptimizationRun], None] | None = None,
) -> str:
    """The plain loop (no Prefect, no Dask needed): returns why the run stopped."""
    while run.stop_reason is None:
        points = run.ask()
        if len(points) == 0:
            continue
        started = time.perf_counter()
        result = evaluate(run.to_real(points))
        run.record(points, result, time.perf_counter() - started)
        if on_generation:
            on_generation(run)
    return run.finish()
