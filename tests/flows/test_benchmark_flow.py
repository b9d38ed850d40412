"""The benchmark flow (real Prefect, real LocalCluster, real NEURON): algorithm × seed runs,
scores from the stores, the comparison files, and reuse of finished runs — a finished folder is
re-scored from its stores without starting a cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import neuroptimus.flows.compare
from neuroptimus.flows.compare import benchmark_flow, benchmark_spec, check_algorithms, pending_runs
from neuroptimus.optimization.execution.cluster import ClusterConfig
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.scoring.scores import (
    convergence_curve,
    convergence_score,
    evaluations_to_reach,
)
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path

pytestmark = pytest.mark.slow


def test_benchmark_runs_scores_and_reuses_finished_runs(tmp_path, prefect_harness, monkeypatch):
    problem = load_problem(problem_path("vclamp"))
    folder = tmp_path / "bench"
    arguments = dict(
        problem=problem, algorithms=["cmaes", "inspyred-pso"], seeds=2, population=6,
        generations=3, folder=str(folder), cluster=ClusterConfig(workers=2),
    )  # fmt: skip
    paths = benchmark_flow(**arguments)

    runs = pd.read_csv(paths["runs"])
    assert list(runs.columns) == [
        "algorithm", "seed", "budget", "simulations", "failed", "stop_reason", "final_score",
        "convergence_score", "zero_error_generations", "evaluations_to_best",
        "evaluations_to_1e-10", "seconds", "store",
    ]  # fmt: skip
    assert sorted(zip(runs["algorithm"], runs["seed"], strict=True)) == [
        ("CMA-ES (cmaes)", 1), ("CMA-ES (cmaes)", 2), ("PSO (inspyred)", 1), ("PSO (inspyred)", 2)
    ]  # fmt: skip
    for row in runs.to_dict("records"):
        assert not Path(row["store"]).is_absolute()  # no machine path in a committed table
        store = RunStore.open(folder / row["store"])
        rows = store.evaluations()
        totals = rows["total"]
        assert len(totals) == row["simulations"] == row["budget"] == 18  # the same budget
        assert row["failed"] == np.count_nonzero(rows["status"])
        assert row["stop_reason"] == store.attrs["finished"] == "evaluation budget of 18 used"
        assert store.attrs["seed"] == row["seed"]
        assert row["final_score"] == totals.min()
        curve = convergence_curve(totals, 6, 18)
        assert curve.tolist() == store.generations()["cumulative_best"].tolist()
        assert row["convergence_score"] == pytest.approx(convergence_score(curve), rel=1e-12)
        assert row["evaluations_to_best"] == int(np.argmin(totals)) + 1
        assert pd.isna(row["evaluations_to_1e-10"])  # 18 evaluations are far from 1e-10
    first, second = (
        RunStore.open(folder / store).evaluations()["parameters"] for store in runs["store"][:2]
    )
    assert not np.array_equal(first, second)  # different seeds, different runs

    summary = pd.read_csv(paths["summary"])
    pso = runs[runs["algorithm"] == "PSO (inspyred)"]
    row = summary.set_index("algorithm").loc["PSO (inspyred)"]
    assert row["final_median"] == pytest.approx(pso["final_score"].median())
    assert row["convergence_max"] == pytest.approx(pso["convergence_score"].max())
    assert (row["runs"], row["simulations"], row["reached_1e-10"]) == (2, 36, 0)
    report = (folder / "comparison.html").read_text()
    assert "Final score" in report and "Convergence" in report

    # Started again on the finished folder, with another threshold: nothing is simulated and
    # no cluster starts; the tables are rewritten from the stores.
    def no_cluster(*args, **kwargs):
        raise AssertionError("a finished benchmark started a cluster")

    monkeypatch.setattr(neuroptimus.flows.compare, "make_cluster", no_cluster)
    stamps = {s: (folder / s / "checkpoint.pkl").stat().st_mtime_ns for s in runs["store"]}
    for name in ("runs.csv", "summary.csv", "comparison.html"):
        (folder / name).unlink()
    level = float(runs["final_score"].median())  # reached by about half of the runs
    again = benchmark_flow(**arguments, thresholds=[1e-10, level])
    assert stamps == {s: (folder / s / "checkpoint.pkl").stat().st_mtime_ns for s in stamps}
    rescored = pd.read_csv(again["runs"])
    column = f"evaluations_to_{level:g}"
    assert rescored.drop(columns=[column]).equals(runs)
    for row in rescored.to_dict("records"):
        totals = RunStore.open(folder / row["store"]).evaluations()["total"]
        expected = evaluations_to_reach(totals, level)
        assert (None if pd.isna(row[column]) else row[column]) == expected
    summary = pd.read_csv(again["summary"]).set_index("algorithm")
    for algorithm, group in rescored.groupby("algorithm"):
        reached = group[column].dropna()
        assert summary.loc[algorithm, f"reached_{level:g}"] == len(reached)
        if len(reached):
            assert summary.loc[algorithm, f"{column}_min"] == reached.min()
            assert summary.loc[algorithm, f"{column}_max"] == reached.max()
    assert (folder / "comparison.html").is_file()
    sessions = pd.read_csv(again["sessions"])
    assert sessions[["runs", "runs_simulated", "simulations", "workers"]].values.tolist() == [
        [4, 4, 72, 2], [4, 0, 0, 0]
    ]  # fmt: skip
    assert sessions["wall_seconds"].iloc[0] > 0


def test_a_failed_run_lets_the_others_end_before_the_cluster_closes(tmp_path, prefect_harness):
    """Seed 2's store is broken (its evaluations are gone): its run fails at once, while seed
    1 runs on the shared cluster to its end; then the benchmark fails, saying what to do."""
    import shutil

    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.optimization.problem.problem_file import with_overrides
    from neuroptimus.storage.runs.create import create_run_store

    problem = load_problem(problem_path("hh"))
    folder = tmp_path / "bench"
    broken = folder / "random-seed2.zarr"
    spec = with_overrides(benchmark_spec(problem, 4, 2), algorithm="random", seed=2)
    create_run_store(build_problem(spec, [np.zeros(40001)]), broken)
    shutil.rmtree(broken / "evaluations")
    with pytest.raises(RuntimeError, match=rf"1 of 2 runs failed .* again on {folder} to reuse"):
        benchmark_flow(
            problem=problem, algorithms=["random"], seeds=2, population=4, generations=2,
            folder=str(folder), cluster=ClusterConfig(workers=1),
        )  # fmt: skip
    finished = RunStore.open(folder / "random-seed1.zarr")
    assert finished.attrs["finished"] == "evaluation budget of 8 used"
    assert len(finished.evaluations()["total"]) == 8


def test_a_folder_of_another_budget_is_refused_naming_the_store(tmp_path):
    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.storage.runs.create import create_run_store

    spec = benchmark_spec(load_problem(problem_path("hh")), 4, 2)
    path = tmp_path / "cmaes-seed1.zarr"
    create_run_store(build_problem(spec, [np.zeros(40001)]), path)
    assert pending_runs(spec, [path, tmp_path / "random-seed1.zarr"]) == [
        path, tmp_path / "random-seed1.zarr"
    ]  # fmt: skip
    with pytest.raises(SpecError, match=rf"{path} was run with a budget of 8 evaluations, "
                                        r"this benchmark asks 12"):  # fmt: skip
        pending_runs(benchmark_spec(spec, 4, 3), [path])


def test_unknown_algorithms_are_named_before_anything_runs():
    check_algorithms(["cmaes", "random"])
    with pytest.raises(SpecError, match=r"unknown algorithm\(s\) magic, tabu; known: .*cmaes"):
        check_algorithms(["cmaes", "magic", "tabu"])
    with pytest.raises(SpecError, match=r"\(none given\)"):
        check_algorithms([])
