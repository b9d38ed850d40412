"""The per-generation task: one Prefect task runs a generation's ask/evaluate/tell rounds on
Dask and commits it; Prefect retries it only for infrastructure failures."""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator
from neuroptimus.optimization.loop.runner import OptimizationRun


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and its causes (``raise ... from``) or contexts."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _infrastructure_types() -> tuple[type[BaseException], ...]:
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    # OSError covers Dask's CommClosedError, lost connections, a full disk under StoreError;
    # TimeoutError a scheduler that does not answer; the others lost workers and futures.
    return (
        OSError,
        TimeoutError,
        asyncio.TimeoutError,
        KilledWorker,
        FutureCancelledError,
        concurrent.futures.CancelledError,
    )


def _user_types() -> tuple[type[BaseException], ...]:
    from neuroptimus.optimization.algorithms import AlgorithmError
    from neuroptimus.optimization.problem.build import TargetError
    from neuroptimus.optimization.problem.data import DataError
    from neuroptimus.optimization.problem.spec import SpecError
    from neuroptimus.optimization.simulators import ModelError

    return (AlgorithmError, ModelError, SpecError, TargetError, DataError, ValueError, TypeError)


def is_infrastructure_failure(error: BaseException | None) -> bool:
    """True when retrying may help: a lost worker or scheduler, a disk or network error
    (also when wrapped, e.g. a StoreError from an OSError or a chunk lost with its worker
    again and again). Never for a user's model, problem or algorithm error, nor for a bug."""
    chain = _chain(error)
    if any(isinstance(e, _user_types()) for e in chain[:1]):
        return False
    return any(isinstance(e, _infrastructure_types()) for e in chain)


def retry_infrastructure_only(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry only infrastructure failures."""
    return is_infrastructure_failure(state.result(raise_on_failure=False))


@task(
    name="generation",
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=retry_infrastructure_only,
    cache_policy=NO_CACHE,
    task_run_name="generation-{generation}",
)
def run_generation(run: OptimizationRun, evaluator: DaskEvaluator, generation: int) -> int:
    """Run and commit one generation (``OptimizationRun.run_generation``). Bad individuals
    come back as statuses; the evaluator resubmits chunks lost with a dead worker. What it
    cannot absorb raises: infrastructure failures are retried (the generation restarts from
    the last checkpoint), anything else fails the run at once."""
    return run.run_generation(evaluator)
