"""A cluster the run starts drops its workers' heartbeat-failure traceback (a race of every
shutdown, seen under a command's one-line error) and nothing else."""

from __future__ import annotations

import logging

from neuroptimus.optimization.execution.cluster import ClusterConfig, connect
from neuroptimus.optimization.execution.quiet_shutdown import HEARTBEAT_FAILED


def _passed_by_the_worker_logger() -> dict[str, bool]:
    logger = logging.getLogger("distributed.worker")

    def passes(message: str) -> bool:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
        return bool(logger.filter(record))

    return {"heartbeat": passes(HEARTBEAT_FAILED), "other": passes("Unexpected exception")}


def test_workers_of_a_started_cluster_drop_only_the_heartbeat_failure():
    with connect(ClusterConfig(workers=1)) as client:
        seen = list(client.run(_passed_by_the_worker_logger).values())
    assert seen == [{"heartbeat": False, "other": True}]
