"""The run flow pushes its run to a configured catalog at the end; a catalog that cannot be
reached is a warning, never a failed run (real flows, LocalCluster, NEURON, uvicorn)."""

from __future__ import annotations

import logging

import httpx
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.run import run_flow
from optimization.cluster import ClusterConfig
from optimization.spec import load_problem, with_overrides
from storage.catalog.ingest import run_from_store
from storage.run_store import RunStore
from tests.flows.catalog_server import free_port, serving
from usecases import problem_path


@pytest.fixture(scope="module")
def spec():
    return with_overrides(load_problem(problem_path("hh")), population=4, generations=2, seed=5)


def test_the_run_flow_pushes_at_the_end(tmp_path, spec, prefect_harness, monkeypatch):
    with serving(tmp_path / "catalog") as (url, db):
        token = CliRunner().invoke(app, ["catalog", "token", "--db", db, "--user", "bob"])
        monkeypatch.setenv("NEUROPTIMUS_CATALOG_TOKEN", token.stdout.strip())
        store = tmp_path / "pushed.zarr"
        result = run_flow(spec, str(store), ClusterConfig(workers=1), catalog_url=url)
        run_id = run_from_store(store).run_id
        assert result["catalog"] == [f"{url}/runs/{run_id}"]
        entry = httpx.get(f"{url}/api/v1/runs/{run_id}").json()
        assert entry["uploader"] == "bob" and entry["evaluations"] == 8
        assert entry["final_error"] == result["total"]
        stored = httpx.get(f"{url}/api/v1/runs/{run_id}/store.zip")  # explorable from there
        assert stored.status_code == 200 and stored.content[:2] == b"PK"


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
