"""The flow process's Dask bookkeeping stays bounded over a long run (memory flat)."""

from __future__ import annotations

import numpy as np

from neuroptimus.optimization.execution.cluster import BOUNDED_HISTORY, ClusterConfig, connect


def _total(values: np.ndarray) -> float:
    return float(values.sum())


def _history(client) -> list[int]:
    """How many messages, transitions and computations the scheduler and client keep."""
    scheduler = client.cluster.scheduler
    streams = [
        client.scheduler_comm, *scheduler.stream_comms.values(), *scheduler.client_comms.values()
    ]  # fmt: skip
    kept = [len(stream.recent_message_log) for stream in streams]
    return [*kept, len(scheduler.transition_log), len(scheduler.computations)]


def _generations(client, first: int, count: int) -> None:
    for generation in range(first, first + count):  # one computation each, as a run's
        arrays = [np.full(1000, generation + i) for i in range(5)]
        futures = client.map(_total, arrays)
        assert client.gather(futures) == [float(a.sum()) for a in arrays]
        del futures


def test_the_scheduler_and_client_keep_only_a_few_messages_of_a_long_run():
    """Every chunk's parameters travel in messages that Dask logs for debugging: a run of
    many generations must not keep them all (Dask's defaults kept the last 1000 per
    connection and the last 100 computations: a run's last ~100 generations)."""
    with connect(ClusterConfig(workers=1)) as client:
        _generations(client, 0, 20)
        after_20 = _history(client)
        _generations(client, 20, 20)
        assert _history(client) == after_20
    assert max(after_20) <= max(BOUNDED_HISTORY.values())
