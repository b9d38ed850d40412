"""The per-generation evaluation task: one Prefect task maps a population onto Dask."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from optimization.dask_evaluator import DaskEvaluator
from optimization.evaluation import BatchResult


@task(
    name="evaluate-generation",
    retries=3,
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
    task_run_name="evaluate-generation-{generation}",
)
def evaluate_generation(
    evaluator: DaskEvaluator, points: np.ndarray, generation: int
) -> BatchResult:
    """Evaluate one generation. Bad individuals come back as statuses (a hung simulation too:
    its worker is restarted); the evaluator resubmits chunks lost with a dead worker or a
    cancelled job. Only what it cannot absorb (workers lost again and again, a lost scheduler)
    raises, and then the task is retried."""
    return evaluator(points)
