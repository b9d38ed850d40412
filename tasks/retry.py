"""When a Prefect task is worth retrying: an infrastructure failure (a lost worker or
scheduler, a disk error) may pass; a mistake in the user's problem, model or data never does."""

from __future__ import annotations

from typing import Any


def user_mistakes() -> tuple[type[Exception], ...]:
    """Exceptions that name something the user must fix; retrying them only repeats them."""
    from neuroptimus.optimization.execution.cluster import ClusterError
    from neuroptimus.optimization.problem.preflight import PROBLEM_ERRORS
    from neuroptimus.storage.run_store import StoreError

    return (*PROBLEM_ERRORS, StoreError, ClusterError)


def infrastructure_only(task: Any, task_run: Any, state: Any) -> bool:
    """A ``retry_condition_fn``: retry unless the task failed on a user's mistake."""
    error = state.result(raise_on_failure=False)
    return not isinstance(error, user_mistakes())
