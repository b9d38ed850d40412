"""A run whose Dask cluster goes away under a generation (closed by whoever owned it, or the
connection to its scheduler lost) fails that generation at once with a clear infrastructure
error, on a real LocalCluster with NEURON, instead of waiting for tasks nobody will run."""

from __future__ import annotations

import threading
import time

import pytest
from distributed import Client
from test_crashes import _points, crashing_spec

from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster
from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator, SchedulerLost


def test_a_cluster_closed_under_a_generation_fails_it_at_once(tmp_path):
    problem = build_problem(crashing_spec(tmp_path, busy_s=2.0, segv=1.0, abrt=0.0))
    config = ClusterConfig(workers=1, chunks_per_worker=4)
    # connected by address, as the runs of a benchmark share one cluster
    with make_cluster(config) as cluster, Client(cluster.scheduler_address, timeout=5) as client:
        client.wait_for_workers(1)
        evaluator = DaskEvaluator(client, problem, config=config)
        threading.Timer(1.0, cluster.close).start()
        started = time.monotonic()
        with pytest.raises(SchedulerLost, match="cancelled a task of this generation"):
            evaluator(_points([1e-4, 2e-4, 3e-4, 4e-4]))  # 8 s of simulation on one worker
        assert time.monotonic() - started < 6
