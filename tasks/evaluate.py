"""The per-generation task: one Prefect task runs a generation's ask/evaluate/tell rounds on
Dask and commits it; Prefect retries it only for infrastructure failures."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator
from neuroptimus.optimization.loop.runner import OptimizationRun
from neuroptimus.tasks.retry import retry_condition


@task(
    name="generation",
    retries=3,
    retry_delay_seconds=2,
    retry_condition_fn=retry_condition,
    cache_policy=NO_CACHE,
    task_run_name="generation-{generation}",
)
def run_generation(run: OptimizationRun, evaluator: DaskEvaluator, generation: int) -> int:
    """Run and commit one generation (``OptimizationRun.run_generation``). Bad individuals
    come back as statuses; the evaluator resubmits chunks lost with a dead worker. What it
    cannot absorb raises: infrastructure failures are retried (the generation restarts from
    the last checkpoint), anything else fails the run at once."""
    return run.run_generation(evaluator)
