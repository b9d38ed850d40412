"""Freeing a cluster's worker processes for another model: a process hosts one simulator
(NEURON holds one model), so evaluating a second problem with the same model under another
protocol (a held-out validation) needs fresh worker processes."""

from __future__ import annotations

from distributed import Client

PROBLEM_PLUGINS = "neuroptimus-problem-"  # the names ProblemPlugin registers under


def _problem_plugins(dask_scheduler) -> list[str]:
    return [name for name in dask_scheduler.worker_plugins if name.startswith(PROBLEM_PLUGINS)]


def release_problems(client: Client) -> None:
    """Remove the problems installed on ``client``'s workers and restart the worker processes
    (their nannies start new ones, which would otherwise build the old model again)."""
    for name in client.run_on_scheduler(_problem_plugins):
        client.unregister_worker_plugin(name)
    client.restart()
