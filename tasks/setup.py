"""Setup tasks: check the problem on a process that can host its model, and create the run
store. Only infrastructure failures are retried (see ``neuroptimus.tasks.retry``)."""

from __future__ import annotations

from distributed import Client
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from neuroptimus.optimization.evaluation.problem import Problem
from neuroptimus.optimization.execution.cluster import client_config
from neuroptimus.optimization.loop.preflight import prepare_isolated, prepare_on_worker
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.warm_start import new_run_store
from neuroptimus.tasks.retry import retry_condition


@task(
    name="prepare-problem", retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE,
    retry_condition_fn=retry_condition,
)  # fmt: skip
def prepare_problem(spec: ProblemSpec, client: Client | None = None) -> Problem:
    """Build the model, check every parameter target, section and recording against it, and
    load (or regenerate) the target: on a worker of the run's local cluster (which keeps the
    model for the evaluations), else in a spawned process (a batch queue's workers may not be
    running yet)."""
    if client is not None and client_config(client).is_local:
        problem = prepare_on_worker(client, spec)
    else:
        problem = prepare_isolated(spec)
    get_run_logger().info(
        "problem %s: %d parameters, %d error components, %d target sample(s) per sweep",
        spec.name, problem.space.dimension, len(problem.component_names),
        len(problem.objective.targets[0]) if problem.objective.targets else 0,
    )  # fmt: skip
    return problem


@task(
    name="create-store", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE,
    retry_condition_fn=retry_condition,
)  # fmt: skip
def create_store(problem: Problem, path: str) -> str:
    """The store, complete or not at all (built aside and renamed into place)."""
    new_run_store(problem, path)  # with its warm start's points, if it has one
    return path
