"""The fewer-evaluations benchmark (real Prefect, real LocalCluster, real NEURON): the reference's
median best sets the targets, candidates (a chain among them) stop once they reach it, and the
table counts from the stores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neuroptimus.flows.benchmarks.fewer_evaluations import Projection, fewer_evaluations
from neuroptimus.optimization.execution.cluster import ClusterConfig
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.scoring.scores import evaluations_to_reach
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path

pytestmark = pytest.mark.slow


def test_candidates_stop_at_the_references_error_and_the_table_counts_their_evaluations(
    tmp_path, prefect_harness
):
    folder = tmp_path / "fewer"
    candidates = ["cma-lq+scipy-nelder-mead"]  # a chain, and a surrogate in it
    paths = fewer_evaluations(
        load_problem(problem_path("vclamp")), "cmaes", candidates, seeds=2, population=4,
        evaluations=12, early=4, folder=folder, cluster=ClusterConfig(workers=2),
        projection=Projection(cpu_seconds=36.0, evaluations=1000), candidate_evaluations=8,
    )  # fmt: skip

    def totals(method, seed):
        return RunStore.open(folder / f"{method}-seed{seed}.zarr").evaluations()["total"]

    reference = [totals("cmaes", seed) for seed in (1, 2)]
    assert all(len(t) == 12 for t in reference)  # the whole budget, no target
    target = float(np.median([t.min() for t in reference]))
    early_target = float(np.median([t[:4].min() for t in reference]))
    table = pd.read_csv(paths["table"]).set_index("method")
    assert list(table.index) == ["cmaes", *candidates]
    assert table["budget"].tolist() == [12, 8]
    assert table.loc["cmaes", "target_12"] == pytest.approx(target, rel=1e-5)
    assert table.loc["cmaes", "target_4"] == pytest.approx(early_target, rel=1e-5)

    for method in candidates:
        row = table.loc[method]
        needed = []
        for seed in (1, 2):
            run = totals(method, seed)
            reached = evaluations_to_reach(run, row["target_12"])
            needed.append(reached)
            if reached is None:
                assert len(run) == 8  # never reached: the candidates' whole budget
            else:
                assert len(run) - reached < 4  # stopped with the generation that reached it
        assert row["evaluations_12"] == ";".join("-" if n is None else str(n) for n in needed)
        assert row["reached_12"] == sum(n is not None for n in needed)
        if None not in needed:
            share = np.median(needed) / 12
            assert row["share_12"] == pytest.approx(share, rel=1e-5)
            assert row["projected_cpu_hours_12"] == pytest.approx(share * 10, rel=1e-5)
        assert 0 < row["algorithm_share_median"] < 1
    chain = RunStore.open(folder / "cma-lq+scipy-nelder-mead-seed1.zarr")
    assert "→" in chain.attrs["algorithm"]["label"]
    runs = pd.read_csv(paths["runs"])
    assert len(runs) == 4 and "evaluations_to_" + f"{target:g}" in runs.columns
    assert (folder / "fewer-evaluations.png").read_bytes()[:4] == b"\x89PNG"
