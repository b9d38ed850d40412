"""The generation loop's budget rule, counted by the framework, on a real run store.

The model is replaced by an analytic error function evaluated in this process (the loop takes
its evaluator as an argument); everything else — algorithms, store, checkpoints — is real.
"""

from __future__ import annotations

import numpy as np
import pytest

from optimization.evaluation import BatchResult
from optimization.problem import build_problem, expected_length
from optimization.runner import OptimizationRun, run_to_end
from optimization.spec import load_problem, with_overrides
from storage.runs import create_run_store
from usecases import problem_path


def _problem(algorithm: str, population: int, generations: int, max_evaluations=None):
    spec = with_overrides(
        load_problem(problem_path("hh")),
        algorithm=algorithm, population=population, generations=generations, seed=4,
        max_evaluations=max_evaluations,
    )  # fmt: skip
    spec = spec.model_copy(update={"stopping": spec.stopping.model_copy(
        update={"error_target": None, "stagnation_generations": None})})  # fmt: skip
    return build_problem(spec, [np.zeros(expected_length(spec))])


def _evaluate(values: np.ndarray) -> BatchResult:
    """Four components per individual (distances of the real values to the true ones), each
    weighted 0.25 in use case 1, so the total is their mean."""
    errors = np.abs(values - np.array([0.12, 0.036, 0.0003]))[:, [0, 1, 2, 0]]
    n = len(values)
    return BatchResult(errors, errors.mean(axis=1), np.zeros(n, np.int8), [""] * n,
                       np.zeros(n), ["here"] * n)  # fmt: skip


@pytest.mark.parametrize(
    ("algorithm", "population", "generations", "max_evaluations", "expected"),
    [
        ("random", 7, 3, None, 21),  # population × generations
        ("random", 7, 3, 17, 17),  # a batch cut to the remaining budget
        ("cmaes", 6, 100, 40, 40),
        ("scipy-nelder-mead", 5, 4, None, 20),  # serial: one point per generation
        ("pygmo-de", 10, 3, None, 30),  # first batch = population, then one point at a time
        ("inspyred-pso", 8, 5, 35, 35),
        ("bluepyopt-ibea", 8, 4, None, 32),
    ],
)
def test_every_algorithm_stops_at_exactly_the_budget(
    tmp_path, algorithm, population, generations, max_evaluations, expected
):
    problem = _problem(algorithm, population, generations, max_evaluations)
    store = create_run_store(problem, tmp_path / "run.zarr")
    run = OptimizationRun(problem, store)
    reason = run_to_end(run, _evaluate)
    assert run.evaluations == store.committed_evaluations == expected
    assert len(store.evaluations()["total"]) == expected
    assert reason == f"evaluation budget of {expected} used"
    assert store.attrs["finished"] == reason


def test_multi_objective_algorithms_are_told_the_weighted_components(tmp_path, monkeypatch):
    problem = _problem("pygmo-nsga2", 8, 2)
    store = create_run_store(problem, tmp_path / "run.zarr")
    run = OptimizationRun(problem, store)
    told = []
    original = type(run.algorithm).tell

    def spy(self, points, errors, totals):
        told.append(errors)
        original(self, points, errors, totals)

    monkeypatch.setattr(type(run.algorithm), "tell", spy)
    run_to_end(run, _evaluate)
    rows = store.evaluations()
    assert np.allclose(np.concatenate(told), rows["errors"] * problem.objective.weights)
    assert np.allclose(rows["total"], rows["errors"] @ problem.objective.weights)


def test_an_algorithm_failure_names_it_and_keeps_what_was_evaluated(tmp_path, monkeypatch):
    import cmaes

    from optimization.algorithms import AlgorithmError

    problem = _problem("cmaes", 6, 10)
    store = create_run_store(problem, tmp_path / "run.zarr")
    run = OptimizationRun(problem, store)
    original, calls = cmaes.CMA.tell, []

    def tell(self, solutions):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("numerical breakdown")
        original(self, solutions)

    monkeypatch.setattr(cmaes.CMA, "tell", tell)
    with pytest.raises(AlgorithmError, match=r"'cmaes'.*numerical breakdown"):
        run_to_end(run, _evaluate)
    # Every evaluated individual stays readable, and the store says why the run ended.
    assert store.committed_generations == 3
    assert len(store.evaluations()["total"]) == 18
    assert "numerical breakdown" in store.attrs["finished"]
    assert store.checkpoint().generation == 2  # the algorithm's last sound state
