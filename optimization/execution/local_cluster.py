"""The LocalCluster runs use: one that keeps its nannies.

Dask's SpecCluster closes the nanny of a worker that is still missing ``lost-worker-timeout``
(15 s) after a death of it, which is meant for lost batch jobs. A local nanny restarts its
worker itself; a worker that dies again just then (an individual that crashes it twice, a
loaded machine) would take its nanny with it, and the cluster would stay a worker short for
the rest of the run.
"""

from __future__ import annotations

from distributed import LocalCluster
from distributed.deploy.cluster import Cluster


class NanniesKeptLocalCluster(LocalCluster):
    def _update_worker_status(self, op, msg):
        # the scheduler's view of its workers only, without SpecCluster's delayed close
        Cluster._update_worker_status(self, op, msg)
