"""Setup tasks: load the target (regenerating surrogates) and create the run store."""

from __future__ import annotations

from prefect import get_run_logger, task

from optimization.problem import Problem, build_problem
from optimization.spec import ProblemSpec
from storage.run_store import check_writable
from storage.runs import create_run_store


@task(name="prepare-problem", retries=1, retry_delay_seconds=2)
def prepare_problem(spec: ProblemSpec) -> Problem:
    """Fetch/regenerate the target and check it against the protocol."""
    problem = build_problem(spec)
    get_run_logger().info(
        "problem %s: %d parameters, %d error components, %d target sample(s) per sweep",
        spec.name, problem.space.dimension, len(problem.component_names),
        len(problem.objective.targets[0]),
    )  # fmt: skip
    return problem


@task(name="create-store")
def create_store(problem: Problem, path: str) -> str:
    create_run_store(problem, path)
    return path


@task(name="check-store-path")
def check_store_path(path: str) -> None:
    """Unwritable path or full disk: fail before any simulation."""
    from pathlib import Path

    check_writable(Path(path))
