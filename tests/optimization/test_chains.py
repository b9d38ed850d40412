"""Chains: algorithms in turn in one run and one store, each stage starting from the best so
far, resumable in any stage; and the starting point every adapter family takes.

Analytic functions stand in for models; the algorithms, the runner and the run store are real.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_runner import _evaluate
from test_streamed_resume import Killed, Streaming

from neuroptimus.optimization.algorithms import create_algorithm
from neuroptimus.optimization.algorithms.start import StartingPoint
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.optimization.problem.problem_file import (
    load_problem,
    parse_problem,
    with_overrides,
)
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.storage.runs.create import create_run_store
from neuroptimus.storage.runs.metadata import run_metadata
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path


def _spec(algorithm: str, budget: int, stages=None):
    spec = with_overrides(
        load_problem(problem_path("hh")), algorithm=algorithm, population=6, seed=4,
        max_evaluations=budget,
    )  # fmt: skip
    data = spec.model_dump()
    data["stopping"].update(error_target=None, stagnation_generations=None)
    if stages is not None:
        data["algorithm"] = {"population": 6, "chain": stages}
        data["stopping"]["max_evaluations"] = None
    return parse_problem(data, "test", spec.base_dir)


def _problem(algorithm: str, budget: int, stages=None):
    spec = _spec(algorithm, budget, stages)
    return build_problem(spec, [np.zeros(expected_length(spec))])


def test_the_shortcut_splits_the_budget_and_a_problem_keeps_its_own_stages():
    spec = _spec("cmaes+scipy-nelder-mead", 100)
    assert spec.algorithm.name == "chain" and spec.budget == 100
    assert [(s.name, s.evaluations) for s in spec.algorithm.chain] == [
        ("cmaes", 80), ("scipy-nelder-mead", 20)
    ]  # fmt: skip
    three = _spec("cmaes+pygmo-de+scipy-nelder-mead", 101).algorithm.chain
    assert [s.evaluations for s in three] == [41, 40, 20]
    own = [{"name": "cmaes", "evaluations": 30}, {"name": "scipy-nelder-mead", "evaluations": 7}]
    given = _spec("cmaes", 10, own)
    assert given.budget == 37
    kept = with_overrides(given, algorithm="cmaes+scipy-nelder-mead")
    assert [s.evaluations for s in kept.algorithm.chain] == [30, 7]
    plain = with_overrides(given, algorithm="cmaes")
    assert plain.algorithm.chain is None and "chain" not in plain.model_dump()["algorithm"]


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [
        ({"chain": [{"name": "nope", "evaluations": 5}]}, "unknown algorithm 'nope'"),
        ({"chain": [{"name": "cmaes", "evaluations": 5, "settings": {"x": 1}}]}, "no setting x"),
        ({"chain": [{"name": "cmaes", "evaluations": 5}], "settings": {"sigma": 1}},
         "go into its stages"),
        ({"name": "chain"}, "a chain is `name: chain` with a `chain:` list"),
    ],
)  # fmt: skip
def test_a_wrong_chain_is_one_line(algorithm, message):
    data = load_problem(problem_path("hh")).model_dump()
    data["algorithm"] = algorithm
    with pytest.raises(SpecError, match=message):
        parse_problem(data, "p.yaml")


def test_a_chain_runs_its_stages_in_one_store(tmp_path):
    problem = _problem("cmaes+scipy-nelder-mead", 60)
    store = create_run_store(problem, tmp_path / "run.zarr")
    run = OptimizationRun(problem, store)
    assert run_to_end(run, _evaluate) == "evaluation budget of 60 used"
    stages = store.attrs["stages"]
    assert [(s["algorithm"], s["first_evaluation"]) for s in stages] == [
        ("cmaes", 0), ("scipy-nelder-mead", 48)
    ]  # fmt: skip
    assert stages[1]["started_from"] == "stage 1 (CMA-ES (cmaes))"
    done = store.generations()["evaluations"]
    assert 48 in done  # a generation ends where the first stage does
    rows = store.evaluations()
    first_stage = rows["total"][:48]
    # Nelder-Mead's island 0 starts at the best point of the first stage
    best = rows["parameters"][int(np.argmin(first_stage))]
    assert np.allclose(rows["parameters"][48], best)
    assert rows["total"].min() <= first_stage.min()
    metadata = run_metadata(store)
    assert metadata["algorithm"]["key"] == "chain" and metadata["algorithm"]["settings"] == {}
    assert metadata["algorithm"]["stages"] == stages
    assert store.attrs["algorithm"]["label"] == "CMA-ES (cmaes) → Nelder-Mead (SciPy)"


def test_the_report_marks_the_stages(tmp_path):
    from neuroptimus.analysis.figures import convergence_figure
    from neuroptimus.analysis.stages import stage_starts, start_summary

    problem = _problem("cmaes+scipy-nelder-mead", 60)
    store = create_run_store(problem, tmp_path / "run.zarr")
    run_to_end(OptimizationRun(problem, store), _evaluate)
    assert stage_starts(store.attrs, store.generations()["evaluations"]) == [
        (8, "stage 2: Nelder-Mead (SciPy)")
    ]  # generations of 6 evaluations: the eighth begins the second stage
    figure = convergence_figure(store)
    lines = [element for element in figure if type(element).__name__ == "VLine"]
    assert [line.data for line in lines] == [7.5]
    summary = start_summary(store.attrs)
    assert "stage 2: Nelder-Mead (SciPy) from evaluation 49 (12 planned)" in summary


CHAINS = {  # (shortcut, budget, stages) of _problem
    "two": ("cmaes+scipy-nelder-mead", 60, None),
    "three": ("cmaes", 60, [
        {"name": "scipy-nelder-mead", "evaluations": 20, "settings": {"islands": 3}},
        {"name": "inspyred-pso", "evaluations": 18},
        {"name": "cmaes", "evaluations": 18},
    ]),
}  # fmt: skip


@pytest.mark.parametrize(
    ("chain", "kill_at"),
    [("two", 15), ("two", 50), ("three", 10), ("three", 25), ("three", 45)],
)
def test_a_chain_killed_in_any_stage_resumes_bit_identically(tmp_path, chain, kill_at):
    def problem():
        return _problem(*CHAINS[chain])

    reference = create_run_store(problem(), tmp_path / "ref.zarr")
    run_to_end(OptimizationRun(problem(), reference), Streaming())

    path = tmp_path / "run.zarr"
    store = create_run_store(problem(), path)
    run = OptimizationRun(problem(), store)
    with pytest.raises(Killed):
        run_to_end(run, Streaming(kill_at, flush=store._inflight.flush))
    store._inflight.close()
    run.algorithm.close()

    resumed = OptimizationRun(problem(), RunStore.open(path, mode="r+"))
    run_to_end(resumed, Streaming())
    ours, theirs = resumed.store.evaluations(), reference.evaluations()
    for name in ("parameters", "errors", "total", "generation"):
        assert ours[name].tobytes() == theirs[name].tobytes(), name
    assert resumed.store.attrs["stages"] == reference.attrs["stages"]
    assert len(reference.attrs["stages"]) == {"two": 2, "three": 3}[chain]  # every stage ran


START = StartingPoint(
    np.array([[0.2, 0.3, 0.4], [0.25, 0.3, 0.4], [0.2, 0.35, 0.45], [0.6, 0.1, 0.9]]),
    np.array([1.0, 2.0, 3.0, 4.0]),
)


@pytest.mark.parametrize(
    ("name", "population", "settings", "rows"),
    [
        ("pygmo-pso-gen", 6, {}, [0, 1, 2, 3]),  # a batch population: the points at its head
        ("pygmo-de", 5, {"islands": 2}, [0, 2, None, None, None, 1, 3]),  # island i: i, i + 2
        ("inspyred-ga", 6, {}, [0, 1, 2, 3]),
        ("bluepyopt-nsga2", 6, {}, [0, 1, 2, 3]),
        ("scipy-nelder-mead", 6, {"islands": 3}, [0, 1, 2]),  # island i from the i-th best
        ("scipy-lbfgsb", 6, {}, [0]),
        ("pygmo-praxis", 6, {"islands": 2}, [0, 1]),
    ],
)
def test_every_family_begins_at_the_given_points(name, population, settings, rows):
    algorithm = create_algorithm(name, 3, population, 7, settings)
    try:
        assert algorithm.start_from(START) is None
        asked = algorithm.ask()
        for row, given in enumerate(rows):
            if given is not None:
                assert np.allclose(asked[row], START.points[given]), row
    finally:
        algorithm.close()


def test_cmaes_centres_on_the_best_point_with_the_spread_of_the_best():
    algorithm = create_algorithm("cmaes", 3, 4, 7, {})
    assert algorithm.start_from(START) is None
    assert np.array_equal(algorithm._cma.mean, START.points[0])
    assert algorithm._cma._sigma == pytest.approx(START.spread(2))
    single = create_algorithm("cmaes", 3, 4, 7, {"sigma": 0.2})
    single.start_from(StartingPoint(START.points[:1], [1.0]))
    assert single._cma._sigma == 0.2  # a single point: the setting's step size


def test_an_algorithm_that_cannot_take_the_points_says_so():
    note = create_algorithm("random", 3, 4, 7, {}).start_from(START)
    assert note == "Random search cannot start from given points; it starts as its settings say"
