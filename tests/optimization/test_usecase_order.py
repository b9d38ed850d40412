"""A model is built once per worker process: on UC4 (ca1-simplified, 21 compiled mechanisms,
9 somatic conductances), vectors evaluated one after another, in either order, give exactly
the traces (bitwise, hence the errors) of each evaluated alone in a fresh process."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from neuroptimus.optimization.evaluation.individual import hosted_simulator
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.usecases import problem_path

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


def test_uc6_user_function_and_features_model_is_order_independent():
    """UC6 (a user function that sets distance-dependent profiles, six sweeps): B after A
    equals B alone, and A after B equals A alone (vectors at the two ends of the bounds).
    Simulated to 260 ms, 60 ms into the steps (200–500 ms): the sag and the first spikes, at
    less than half the cost of the whole 600 ms."""
    spec = load_problem(problem_path("ca1-detailed"))
    spec = spec.model_copy(update={"protocol": spec.protocol.model_copy(update={"tstop_ms": 260})})
    low = [p.lower + 0.2 * (p.upper - p.lower) for p in spec.parameters]
    high = [p.lower + 0.8 * (p.upper - p.lower) for p in spec.parameters]
    low_then_high = _in_fresh_process_all(spec, [low, high])
    high_then_low = _in_fresh_process_all(spec, [high, low])
    for first, second in ((low_then_high, high_then_low), (high_then_low, low_then_high)):
        # the second vector of one process was the first (fresh) of the other
        for sweep_a, sweep_b in zip(first[1], second[0], strict=True):
            assert np.array_equal(sweep_a, sweep_b)
    assert not np.array_equal(low_then_high[0][-1], high_then_low[0][-1])


def _all_sweeps(spec, vectors):
    simulator = hosted_simulator(spec)
    names = [p.name for p in spec.parameters]
    runs = [simulator.run(dict(zip(names, v, strict=True))) for v in vectors]
    return [[trace.values for trace in traces] for traces in runs]


def _in_fresh_process_all(spec, vectors):
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_all_sweeps, spec, vectors).result()
