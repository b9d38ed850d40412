"""A catalog that cannot be reached at the end of a run is a warning, never a failed run
(real flows, LocalCluster, NEURON). The push to a catalog that answers is tested with
``catalog reproduce`` (tests/flows/test_catalog_cli.py), whose rerun the run flow pushes."""

from __future__ import annotations

import logging

import pytest

from neuroptimus.flows.run import run_flow
from neuroptimus.optimization.execution.cluster import ClusterConfig
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path
from tests.flows.catalog_server import free_port


@pytest.fixture(scope="module")
def spec():
    return with_overrides(load_problem(problem_path("hh")), population=4, generations=2, seed=5)


def test_an_unreachable_catalog_never_fails_the_run(tmp_path, spec, prefect_harness, caplog):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = tmp_path / "kept.zarr"
    with caplog.at_level(logging.WARNING):
        result = run_flow(spec, str(store), ClusterConfig(workers=1), catalog_url=closed)
    assert result["catalog"] == [] and result["evaluations"] == 8
    assert RunStore.open(store).attrs["finished"]
    assert (store / "metadata.json").is_file() and (store / "report.html").is_file()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not pushed to the catalog" in w and closed in w for w in warnings), warnings
