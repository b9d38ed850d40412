"""The generation task in a real Prefect flow: retried for infrastructure failures only.

The evaluator is the analytic one of the runner tests (no cluster needed to fail the way a
cluster fails); algorithm, store, checkpoints and Prefect (a temporary server) are real.
"""

from __future__ import annotations

import numpy as np
import pytest
from prefect import flow

from neuroptimus.optimization.algorithms import AlgorithmError
from neuroptimus.optimization.errors import is_retryable
from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length
from neuroptimus.optimization.loop.runner import OptimizationRun
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.optimization.simulators import ModelError
from neuroptimus.storage.runs.create import create_run_store, problem_from_store
from neuroptimus.storage.runs.run_store import RunStore, StoreError
from neuroptimus.tasks.evaluate import run_generation
from neuroptimus.usecases import problem_path

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _evaluate(values: np.ndarray) -> BatchResult:
    """Distances of the real values to the true ones as four error components."""
    errors = np.abs(values - np.array([0.12, 0.036, 0.0003]))[:, [0, 1, 2, 0]]
    n = len(values)
    return BatchResult(errors, errors.mean(axis=1), np.zeros(n, np.int8), [""] * n,
                       np.zeros(n), ["here"] * n)  # fmt: skip


generation_task = run_generation.with_options(retry_delay_seconds=0)


def _store_error() -> StoreError:
    try:
        raise OSError(28, "No space left on device")
    except OSError as error:
        try:
            raise StoreError("cannot write the run store") from error
        except StoreError as wrapped:
            return wrapped


def _lost_worker() -> RuntimeError:
    from distributed import KilledWorker

    try:
        raise KilledWorker("task", "tcp://127.0.0.1:1", 3)
    except KilledWorker as error:
        try:
            raise RuntimeError("a chunk was lost with its worker 4 times") from error
        except RuntimeError as wrapped:
            return wrapped


class Failing:
    """The analytic evaluator, raising ``error`` at its ``at``-th call (once, or always)."""

    def __init__(self, error: BaseException, at: int, once: bool = True) -> None:
        self.error, self.at, self.once, self.calls = error, at, once, 0

    def __call__(self, values: np.ndarray):
        self.calls += 1
        if self.calls == self.at or (not self.once and self.calls >= self.at):
            raise self.error
        return _evaluate(values)


@flow(name="generations-under-test")
def generations(store: str, evaluate, count: int) -> int:
    run_store = RunStore.open(store, mode="r+")
    run = OptimizationRun(problem_from_store(run_store), run_store)
    for _ in range(count):
        generation_task(run, evaluate, run.generation)
    run.algorithm.close()
    return run.evaluations


def _store(tmp_path, name: str) -> str:
    """A pygmo-de run (2 islands of 6: generations of 3 rounds after the first)."""
    spec = with_overrides(load_problem(problem_path("hh")), algorithm="pygmo-de", population=6,
                          generations=8, seed=4)  # fmt: skip
    spec = spec.model_copy(update={
        "algorithm": spec.algorithm.model_copy(update={"settings": {"islands": 2}}),
        "stopping": spec.stopping.model_copy(update={"error_target": None,
                                                     "stagnation_generations": None}),
    })  # fmt: skip
    problem = build_problem(spec, [np.zeros(expected_length(spec))])
    return str(create_run_store(problem, tmp_path / name).path)


@pytest.mark.parametrize(
    "error",
    [OSError("connection reset"), _store_error(), _lost_worker(), TimeoutError("scheduler")],
    ids=["os", "store-disk", "lost-worker", "timeout"],
)
def test_infrastructure_failures_are_retried_and_change_nothing(tmp_path, error):
    reference = _store(tmp_path, "reference.zarr")
    assert generations(reference, _evaluate, 3) > 0
    # The 3rd call is the second round of generation 1, after a told round: the retry must
    # restart the generation from the checkpoint, not continue a half-told algorithm.
    failing = Failing(error, at=3)
    store = _store(tmp_path, "retried.zarr")
    generations(store, failing, 3)
    assert failing.calls > 3
    a, b = RunStore.open(reference).evaluations(), RunStore.open(store).evaluations()
    for name in ("parameters", "total", "generation"):
        assert np.array_equal(a[name], b[name]), name


@pytest.mark.parametrize(
    "error",
    [
        ModelError("the mechanism hh2 is not compiled"),
        AlgorithmError("algorithm 'pygmo-de' failed"),
        ValueError("bad target"),
        ZeroDivisionError("a bug"),
    ],
    ids=["model", "algorithm", "value", "bug"],
)
def test_user_and_algorithm_errors_fail_at_once(tmp_path, error):
    failing = Failing(error, at=2, once=False)
    with pytest.raises(type(error)):
        generations(_store(tmp_path, "run.zarr"), failing, 3)
    assert failing.calls == 2  # no retry


def test_an_infrastructure_failure_that_persists_ends_after_the_retries(tmp_path):
    failing = Failing(OSError("scheduler gone"), at=2, once=False)
    with pytest.raises(OSError):
        generations(_store(tmp_path, "run.zarr"), failing, 3)
    assert failing.calls == 2 + run_generation.retries


def test_classification_follows_the_cause_chain():
    assert is_retryable(_store_error())
    assert is_retryable(_lost_worker())
    assert not is_retryable(StoreError("the store is not a run store"))
    wrapped = AlgorithmError("pygmo failed")
    wrapped.__cause__ = OSError("inside the library")
    assert not is_retryable(wrapped)
    assert not is_retryable(None)
