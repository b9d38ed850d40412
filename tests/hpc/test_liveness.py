"""Dask's liveness rules against the evaluations' time limits, on real clusters with NEURON:
a simulation hung in C code for longer than the scheduler's worker TTL is still stopped by
the hang watchdog and stored as ``timeout`` (not dropped as a lost worker and run again
elsewhere); a cluster given by ``address`` with Dask's defaults is checked at connect, set
where it can be, and what differs is said in one line; a paused worker is reported.

Dask's numbers are scaled down (a worker TTL of 2 s instead of 5 minutes) so that each test
takes seconds."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import dask
import numpy as np
from distributed import Client, LocalCluster
from hpc_runs import uc1_spec, wait_until
from test_faults import _hanging_spec

from neuroptimus.optimization.evaluation.individual import OK, TIMEOUT
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.execution.cluster import ClusterConfig, connect, make_cluster
from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator

ROOT = Path(__file__).resolve().parents[2]


def _points(gl: list[float]) -> np.ndarray:
    return np.array([[0.12, 0.036, value] for value in gl])


def _scheduler(client: Client, attribute: str):
    return client.run_on_scheduler(lambda dask_scheduler: getattr(dask_scheduler, attribute))


def test_a_hang_longer_than_the_worker_ttl_is_stopped_by_the_watchdog(tmp_path):
    """The scheduler would drop a worker silent for 2 s (5 s at least: ten heartbeats);
    the evaluation's time limit is 8 s. The evaluator raises the TTL above the limit plus
    the grace, so the watchdog kills the worker at 9 s and the individual gets ``timeout``
    (Dask's restart would have looked like a crash, and the individual been run again)."""
    spec = _hanging_spec(tmp_path, hang=True)  # gl_hh above 9e-4 loops forever in hoc
    spec = spec.model_copy(
        update={"evaluation": spec.evaluation.model_copy(update={"timeout_s": 8.0})}
    )
    problem = build_problem(spec)
    config = ClusterConfig(workers=1, chunks_per_worker=1, hang_grace_s=1.0)
    with dask.config.set({"distributed.scheduler.worker-ttl": "2s"}):
        cluster = make_cluster(config)
    with cluster, Client(cluster) as client:
        assert _scheduler(client, "worker_ttl") == 2
        # our workers neither spill nor pause; the nanny restarts one past 95 % of its limit
        fractions = client.run(
            lambda dask_worker: [
                getattr(dask_worker.memory_manager, f"memory_{name}_fraction")
                for name in ("target", "spill", "pause")
            ]
        )
        assert list(fractions.values()) == [[False, False, False]]
        terminate = client.run(
            lambda dask_worker: dask_worker.memory_manager.memory_terminate_fraction, nanny=True
        )
        assert list(terminate.values()) == [0.95]
        evaluator = DaskEvaluator(client, problem, config=config)
        assert _scheduler(client, "worker_ttl") > 8.0 + 1.0
        result = evaluator(_points([3e-4, 1e-3, 2e-4]))
        events = [event for _, event in client.get_events("scheduler")]
    assert not [e for e in events if e.get("action") == "worker-ttl-timed-out"]
    assert [result.status[0], result.status[1], result.status[2]] == [OK, TIMEOUT, OK]
    assert "hung past its time limit (8 s)" in result.message[1]
    assert 9.0 <= result.seconds[1] < 60


def test_a_cluster_given_by_address_is_checked_at_connect(caplog):
    """A scheduler started with Dask's defaults (a task that kills its worker is tried on
    four), a worker with a nanny whose memory is past Dask's pause threshold, and a worker
    started without a nanny: the run sets the scheduler's allowed failures to 0, says in one
    line what it cannot change, raises the worker TTL for the problem and reports the
    paused worker."""
    caplog.set_level(logging.WARNING, logger="neuroptimus.optimization")
    # the worker's process takes more than 80 % of 40 MB at once; no restart past 95 %
    with (
        dask.config.set({"distributed.worker.memory.terminate": False}),
        LocalCluster(
            n_workers=1, threads_per_worker=1, memory_limit="40MB", dashboard_address=None
        ) as cluster,
    ):
        address = cluster.scheduler_address
        assert cluster.scheduler.allowed_failures == 3  # Dask's default
        bare = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--no-nanny",
             "--nthreads", "1", "--memory-limit", "0", "--no-dashboard"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            workers = cluster.scheduler.workers
            wait_until(
                lambda: len(workers) == 2
                and any(w.status.name == "paused" for w in workers.values()),
                120, "the worker without a nanny, and the other one paused",
            )  # fmt: skip
            with connect(ClusterConfig(address=address)) as client:
                (line,) = [r.getMessage() for r in caplog.records]
                assert _scheduler(client, "allowed_failures") == 0
                assert address in line
                assert "allowed-failures was 3, now 0" in line
                assert "1 of 2 workers has no nanny" in line
                assert "1 of 2 workers is paused, past Dask's memory pause threshold" in line
                caplog.clear()
                DaskEvaluator(client, build_problem(uc1_spec()))
                assert _scheduler(client, "worker_ttl") > 600 + 10  # UC1's timeout_s, grace
                paused = wait_until(
                    lambda: [r.getMessage() for r in caplog.records if "paused" in r.getMessage()],
                    60, "the paused worker reported",
                )  # fmt: skip
                (nanny_worker,) = cluster.scheduler.workers.keys() - {
                    w for w, s in cluster.scheduler.workers.items() if not s.nanny
                }
                assert nanny_worker in paused[0] and "memory limit" in paused[0]
            # nothing left to set: the next run's line names only what it cannot change
            caplog.clear()
            with connect(ClusterConfig(address=address)):
                (line,) = [r.getMessage() for r in caplog.records]
                assert "allowed-failures" not in line and "no nanny" in line
        finally:
            bare.terminate()
            bare.wait(timeout=30)


def test_a_local_cluster_keeps_the_nanny_of_a_worker_that_is_slow_to_come_back():
    """Dask closes the nanny of a worker still missing ``lost-worker-timeout`` after its death;
    with that timeout at 0 s, every death would cost a LocalCluster its worker for good. The
    runs' cluster keeps the nanny, which starts a fresh worker."""
    config = ClusterConfig(workers=2)
    with (
        dask.config.set({"distributed.deploy.lost-worker-timeout": "0s"}),
        make_cluster(config) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(2)

        def pids() -> set[int]:  # the scheduler's, so that a dead worker is no error
            return set(client.run_on_scheduler(
                lambda dask_scheduler: [w.pid for w in dask_scheduler.workers.values()]
            ))  # fmt: skip

        before = pids()
        os.kill(min(before), signal.SIGKILL)
        wait_until(lambda: len(pids() - before) == 1 and len(pids()) == 2, 60,
                   "a fresh worker process beside the other")  # fmt: skip
        assert len(cluster.workers) == 2
