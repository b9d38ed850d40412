"""Warm starts: a run begins at the best individuals of earlier runs of the same use case (a
store, a folder of stores, a catalog entry), read as data only, recorded in the new store, and
resumed from the same points.

Analytic functions stand in for models; the algorithms, the runner and the stores are real.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from test_runner import _evaluate
from test_streamed_resume import Killed, Streaming

from neuroptimus.analysis.stages import start_summary
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.optimization.problem.problem_file import (
    load_problem,
    parse_problem,
    with_overrides,
)
from neuroptimus.storage.runs.metadata import run_metadata
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.storage.warm_start import WarmStartError, check_warm_start, new_run_store
from neuroptimus.usecases import problem_path


def _problem(algorithm="cmaes", budget=24, seed=4, warm_start=None, upper=None):
    spec = with_overrides(
        load_problem(problem_path("hh")), algorithm=algorithm, population=6, seed=seed,
        max_evaluations=budget, warm_start=warm_start,
    )  # fmt: skip
    data = spec.model_dump()
    data["stopping"].update(error_target=None, stagnation_generations=None)
    if upper is not None:  # another use case: other bounds
        data["parameters"][0]["upper"] = upper
    spec = parse_problem(data, "test", spec.base_dir)
    return build_problem(spec, [np.zeros(expected_length(spec))])


def _source(path, **options):
    problem = _problem(**options)
    store = new_run_store(problem, path)
    run_to_end(OptimizationRun(problem, store), _evaluate)
    return store


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return _source(tmp_path_factory.mktemp("source") / "source.zarr", seed=9)


def _best(store, count):
    rows = store.evaluations()
    order = np.argsort(rows["total"], kind="stable")[:count]
    return rows["parameters"][order], rows["total"][order]


def test_a_run_starts_at_the_best_of_its_source_and_records_it(tmp_path, source):
    problem = _problem(warm_start=str(source.path))
    store = new_run_store(problem, tmp_path / "run.zarr")
    start = store.arrays("start")
    points, totals = _best(source, 8)  # population 6, or one per island of 8: 8
    assert np.array_equal(start["parameters"], points) and np.array_equal(start["total"], totals)
    warm = store.attrs["warm_start"]
    assert warm["source"] == str(source.path) and warm["points"] == 8
    assert warm["stores"] == [
        {"store": str(source.path), "run_id": source.attrs["run_id"], "evaluations": 24}
    ]
    run = OptimizationRun(problem, store)
    assert run.start_note is None
    assert np.allclose(run.algorithm._cma.mean, problem.space.to_unit(points[0]))
    run_to_end(run, _evaluate)
    cold = _source(tmp_path / "cold.zarr")  # the same run without the warm start
    first = np.median(store.evaluations()["total"][:6])
    assert first < np.median(cold.evaluations()["total"][:6])
    assert run_metadata(store)["warm_start"] == warm
    assert f"warm start from {source.path}: its 8 best individuals" in start_summary(store.attrs)


def test_a_folder_of_stores_gives_the_best_of_all_and_skips_other_use_cases(tmp_path, source):
    folder = tmp_path / "runs"
    folder.mkdir()
    second = _source(folder / "b.zarr", seed=10)
    _source(folder / "c.zarr", seed=11, upper=0.5)  # another use case
    (folder / "notes.txt").write_text("not a store")
    problem = _problem(warm_start=str(folder))
    store = new_run_store(problem, tmp_path / "run.zarr")
    assert store.attrs["warm_start"]["skipped_stores"] == 1
    assert np.array_equal(store.arrays("start")["total"], _best(second, 8)[1])


def test_a_source_of_another_use_case_is_one_line(tmp_path, source):
    problem = _problem(warm_start=str(source.path), upper=0.5)
    with pytest.raises(WarmStartError) as early:  # the command line's check, before the cluster
        check_warm_start(problem.spec)
    with pytest.raises(WarmStartError) as error:
        new_run_store(problem, tmp_path / "run.zarr")
    message = str(error.value)
    assert str(early.value) == message
    assert message.startswith(f"warm start: {source.path} is a run of another use case")
    assert message.endswith("a warm start takes runs of the same problem") and "\n" not in message
    assert not (tmp_path / "run.zarr").exists()  # failed before the store was built


def test_nothing_pickled_in_a_source_is_loaded(tmp_path, source):
    """A source's checkpoint and journal are someone's pickles: never read."""
    copy = tmp_path / "copy.zarr"
    _source(copy, seed=9)
    marker = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("checkpoint.pkl", "journal.bin"):
        (copy / name).write_bytes(pickle.dumps(Trap()))
    new_run_store(_problem(warm_start=str(copy)), tmp_path / "run.zarr")
    assert not marker.exists()


def test_a_warm_start_the_algorithm_cannot_take_is_said(tmp_path, source):
    problem = _problem("random", warm_start=str(source.path))
    run = OptimizationRun(problem, new_run_store(problem, tmp_path / "run.zarr"))
    assert run.start_note.startswith("Random search cannot start from given points")


@pytest.mark.parametrize("kill_at", [3, 14])  # before the first checkpoint, and after two
def test_a_warm_started_chain_resumes_from_the_same_points(tmp_path, source, kill_at):
    def problem():
        return _problem("cmaes+scipy-nelder-mead", 30, warm_start=str(source.path))

    reference = _killed_then_resumed(
        problem, tmp_path, kill_at, ("parameters", "total", "generation")
    )
    assert reference.attrs["stages"][0]["started_from"] == "warm start"


def _killed_then_resumed(problem, tmp_path, kill_at, names):
    """A run of ``problem()`` killed after ``kill_at`` evaluations and resumed stores what an
    uninterrupted one does (arrays ``names``); returns the uninterrupted run's store."""
    reference = new_run_store(problem(), tmp_path / "ref.zarr")
    run_to_end(OptimizationRun(problem(), reference), Streaming())
    store = new_run_store(problem(), tmp_path / "run.zarr")
    run = OptimizationRun(problem(), store)
    with pytest.raises(Killed):
        run_to_end(run, Streaming(kill_at, flush=store._inflight.flush))
    store._inflight.close()
    run.algorithm.close()
    resumed = OptimizationRun(problem(), RunStore.open(store.path, mode="r+"))
    run_to_end(resumed, Streaming())
    ours, theirs = resumed.store.evaluations(), reference.evaluations()
    for name in names:
        assert ours[name].tobytes() == theirs[name].tobytes(), name
    return reference


@pytest.mark.parametrize("algorithm", ["optuna-tpe", "cma-lq"])
def test_a_surrogate_model_begins_with_every_stored_evaluation(tmp_path, source, algorithm):
    """Model-based methods take all of the source's evaluations (up to their model's share),
    not a population's worth: TPE as finished trials, lq-CMA-ES in its model."""
    problem = _problem(algorithm, warm_start=str(source.path))
    store = new_run_store(problem, tmp_path / "run.zarr")
    assert store.attrs["warm_start"]["points"] == 24  # all of the source's evaluations
    run = OptimizationRun(problem, store)
    assert run.start_note is None
    points = problem.space.to_unit(_best(source, 24)[0])
    if algorithm == "optuna-tpe":
        trials = run.algorithm._study.trials
        assert len(trials) == 24
        assert min(t.value for t in trials) == _best(source, 1)[1][0]
    else:
        assert run.algorithm._model.size > 0
        assert np.allclose(run.algorithm._es.mean, points[0])
        assert np.allclose(run.algorithm._model.X[0], points[0])  # the best, added last (on top)
    run_to_end(run, _evaluate)
    cold = _source(tmp_path / "cold.zarr", algorithm=algorithm)
    first = np.median(store.evaluations()["total"][:6])
    assert first < np.median(cold.evaluations()["total"][:6])


def test_a_warm_started_tpe_resumes_with_the_same_study(tmp_path, source, kill_at=14):
    """Killed after two checkpoints: the study is rebuilt from the journal, the stored
    evaluations it began with first."""

    def problem():
        return _problem("optuna-tpe", 30, warm_start=str(source.path))

    _killed_then_resumed(problem, tmp_path, kill_at, ("parameters", "total"))
