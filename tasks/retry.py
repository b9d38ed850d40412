"""When Prefect retries a task: the one rule of ``neuroptimus.optimization.errors`` — an
infrastructure failure (a lost worker or scheduler, a disk error) may pass; a mistake in the
user's problem, model or data never does, and neither does a bug."""

from __future__ import annotations

from typing import Any

from neuroptimus.optimization.errors import is_retryable


def retry_condition(task: Any, task_run: Any, state: Any) -> bool:
    """A ``retry_condition_fn``: retry only what ``is_retryable`` says may pass."""
    return is_retryable(state.result(raise_on_failure=False))
