"""The benchmark flow (real Prefect, real LocalCluster, real NEURON): algorithm × seed runs,
scores from the stores, the comparison files, and reuse of finished runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.compare import benchmark_flow, check_algorithms
from optimization.cluster import ClusterConfig
from optimization.scores import convergence_curve, convergence_score
from optimization.spec import SpecError, load_problem
from storage.run_store import RunStore
from usecases import problem_path

pytestmark = pytest.mark.slow


def test_benchmark_runs_scores_and_reuses_finished_runs(tmp_path, prefect_harness):
    problem = load_problem(problem_path("vclamp"))
    folder = tmp_path / "bench"
    arguments = dict(
        problem=problem, algorithms=["cmaes", "inspyred-pso"], seeds=2, population=6,
        generations=3, folder=str(folder), cluster=ClusterConfig(workers=2),
    )  # fmt: skip
    paths = benchmark_flow(**arguments)

    runs = pd.read_csv(paths["runs"])
    assert sorted(zip(runs["algorithm"], runs["seed"], strict=True)) == [
        ("CMA-ES (cmaes)", 1), ("CMA-ES (cmaes)", 2), ("PSO (inspyred)", 1), ("PSO (inspyred)", 2)
    ]  # fmt: skip
    for row in runs.itertuples():
        store = RunStore.open(row.store)
        totals = store.evaluations()["total"]
        assert len(totals) == row.evaluations == 18  # the same budget for every algorithm
        assert store.attrs["seed"] == row.seed
        assert row.final_score == totals.min()
        curve = convergence_curve(totals, 6, 18)
        assert curve.tolist() == store.generations()["cumulative_best"].tolist()
        assert row.convergence_score == pytest.approx(convergence_score(curve), rel=1e-12)
    first, second = (RunStore.open(s).evaluations()["parameters"] for s in runs["store"][:2])
    assert not np.array_equal(first, second)  # different seeds, different runs

    summary = pd.read_csv(paths["summary"])
    pso = runs[runs["algorithm"] == "PSO (inspyred)"]
    row = summary.set_index("algorithm").loc["PSO (inspyred)"]
    assert row["final_median"] == pytest.approx(pso["final_score"].median())
    assert row["convergence_max"] == pytest.approx(pso["convergence_score"].max())
    report = (folder / "comparison.html").read_text()
    assert "Final score" in report and "Convergence" in report

    # Started again on the same folder, finished runs are reused as they are.
    stamps = {s: (folder / s / "checkpoint.pkl").stat().st_mtime_ns for s in runs["store"]}
    benchmark_flow(**arguments)
    assert stamps == {s: (folder / s / "checkpoint.pkl").stat().st_mtime_ns for s in stamps}


def test_unknown_algorithms_are_named_before_anything_runs():
    check_algorithms(["cmaes", "random"])
    with pytest.raises(SpecError, match=r"unknown algorithm\(s\) magic, tabu; known: .*cmaes"):
        check_algorithms(["cmaes", "magic", "tabu"])
    with pytest.raises(SpecError, match=r"\(none given\)"):
        check_algorithms([])
