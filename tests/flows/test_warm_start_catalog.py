"""A warm start from a catalog entry: its store is downloaded from a real catalog server
(uvicorn, SQLite) as data, and the new run begins at its best individuals."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroptimus.flows.cli import app
from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.storage.catalog.client import CatalogClient, push_run
from neuroptimus.storage.warm_start import WarmStartError, new_run_store
from neuroptimus.usecases import problem_path
from tests.flows.catalog_server import serving


def _evaluate(values: np.ndarray) -> BatchResult:
    """Distances of the real values to UC1's true ones (four components, weights 0.25)."""
    errors = np.abs(values - np.array([0.12, 0.036, 0.0003]))[:, [0, 1, 2, 0]]
    n = len(values)
    return BatchResult(errors, errors.mean(axis=1), np.zeros(n, np.int8), [""] * n,
                       np.zeros(n), ["here"] * n)  # fmt: skip


def _problem(warm_start=None, seed=5):
    spec = with_overrides(
        load_problem(problem_path("hh")), population=4, generations=3, seed=seed,
        warm_start=warm_start,
    )  # fmt: skip
    return build_problem(spec, [np.zeros(expected_length(spec))])


def test_a_run_starts_from_a_catalog_entry(tmp_path):
    source = new_run_store(_problem(), tmp_path / "source.zarr")
    run_to_end(OptimizationRun(_problem(), source), _evaluate)
    source.close()
    with serving(tmp_path / "catalog") as (url, db):
        made = CliRunner().invoke(app, ["catalog", "token", "--db", db, "--user", "alice",
                                        "--scope=read", "--scope=upload"])  # fmt: skip
        assert made.exit_code == 0, made.output
        with CatalogClient(url, made.stdout.strip()) as client:
            pushed = push_run(client, source.path, with_store=True)
        store = new_run_store(_problem(pushed.url), tmp_path / "run.zarr")
        missing = f"{url}/runs/{'0' * 8}-{'0000-' * 3}{'0' * 12}"
        with pytest.raises(WarmStartError, match="answered 404") as refused:
            new_run_store(_problem(missing), tmp_path / "x.zarr")
        assert str(refused.value).startswith(f"warm start from {missing}: the catalog at")
    rows = source.evaluations()
    best = np.argsort(rows["total"], kind="stable")[:8]
    assert np.array_equal(store.arrays("start")["parameters"], rows["parameters"][best])
    warm = store.attrs["warm_start"]
    assert warm["source"] == pushed.url and warm["stores"][0]["run_id"] == pushed.run_id
