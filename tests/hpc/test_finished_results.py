"""A result that exists survives the death of the worker that made it, on a real LocalCluster
with NEURON: a chunk that ended on a worker killed before the client fetched its results, and
the rows a chunk finished before its worker was killed in the middle of the next one, are
kept (stored with the dead worker's name) and not evaluated again."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
from distributed import Client
from hpc_runs import uc1_spec, wait_until
from test_crashes import _evaluate_alone, _points, crashing_spec

from neuroptimus.optimization.evaluation.individual import OK
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.execution import handover
from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster
from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator


def _pid(label: str) -> int:
    return int(label.rsplit(":", 1)[1])


def _chunk_keys(keys) -> list[str]:
    return [str(key) for key in keys if "_evaluate_chunk" in str(key)]


def _assert_exact(result, points) -> None:
    """Every row OK and equal bit for bit to the unmodified model's run in a fresh process."""
    assert np.all(result.status == OK), result.message
    expected = _evaluate_alone(uc1_spec(), points)
    assert np.array_equal(result.errors, expected.errors)
    assert np.array_equal(result.total, expected.total)


def test_a_chunk_finished_on_a_worker_killed_before_the_fetch_is_kept(tmp_path):
    """Two chunks on two workers: while the run takes the first chunk's results, the second
    ends, and its worker is killed before the client could fetch them."""
    problem = build_problem(crashing_spec(tmp_path, busy_s=0.3, segv=1.0, abrt=0.0))
    points = _points([1e-4, 2e-4, 3e-4])  # chunks of 2 (0.6 s) and 1 (0.3 s) individuals
    config = ClusterConfig(workers=2, chunks_per_worker=1)
    killed: list[int] = []
    with make_cluster(config) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        evaluator = DaskEvaluator(client, problem, config=config)

        def kill_the_holder_of_the_other_chunk(rows, result) -> None:
            if killed:
                return
            first = _pid(result.worker[0])

            def other_chunk_ended():
                if any(_chunk_keys(keys) for keys in client.processing().values()):
                    return None
                holders = {a: k for a, k in client.has_what().items() if _chunk_keys(k)}
                if sum(len(_chunk_keys(k)) for k in holders.values()) < 2:
                    return None  # the other chunk has not started or not ended
                pids = client.run(os.getpid, workers=list(holders))
                others = [a for a in holders if pids[a] != first] or list(holders)
                return others[0], pids[others[0]]

            address, pid = wait_until(other_chunk_ended, 120, "the other chunk to end")
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            wait_until(lambda: address not in client.nthreads(), 60, "the worker to be lost")

        result = evaluator(points, on_result=kill_the_holder_of_the_other_chunk)
    assert killed, "no worker was killed"
    # the two-individual chunk ended on the killed worker: its results were kept from there
    assert [_pid(label) for label in result.worker[:2]] == killed * 2
    _assert_exact(result, points)


def test_rows_finished_before_a_worker_dies_mid_chunk_are_kept(tmp_path):
    """A chunk of two slow individuals (each handed over as it ends): its worker is killed
    while it evaluates the second; only the second is evaluated again."""
    # each row busy for 3 s: on a loaded machine the handover reached the watcher more than
    # 1.2 s late, after the second row had ended too
    problem = build_problem(crashing_spec(tmp_path, busy_s=3.0, segv=1.0, abrt=0.0))
    points = _points([1e-4, 2e-4])
    config = ClusterConfig(workers=1, chunks_per_worker=1)
    killed: list[int] = []
    with make_cluster(config) as cluster, Client(cluster) as client, Client(cluster) as watcher:
        client.wait_for_workers(1)
        evaluator = DaskEvaluator(client, problem, config=config)
        handed = threading.Event()

        def kill_after_the_first_row(event) -> None:
            decoded = handover.decode(event[1])
            if decoded is not None and not killed and decoded[2] == 0:
                killed.append(_pid(decoded[3].worker[0]))
                os.kill(killed[0], signal.SIGKILL)  # in the middle of the second row
                handed.set()

        watcher.subscribe_topic(handover.TOPIC, kill_after_the_first_row)
        result = evaluator(points)
    assert handed.is_set() and killed, "the first row was not handed over"
    assert _pid(result.worker[0]) == killed[0]  # kept from the dead worker
    assert _pid(result.worker[1]) != killed[0]  # evaluated again, alone, elsewhere
    _assert_exact(result, points)
