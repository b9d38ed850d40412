"""The generation loop's budget rule, counted by the framework, on a real run store.

The model is replaced by an analytic error function evaluated in this process (the loop takes
its evaluator as an argument); everything else — algorithms, store, checkpoints — is real.
"""

from __future__ import annotations

import numpy as np
import pytest

from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.storage.runs.create import create_run_store
from neuroptimus.usecases import problem_path


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

    from neuroptimus.optimization.algorithms import AlgorithmError

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


# --- stopping rules count evaluations ---------------------------------------------------------


def _problem_with(algorithm, population, generations, settings=None, **stopping):
    problem = _problem(algorithm, population, generations)
    spec = problem.spec
    spec = spec.model_copy(update={
        "stopping": spec.stopping.model_copy(update=stopping),
        "algorithm": spec.algorithm.model_copy(update={"settings": settings or {}}),
    })  # fmt: skip
    return build_problem(spec, [np.zeros(expected_length(spec))])


NEVER_CONVERGED = {"ftol": 0.0, "xtol": 0.0}  # DE would stop by itself on a plateau


class Plateau:
    """Totals 100, 99, 98, … in evaluation order down to ``floor``, then ``floor`` for ever:
    the last improvement is evaluation number 100 - floor (counting from 0)."""

    def __init__(self, floor: int) -> None:
        self.floor, self.count = floor, 0

    def __call__(self, values: np.ndarray) -> BatchResult:
        n = len(values)
        totals = np.maximum(100.0 - self.count - np.arange(n), self.floor)
        self.count += n
        errors = np.repeat(totals[:, None], 4, axis=1)
        return BatchResult(errors, totals, np.zeros(n, np.int8), [""] * n, np.zeros(n),
                           ["here"] * n)  # fmt: skip


@pytest.mark.parametrize(
    ("algorithm", "population", "settings", "generations", "last_improvement", "stops_after"),
    [
        # batch: the improvement in generation 5 (rows 50-59), then 3 generations without one
        ("random", 10, {}, 3, 50, 90),
        # serial, one island: one point per round, so exactly 3 × 5 evaluations after it
        ("pygmo-de", 5, {"islands": 1, **NEVER_CONVERGED}, 3, 9, 9 + 1 + 15),
        # serial, two islands of 6: rounds of 2 points, 2 × 6 evaluations after it
        ("pygmo-de", 6, {"islands": 2, **NEVER_CONVERGED}, 2, 15, 15 + 1 + 12),
    ],
)
def test_stagnation_counts_generations_of_population_evaluations(
    tmp_path, algorithm, population, settings, generations, last_improvement, stops_after
):
    problem = _problem_with(algorithm, population, 1000, settings,
                            stagnation_generations=generations)  # fmt: skip
    store = create_run_store(problem, tmp_path / "run.zarr")
    run = OptimizationRun(problem, store)
    reason = run_to_end(run, Plateau(100 - last_improvement))
    assert run.evaluations == stops_after  # not one evaluation before, nor a round after
    window = generations * population
    assert reason == f"no improvement in {generations} generations ({window} evaluations)"
    totals = store.evaluations()["total"]
    assert np.argmin(totals) == last_improvement and len(totals) == stops_after


def test_a_serial_generation_holds_a_population_and_is_committed_once(tmp_path, monkeypatch):
    problem = _problem_with("pygmo-de", 10, 6, {"islands": 4})
    store = create_run_store(problem, tmp_path / "run.zarr")
    commits = []
    original = type(store).commit

    def commit(self, checkpoint, journal=()):
        commits.append(checkpoint)
        original(self, checkpoint, journal)

    monkeypatch.setattr(type(store), "commit", commit)
    run = OptimizationRun(problem, store)
    run_to_end(run, _evaluate)
    generation = store.evaluations()["generation"]
    sizes = np.bincount(generation)
    # the 4 initial populations as one round, then rounds of 4 points up to >= 10 (3 rounds)
    assert sizes.tolist() == [40] + [12] * ((60 - 40) // 12) + [(60 - 40) % 12]
    assert len(commits) == len(sizes) == store.committed_generations


class FailingOnce:
    """An evaluator whose ``fail_at``-th call raises once, as a lost cluster would."""

    def __init__(self, evaluate, fail_at: int) -> None:
        self.evaluate, self.fail_at, self.calls = evaluate, fail_at, 0

    def __call__(self, values):
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError("connection to the scheduler lost")
        return self.evaluate(values)


@pytest.mark.parametrize(
    ("algorithm", "population", "settings", "fail_at"),
    [
        ("cmaes", 6, {}, 3),  # a batch algorithm: its asked batch is evaluated again
        ("pygmo-de", 6, {"islands": 2}, 4),  # mid-generation, after told rounds: replayed
        ("scipy-nelder-mead", 4, {"islands": 3}, 6),  # second round of generation 2
    ],
)
def test_a_generation_retried_after_a_failure_gives_the_uninterrupted_run(
    tmp_path, algorithm, population, settings, fail_at
):
    def rows(store_path, evaluate):
        problem = _problem_with(algorithm, population, 8, settings)
        store = create_run_store(problem, store_path)
        run = OptimizationRun(problem, store)
        while run.stop_reason is None:
            try:
                run.run_generation(evaluate)
            except OSError:
                continue  # what Prefect's retry does: run the generation again
        run.finish()
        return store.evaluations()

    expected = rows(tmp_path / "a.zarr", _evaluate)
    failing = FailingOnce(_evaluate, fail_at)
    retried = rows(tmp_path / "b.zarr", failing)
    assert failing.calls > fail_at
    for name in ("parameters", "total", "generation"):
        assert np.array_equal(expected[name], retried[name]), name


@pytest.mark.parametrize("algorithm", ["pygmo-de", "inspyred-sa", "bluepyopt-nsga2"])
def test_resume_from_the_store_is_bit_identical_and_checkpoints_stay_small(tmp_path, algorithm):
    population = 6

    def problem():
        return _problem_with(algorithm, population, 12, {"islands": 2} if "ga" not in algorithm
                             else {})  # fmt: skip

    reference = create_run_store(problem(), tmp_path / "ref.zarr")
    run_to_end(OptimizationRun(problem(), reference), _evaluate)

    store = create_run_store(problem(), tmp_path / "run.zarr")
    run = OptimizationRun(problem(), store)
    checkpoint_sizes, journal_sizes = [], []
    for _ in range(5):
        run.run_generation(_evaluate)
        checkpoint_sizes.append((store.path / "checkpoint.pkl").stat().st_size)
        journal_sizes.append((store.path / "journal.bin").stat().st_size)
    run.algorithm.close()
    del run  # interrupted: a new process opens the store
    resumed = OptimizationRun(problem(), type(store).open(store.path, mode="r+"))
    assert resumed.resumed_at == 5
    run_to_end(resumed, _evaluate)

    a, b = reference.evaluations(), resumed.store.evaluations()
    for name in ("parameters", "total", "generation"):
        assert np.array_equal(a[name], b[name]), name
    # The checkpoint does not grow with the run; the journal grows by the new batches only.
    assert max(checkpoint_sizes) - min(checkpoint_sizes) < 64 and max(checkpoint_sizes) < 2000
    growth = np.diff(journal_sizes)
    assert growth.min() > 0 and growth.max() < 2 * growth.min() + 1000
