"""Serial and local methods start again when their library stops, so a run uses its budget.

Analytic functions stand in for models; the algorithms, the runner and the run store are real.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuroptimus.optimization.algorithms import ALGORITHMS, create_algorithm
from neuroptimus.optimization.algorithms.bridged import island_seeds
from neuroptimus.optimization.algorithms.islands import idle_workers_note
from neuroptimus.optimization.algorithms.restarts import restart_seed
from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.storage.runs.create import create_run_store
from neuroptimus.usecases import problem_path

RESTARTING = sorted(name for name, cls in ALGORITHMS.items() if "restarts" in cls.info.defaults)
# Loose tolerances: every start converges within a few dozen evaluations.
QUICK = {
    "scipy-nelder-mead": (1, {"xatol": 1e-2, "fatol": 1e-2}),
    "scipy-lbfgsb": (1, {"ftol": 1e-4}),
    "pygmo-de": (5, {"ftol": 1e-2, "xtol": 1e-2}),
    "pygmo-sade": (7, {"ftol": 1e-2, "xtol": 1e-2}),
    "pygmo-de1220": (7, {"ftol": 1e-2, "xtol": 1e-2}),
    "pygmo-xnes": (4, {"ftol": 1e-2, "xtol": 1e-2}),
    "pygmo-praxis": (1, {"xtol_rel": 1e-2}),
}


def sphere(points: np.ndarray) -> np.ndarray:
    return ((points - 0.3) ** 2).sum(axis=1)


def used(name: str, dimension: int, budget: int, seed: int = 1, **settings) -> list[np.ndarray]:
    """The batches ``name`` asks on the sphere until ``budget`` evaluations or its end."""
    population, quick = QUICK.get(name, (10, {}))
    algorithm = create_algorithm(name, dimension, population, seed, {**quick, **settings})
    batches, count = [], 0
    try:
        while count < budget and not algorithm.done:
            points = algorithm.ask()
            if not len(points):
                break
            values = sphere(points)
            algorithm.tell(points, values[:, None], values)
            batches.append(points)
            count += len(points)
    finally:
        algorithm.close()
    return batches


def total(batches: list[np.ndarray]) -> int:
    return sum(len(points) for points in batches)


def test_every_method_that_stops_by_itself_has_the_setting():
    assert RESTARTING == sorted(QUICK)


def test_nelder_mead_uses_its_budget_on_a_6d_sphere():
    """Without restarts the islands converge and the run ends with most of its budget left;
    with them (the default) it goes on to the budget."""
    before = total(used("scipy-nelder-mead", 6, 10_000, restarts=0, xatol=1e-4, fatol=1e-4))
    after = total(used("scipy-nelder-mead", 6, 10_000, xatol=1e-4, fatol=1e-4))
    assert before < 0.5 * 10_000
    assert after >= 0.95 * 10_000


@pytest.mark.parametrize("name", RESTARTING)
def test_a_start_that_converged_starts_again(name):
    limited = total(used(name, 3, 3000, restarts=0))
    assert limited < 3000  # the start converges by itself within the budget
    assert total(used(name, 3, 3000)) >= 0.95 * 3000


@pytest.mark.parametrize("name", RESTARTING)
def test_restarts_depend_on_the_seed_alone(name):
    """Same seed, same batches across restarts; another seed, other batches."""
    first, again, other = (used(name, 3, 1500, seed=seed) for seed in (7, 7, 8))
    assert len(first) == len(again) and all(map(np.array_equal, first, again))
    assert not (len(first) == len(other) and all(map(np.array_equal, first, other)))


def test_a_restart_limit_ends_the_island_after_that_many_starts():
    """The first start asks what a run without restarts asks; two more follow, then the
    island ends."""
    alone = used("scipy-nelder-mead", 3, 10_000, restarts=0, islands=1)
    three = used("scipy-nelder-mead", 3, 10_000, restarts=2, islands=1)
    assert all(map(np.array_equal, alone, three[: len(alone)]))
    assert len(alone) < len(three) < 10_000
    # the second start begins at a new point of the cube, not where the first ended
    assert not np.allclose(three[len(alone)], alone[-1], atol=0.05)


def test_restart_seeds_extend_the_island_seeds():
    islands = island_seeds(5, 4)
    assert [restart_seed(5, island, 0) for island in range(4)] == islands
    later = {restart_seed(5, island, restart) for island in range(4) for restart in (1, 2, 3)}
    assert len(later) == 12 and not later & set(islands)
    assert restart_seed(6, 1, 1) != restart_seed(5, 1, 1)


@pytest.mark.parametrize("value", [-1, 1.5, "many", True])
def test_restarts_setting_is_checked(value):
    with pytest.raises(ValueError, match="'restarts' must be an integer >= 0 \\(leave it out"):
        create_algorithm("scipy-nelder-mead", 3, 1, 0, {"restarts": value}).ask()


def test_restarted_pygmo_islands_keep_migrating_together():
    """A restarted island evolves for the rest of the epoch, so it reaches the next migration
    no later than the others: no round holds the point of a single island while the others
    wait for it. (Migrating right after the new population instead leaves it waiting for the
    others for half an epoch on average: 25 rounds here.)"""
    batches = used("pygmo-de", 3, 3000, islands=3)  # epochs of 10 generations of 5
    restarts = [len(points) for points in batches[1:] if len(points) > 3]  # a new population
    assert len(restarts) > 10
    # rounds with fewer points than islands: islands that wait at a migration for the others;
    # a restarted island arrives at most population - 1 = 4 rounds early
    waiting = [len(points) for points in batches[1:] if len(points) < 3]
    assert len(waiting) <= 4 * len(restarts)


# --- through the runner and its store ---------------------------------------------------------


def _problem(algorithm: str, population: int, settings: dict, budget: int):
    spec = with_overrides(
        load_problem(problem_path("hh")), algorithm=algorithm, population=population,
        generations=1, seed=3, max_evaluations=budget,
    )  # fmt: skip
    stopping = spec.stopping.model_copy(
        update={"error_target": None, "stagnation_generations": None}
    )
    algorithm_spec = spec.algorithm.model_copy(update={"settings": settings})
    spec = spec.model_copy(update={"stopping": stopping, "algorithm": algorithm_spec})
    return build_problem(spec, [np.zeros(expected_length(spec))])


def _evaluate(values: np.ndarray) -> BatchResult:
    """Distances of the real values to UC1's true ones (four components, weights 0.25)."""
    errors = np.abs(values - np.array([0.12, 0.036, 0.0003]))[:, [0, 1, 2, 0]]
    n = len(values)
    return BatchResult(errors, errors.mean(axis=1), np.zeros(n, np.int8), [""] * n,
                       np.zeros(n), ["here"] * n)  # fmt: skip


@pytest.mark.parametrize(
    ("algorithm", "population", "settings"),
    [
        ("scipy-nelder-mead", 12, {"islands": 3, "xatol": 1e-2, "fatol": 1e-2}),
        ("pygmo-de", 10, {"islands": 2, "ftol": 1e-2, "xtol": 1e-2, "migration_interval": 2}),
    ],
)
def test_a_run_with_restarts_uses_its_budget_and_resumes_bit_identically(
    tmp_path, algorithm, population, settings
):
    budget = 600

    def rows_without(restarts):
        problem = _problem(algorithm, population, {**settings, "restarts": restarts}, budget)
        run = OptimizationRun(problem, create_run_store(problem, tmp_path / f"{restarts}.zarr"))
        return run_to_end(run, _evaluate), run.evaluations

    reason, evaluations = rows_without(0)
    assert reason.endswith("converged") and evaluations < budget  # restarts are what helps

    reference = create_run_store(_problem(algorithm, population, settings, budget),
                                 tmp_path / "ref.zarr")  # fmt: skip
    reason = run_to_end(
        OptimizationRun(_problem(algorithm, population, settings, budget), reference), _evaluate
    )
    assert reason == f"evaluation budget of {budget} used"

    store = create_run_store(_problem(algorithm, population, settings, budget),
                             tmp_path / "run.zarr")  # fmt: skip
    run = OptimizationRun(_problem(algorithm, population, settings, budget), store)
    while run.evaluations < evaluations + 50:  # past the point where islands converged
        run.run_generation(_evaluate)
    run.algorithm.close()
    del run  # interrupted: a new process opens the store
    resumed = OptimizationRun(
        _problem(algorithm, population, settings, budget), type(store).open(store.path, "r+")
    )
    run_to_end(resumed, _evaluate)
    a, b = reference.evaluations(), resumed.store.evaluations()
    for name in ("parameters", "total", "generation"):
        assert np.array_equal(a[name], b[name]), name


# --- the cluster is larger than what the run evaluates at once --------------------------------


def test_a_cluster_larger_than_the_islands_is_named_with_the_setting():
    serial = create_algorithm("pygmo-de", 3, 10, 0, {"islands": 8})
    assert idle_workers_note(serial, 8) is None
    note = idle_workers_note(serial, 64)
    assert note.startswith("the cluster has 64 workers but DE (pygmo) evaluates at most 8")
    assert "'islands': 8" in note and "keeps at most 8 of them busy" in note
    batch = create_algorithm("cmaes", 3, 20, 0, {})
    assert idle_workers_note(batch, 20) is None
    assert "(its population)" in idle_workers_note(batch, 64)
    local = create_algorithm("scipy-lbfgsb", 3, 20, 0, {})
    assert local.points_per_ask == 4 and "(its batches)" in idle_workers_note(local, 5)
    for algorithm in (serial, local):
        algorithm.close()
