"""The model-based algorithms (lq-CMA-ES, TPE) in the generation loop on a real run store:
the parameter space's bounds and log scales, and the algorithm's own time per generation."""

from __future__ import annotations

import numpy as np
import pytest
from test_runner import _evaluate, _problem

from neuroptimus.optimization.evaluation.problem import build_problem, expected_length
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.storage.runs.create import create_run_store


def _log_scaled(algorithm: str, population: int, generations: int):
    """Use case 1 with its first parameter searched in log10 over four decades."""
    spec = _problem(algorithm, population, generations).spec
    first = spec.parameters[0].model_copy(update={"lower": 1e-3, "upper": 10.0, "log": True})
    spec = spec.model_copy(update={"parameters": [first, *spec.parameters[1:]]})
    return build_problem(spec, [np.zeros(expected_length(spec))])


@pytest.mark.parametrize("algorithm", ["cma-lq", "optuna-tpe"])
def test_model_based_runs_respect_bounds_and_log_scales_and_record_their_own_time(
    tmp_path, algorithm
):
    problem = _log_scaled(algorithm, 8, 5)
    store = create_run_store(problem, tmp_path / "run.zarr")
    run = OptimizationRun(problem, store)
    asked = []
    ask = run.ask

    def spy():
        points = ask()
        asked.append(points.copy())
        return points

    run.ask = spy
    assert run_to_end(run, _evaluate) == "evaluation budget of 40 used"
    rows = store.evaluations()["parameters"]
    cube = np.concatenate(asked)
    assert rows.shape == (40, 3) and cube.shape == (40, 3)
    assert np.all(cube >= 0.0) and np.all(cube <= 1.0)
    space = problem.space
    assert np.all(rows >= space.lower) and np.all(rows <= space.upper)
    # the first parameter is 10 ** (cube value over its four decades), the others linear
    assert np.allclose(rows[:, 0], 10.0 ** (-3.0 + 4.0 * cube[:, 0]))
    assert np.allclose(rows[:, 1:], space.lower[1:] + cube[:, 1:] * (space.upper - space.lower)[1:])
    stats = store.generations()
    own = stats["algorithm_seconds"]
    assert own.shape == (5,) and np.all(np.isfinite(own)) and np.all(own > 0)
    assert np.all(np.isfinite(stats["seconds"]))


def test_lq_cmaes_model_spares_the_candidates_it_ranks_well():
    """On a smooth function the model's ranking soon agrees with the true one, so an iteration
    of 8 candidates often ends after its first batch of 4; with as many candidates as the
    population (the default), every candidate is evaluated."""
    from neuroptimus.optimization.algorithms import create_algorithm

    def ellipsoid(points):
        return np.sqrt(((points - 0.3) ** 2 * [1.0, 10.0, 100.0]).sum(axis=1))

    for popsize, spared in ((8, True), (0, False)):
        algorithm = create_algorithm("cma-lq", 3, 4, 1, {"popsize": popsize})
        for _ in range(40):
            points = algorithm.ask()
            assert len(points) == 4
            values = ellipsoid(points)
            algorithm.tell(points, values, values)
        assert algorithm.true_evaluations == 160
        candidates = algorithm.iterations * algorithm.popsize
        assert (candidates > algorithm.true_evaluations + 40) == spared, candidates
