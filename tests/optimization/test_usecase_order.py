"""A model is built once per worker process: on UC4 (ca1-simplified, 21 compiled mechanisms,
9 somatic conductances), vectors evaluated one after another, in either order, give exactly
the traces (bitwise, hence the errors) of each evaluated alone in a fresh process."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from optimization.evaluation import hosted_simulator
from optimization.spec import load_problem
from usecases import problem_path

# the reference vector of usecase_totals.json, the hoc defaults, and one near the bounds
A = [0.005, 0.002, 0.0005, 0.002, 0.01, 0.01, 0.005, 0.02, 0.1]
B = [0.0078, 0.0011, 1.1e-4, 0.001, 0.0159, 0.0155, 0.0038, 0.009, 0.131346]
C = [1e-4, 0.09, 0.09, 1e-6, 1e-4, 0.09, 0.9, 0.002, 0.9]


def _traces(spec, vectors):
    simulator = hosted_simulator(spec)
    names = [p.name for p in spec.parameters]
    return [simulator.run(dict(zip(names, v, strict=True)))[0].values for v in vectors]


def _in_fresh_process(spec, vectors):
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_traces, spec, vectors).result()


def test_uc4_vectors_in_any_order_equal_each_in_a_fresh_process():
    spec = load_problem(problem_path("ca1-simplified"))
    forward = _in_fresh_process(spec, [A, B, C])  # A and C's neighbours differ by order
    backward = _in_fresh_process(spec, [C, B, A])
    (b_alone,) = _in_fresh_process(spec, [B])
    a_alone, c_alone = forward[0], backward[0]
    assert np.array_equal(forward[2], c_alone)
    assert np.array_equal(backward[2], a_alone)
    assert np.array_equal(forward[1], b_alone) and np.array_equal(backward[1], b_alone)
    # the vectors give different cells, so the test can fail
    assert not np.array_equal(a_alone, b_alone) and not np.array_equal(a_alone, c_alone)
    assert not np.array_equal(b_alone, c_alone)
