"""A worker keeps the traces of the best individual it evaluated for a run, exactly as a new
simulation of it gives them; only that individual's values get them, once."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from neuroptimus.optimization.evaluation import kept_traces
from neuroptimus.optimization.evaluation.individual import evaluate_batch, simulate_traces
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.usecases import problem_path


def _kept_and_simulated() -> dict:
    problem = build_problem(load_problem(problem_path("hh")))
    points = np.array([[0.12, 0.036, 0.0003], [0.1, 0.03, 0.0005], [0.2, 0.02, 0.0002]])
    evaluate_batch(problem, points[:1])  # outside a run: nothing kept
    assert kept_traces.take("run", points[0]) is None
    with kept_traces.keeping("run"):
        result = evaluate_batch(problem, points)
    best = points[int(np.argmin(result.total))]
    other = points[int(np.argmax(result.total))]
    with kept_traces.keeping("run"):
        evaluate_batch(problem, points)
    wrong = kept_traces.take("run", other)  # not the best: nothing, and the run is forgotten
    with kept_traces.keeping("run"):
        evaluate_batch(problem, points)
    kept = kept_traces.take("run", best)
    return {
        "wrong": wrong, "kept": kept, "again": kept_traces.take("run", best),
        "simulated": simulate_traces(problem, best), "totals": result.total,
    }  # fmt: skip


def test_the_best_individuals_traces_are_kept_as_a_new_simulation_gives_them():
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:  # a model of its own
        got = pool.submit(_kept_and_simulated).result()
    assert len(set(got["totals"].tolist())) == 3  # three different cells: the best is one
    assert got["wrong"] is None and got["again"] is None
    assert len(got["kept"]) == len(got["simulated"]) == 1
    for kept, simulated in zip(got["kept"], got["simulated"], strict=True):
        assert np.array_equal(kept.values, simulated.values) and kept.dt_ms == simulated.dt_ms
