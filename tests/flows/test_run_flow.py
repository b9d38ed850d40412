"""The real flows (Prefect test server) on a real LocalCluster with real NEURON runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from neuroptimus.flows.run import resume_flow, run_flow
from neuroptimus.optimization.execution.cluster import ClusterConfig
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path

pytestmark = pytest.mark.slow


def test_uc1_run_end_to_end(tmp_path, prefect_harness):
    spec = with_overrides(load_problem(problem_path("hh")), population=8, generations=4, seed=3)
    store_path = tmp_path / "hh.zarr"
    result = run_flow(spec, str(store_path), ClusterConfig(workers=2))

    store = RunStore.open(store_path)
    rows = store.evaluations()
    n = store.committed_evaluations
    assert n == len(rows["total"]) == result["evaluations"] <= 32
    assert n % 8 == 0 and set(rows["generation"]) == set(range(n // 8))
    assert np.all(rows["status"] == 0)
    assert np.allclose(rows["total"], rows["errors"] @ np.array(store.attrs["weights"]))
    lower = np.array([p["lower"] for p in store.attrs["spec"]["parameters"]])
    upper = np.array([p["upper"] for p in store.attrs["spec"]["parameters"]])
    assert np.all((rows["parameters"] >= lower) & (rows["parameters"] <= upper))
    assert len(set(rows["worker"])) == 2  # both worker processes took part
    cumulative = store.generations()["cumulative_best"]
    assert np.all(np.diff(cumulative) <= 0)
    assert result["total"] == cumulative[-1] == rows["total"].min()

    attrs = store.attrs
    assert attrs["seed"] == 3 and attrs["finished"] and attrs["versions"]["neuron"]
    assert attrs["git_revision"]
    best = store.arrays("best")
    target = store.arrays("target")
    assert best["trace"].shape == target["trace"].shape == (40001, 1)
    assert np.array_equal(best["time"], target["time"])

    metadata = json.loads((store_path / "metadata.json").read_text())
    assert [p["name"] for p in metadata["parameters"]] == ["gnabar_hh", "gkbar_hh", "gl_hh"]
    assert metadata["parameters"][0]["optimum"] == result["parameters"]["gnabar_hh"]
    assert {e["name"] for e in metadata["error_functions"]} == {
        "MSE (excl. spikes)", "Spike count", "AP amplitude", "AP width"}  # fmt: skip
    assert metadata["final_error"] == pytest.approx(
        sum(e["weighted_value"] for e in metadata["error_functions"]), rel=1e-12
    )
    assert len(metadata["generation_statistics"]) == store.committed_generations
    assert metadata["algorithm"]["package"] == "cmaes"
    report = (store_path / "report.html").read_text()
    for title in ("Best individual over the target", "Convergence", "Error components", "gl_hh"):
        assert title in report
    # self-contained: every script is inlined, so it opens from disk without a network
    assert not re.search(r"<script[^>]*\ssrc=", report)


def test_uc2_random_search_flow(tmp_path, prefect_harness):
    spec = with_overrides(
        load_problem(problem_path("vclamp")), algorithm="random", population=6, generations=2
    )
    store_path = tmp_path / "vclamp.zarr"
    result = run_flow(spec, str(store_path), ClusterConfig(workers=2), report=False)
    store = RunStore.open(store_path)
    assert store.committed_evaluations == 12 == result["evaluations"]
    assert store.arrays("target")["trace"].shape == (20000, 1)
    assert "budget" in result["stop_reason"]
    assert store.attrs["cluster"] == ClusterConfig(workers=2).model_dump(
        mode="json", exclude={"address"}
    )


def test_resume_without_a_cluster_goes_back_to_the_runs_own(tmp_path, prefect_harness):
    """A run remembers its cluster (not a scheduler address, which dies with the cluster); a
    resume given none uses it again, a resume given one uses that."""
    spec = with_overrides(load_problem(problem_path("hh")), population=4, generations=1, seed=2)
    store_path = tmp_path / "hh.zarr"
    run_flow(spec, str(store_path), ClusterConfig(workers=1, chunks_per_worker=2), report=False)
    stored = RunStore.open(store_path).attrs["cluster"]
    assert "address" not in stored
    assert ClusterConfig.model_validate(stored) == ClusterConfig(workers=1, chunks_per_worker=2)

    # finished: re-analyzed on the cluster it remembers
    resume_flow(str(store_path), report=False)
    assert RunStore.open(store_path).attrs["cluster"] == stored
    resume_flow(str(store_path), ClusterConfig(workers=2), report=False)
    assert RunStore.open(store_path).attrs["cluster"]["workers"] == 2
