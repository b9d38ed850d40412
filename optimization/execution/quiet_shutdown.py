"""Workers of a cluster the run started keep quiet while the run closes it.

When a process stops its LocalCluster, the scheduler may close while a worker's heartbeat is
in flight; Dask's worker then logs an ERROR with a traceback ("Failed to communicate with
scheduler during heartbeat."), which lands under the command's one-line error or its final
lines. On a cluster the run started, the scheduler lives in the run's own process, so that
record only ever means the run is ending: it is dropped, and every other record still passes.
"""

from __future__ import annotations

import logging

from distributed import WorkerPlugin

HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat."


class _DropHeartbeatFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != HEARTBEAT_FAILED


_FILTER = _DropHeartbeatFailures()


class QuietShutdown(WorkerPlugin):
    """Drops the worker's heartbeat-failure record (kept for the rest of the process: the
    record comes while the worker closes, after its plugins' teardown)."""

    name = "neuroptimus-quiet-shutdown"
    idempotent = True

    def setup(self, worker) -> None:
        logger = logging.getLogger("distributed.worker")
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
