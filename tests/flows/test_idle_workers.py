"""A cluster with more workers than the run evaluates at once is named in the run's log, once
(real flow, LocalCluster, NEURON); when no note is due, ``idle_workers_note`` is tested on its
own (tests/optimization/test_restarts.py)."""

from __future__ import annotations

import logging

from neuroptimus.flows.run import run_flow
from neuroptimus.optimization.execution.cluster import ClusterConfig
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.usecases import problem_path


def _spec(islands: int):
    spec = with_overrides(
        load_problem(problem_path("hh")), algorithm="scipy-nelder-mead", population=2,
        generations=3, seed=5,
    )  # fmt: skip
    settings = {"islands": islands}
    return spec.model_copy(
        update={"algorithm": spec.algorithm.model_copy(update={"settings": settings})}
    )


def _notes(caplog) -> list[str]:
    # the records of the test's call as its report shows them (under load, caplog.records once
    # missed the flow's line that the report's "Captured log call" had)
    records = caplog.get_records("call")
    return [r.getMessage() for r in records if "workers but" in r.getMessage()]


def test_idle_workers_are_named_once(tmp_path, prefect_harness, caplog):
    with caplog.at_level(logging.INFO):
        result = run_flow(
            _spec(1), str(tmp_path / "one.zarr"), ClusterConfig(workers=2), report=False
        )
    assert result["evaluations"] == 6  # three generations: the note came once, not each time
    assert _notes(caplog) == [
        "the cluster has 2 workers but Nelder-Mead (SciPy) evaluates at most 1 point at a "
        "time (one per island, setting 'islands': 1), so this run keeps at most 1 of them "
        "busy; more islands would use more of them (and give a different run of the seed)"
    ]
