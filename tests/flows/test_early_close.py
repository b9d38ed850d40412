"""A command's cluster can be stopped in the background while the command goes on (its
report is written meanwhile); leaving the block waits for it and reports its errors."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import pytest

from neuroptimus.flows.cli.early_close import EarlyClose
from neuroptimus.optimization.execution.cluster import ClusterConfig, connect


def test_a_real_cluster_stops_in_the_background_and_the_block_waits_for_it():
    cluster = EarlyClose(connect(ClusterConfig(workers=1)))
    with cluster as client:
        assert client.submit(sum, [1, 2]).result() == 3
        cluster.close_soon()  # from another thread than the one that connected
        cluster.close_soon()  # once only
        assert client.status in ("running", "closing", "closed")
    assert client.status == "closed"


@contextmanager
def slow_exit(events: list, error: Exception | None = None):
    yield "value"
    time.sleep(0.3)
    events.append(("exited", threading.current_thread().name))
    if error is not None:
        raise error


def test_the_block_goes_on_while_the_exit_runs_and_waits_for_it():
    events: list = []
    early = EarlyClose(slow_exit(events))
    with early as value:
        started = time.monotonic()
        early.close_soon()
        events.append(("block went on", time.monotonic() - started < 0.2))
    assert value == "value"
    assert events == [("block went on", True), ("exited", "early-close")]


def test_an_error_of_the_background_exit_is_raised_on_leaving_the_block():
    early = EarlyClose(slow_exit([], RuntimeError("the cluster did not stop")))
    with pytest.raises(RuntimeError, match="did not stop"), early:
        early.close_soon()


def test_without_close_soon_the_context_exits_as_usual():
    events: list = []
    with EarlyClose(slow_exit(events)):
        pass
    assert events == [("exited", "MainThread")]
