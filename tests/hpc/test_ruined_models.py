"""A user function that deletes a NEURON section ruins its worker's model: on a real
LocalCluster with nannies, that individual fails, the worker retires and is replaced by a
fresh process, and the individuals after it (of its chunk, and of a chunk the worker held
besides) get the results a fresh process gives them; nobody is blamed, and no loss counts
(``resubmissions: 0`` would fail the call at the first)."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
from distributed import Client

from neuroptimus.optimization.evaluation.individual import OK, STATUSES, evaluate_batch
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster
from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator
from neuroptimus.optimization.execution.worker_deaths import DEATHS
from neuroptimus.optimization.problem.problem_file import parse_problem

CELL = """\
create soma, dend
soma { L = 20  diam = 20  insert hh }
dend { L = 500  diam = 1  nseg = 3  insert pas  g_pas = 1e-4  e_pas = -65 }
connect dend(0), soma(1)
"""

DELETES = """\
def apply(h, v):
    if v[1] > 0.8:
        h.delete_section(sec=h.dend)
"""


def _spec(folder):
    (folder / "model.hoc").write_text(CELL)
    (folder / "fun.py").write_text(DELETES)
    data = {
        "name": "ruined",
        "model": {"hoc": "model.hoc", "user_function": {"file": "fun.py", "function": "apply"}},
        "parameters": [
            {"name": "gnabar", "hoc": "soma.gnabar_hh", "lower": 0.05, "upper": 0.2,
             "true_value": 0.12},
            {"name": "spare", "lower": 0, "upper": 1, "true_value": 0.5},
        ],
        "protocol": {
            "tstop_ms": 20, "dt_ms": 0.025, "v_init_mV": -65,
            "stimulus": {"type": "IClamp", "amplitudes": [0.3], "delay_ms": 2,
                         "duration_ms": 10},
        },
        "target": {"regenerate": True, "sampling_rate_hz": 40000},
        "costs": {"functions": [{"name": "MSE"}]},
    }  # fmt: skip
    return parse_problem(data, base_dir=str(folder))


def _fresh(problem, points):
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(evaluate_batch, problem, points).result()


def _pid(label: str) -> int:
    return int(label.rsplit(":", 1)[1])


def test_after_a_deleted_section_the_worker_is_replaced_and_the_rest_evaluated(tmp_path,
                                                                             caplog):  # fmt: skip
    problem = build_problem(_spec(tmp_path))
    # two chunks of three on one worker; the second of each chunk deletes the dendrite
    points = np.array([[g, 0.9 if i in (1, 4) else 0.5]
                       for i, g in enumerate([0.06, 0.07, 0.08, 0.1, 0.11, 0.14])])  # fmt: skip
    config = ClusterConfig(workers=1, chunks_per_worker=2, resubmissions=0)
    with (
        caplog.at_level(
            logging.WARNING, logger="neuroptimus.optimization.execution.dask_evaluator"
        ),
        make_cluster(config) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(1)
        result = DaskEvaluator(client, problem, config=config)(points)
        deaths = client.get_metadata([DEATHS], default={})
    assert [STATUSES[s] for s in result.status] == ["ok", "failed", "ok", "ok", "failed", "ok"]
    for row in (1, 4):
        assert result.message[row].endswith("deleted section dend, which NEURON cannot rebuild")
    fine = np.flatnonzero(result.status == OK)
    expected = _fresh(problem, points[fine])
    assert np.array_equal(result.errors[fine], expected.errors)
    assert np.array_equal(result.total[fine], expected.total)
    # what came after a deletion was evaluated by another process: the one that replaced it
    pids = [_pid(label) for label in result.worker]
    assert pids[0] == pids[1] and pids[2] != pids[1]
    assert not deaths  # a retirement is no death: nobody to blame
    lines = [r.getMessage() for r in caplog.records if "replaced by a fresh one" in r.message]
    assert len(lines) == 2, lines
    assert "deleted section dend" in lines[0] and f":{pids[1]} " in lines[0]
