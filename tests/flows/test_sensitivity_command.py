"""`neuroptimus analyze STORE --sensitivity` through the real command line (a LocalCluster,
the host's Prefect server) on a real run store of the wave problem, whose `unused` parameter
the model never reads: 2·d evaluations around the best, stored in the store's own group
without touching the run's data, in the table, the CSV and the rewritten report."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from commands import command_env
from typer.testing import CliRunner

from neuroptimus.flows.cli import app
from neuroptimus.storage.runs.run_store import FROM_CATALOG, RunStore
from neuroptimus.storage.runs.sensitivity import read_sensitivity, write_sensitivity
from tests.analysis import trust_runs


@pytest.fixture(scope="module")
def wave_store(tmp_path_factory):
    return trust_runs.wave_store_in(tmp_path_factory.mktemp("wave"))


@pytest.mark.slow
def test_sensitivity_is_evaluated_on_a_cluster_and_stored_beside_the_run(wave_store, tmp_path):
    before = RunStore.open(wave_store)
    rows, attrs = before.evaluations(), before.attrs
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "analyze", str(wave_store),
         "--sensitivity", "--workers", "1"],
        capture_output=True, text=True, timeout=600,
        env=command_env(HOME=str(tmp_path / "home")),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    assert lines["unused"][1:3] == ["0", "0.000"]  # sensitivity and relative: exactly none
    assert lines["unused"][-2:] == ["no", "effect"]  # flagged by itself, the others not
    assert lines["period_ms"][-1] != "effect" and lines["amplitude_mV"][-1] != "effect"
    assert "no effect: unused — both points gave exactly the best's errors" in result.stdout
    assert float(lines["period_ms"][1]) > 0 and float(lines["amplitude_mV"][1]) > 0

    found = read_sensitivity(wave_store)
    assert found["step"] == 0.01 and found["parameter_names"] == before.parameter_names
    assert len(found["total"]) == 6 and list(found["status"]) == [0] * 6
    best = before.best()
    assert found["best_row"] == best["index"] and found["best_total"] == best["total"]
    assert np.all((found["unit_points"] >= 0) & (found["unit_points"] <= 1))
    # the two points of `unused` simulate exactly alike; the others do not
    assert found["total"][2] == found["total"][3]
    assert found["total"][0] != found["total"][1] and found["total"][4] != found["total"][5]
    assert list(found["jacobian"][:, 1]) == [0.0]
    assert list(found["eigenvectors"][:, -1]) == [0.0, 1.0, 0.0]  # its own sloppy direction

    # the run's own data are untouched
    after = RunStore.open(wave_store)
    for name, values in after.evaluations().items():
        assert np.array_equal(values, rows[name]), name
    assert after.committed_evaluations == attrs["committed_evaluations"]
    with open(wave_store / "sensitivity.csv", newline="") as handle:
        table = {row["parameter"]: row for row in csv.DictReader(handle)}
    assert float(table["unused"]["sensitivity"]) == 0.0
    assert [table[name]["flags"] for name in before.parameter_names] == ["", "no effect", ""]
    report = (wave_store / "report.html").read_text()
    assert "Local sensitivity at the best" in report
    assert "Local sensitivity at the best (step 0.01)" in report  # the figure's title
    assert "<b>No effect</b> (both points gave exactly the best's errors" in report
    assert "the model may not read it): unused." in report
    assert "How far to trust the fit: identifiability" in report


def _copy(wave_store, store):
    """The run store alone, without what an earlier test added."""
    shutil.copytree(wave_store, store, ignore=shutil.ignore_patterns("sensitivity*"))
    return store


def test_a_second_sensitivity_replaces_the_first_whole(wave_store, tmp_path):
    store = _copy(wave_store, tmp_path / "copy.zarr")
    write_sensitivity(store, {"total": np.arange(6.0), "extra": np.ones(3)}, {"step": 0.01})
    write_sensitivity(store, {"total": np.arange(4.0)}, {"step": 0.05})
    found = read_sensitivity(store)
    assert found["step"] == 0.05 and list(found["total"]) == [0.0, 1.0, 2.0, 3.0]
    assert "extra" not in found  # nothing of the first is left
    assert [p.name for p in store.iterdir() if p.name.startswith("sensitivity")] == [
        "sensitivity"
    ]  # no group left half-built or replaced
    assert RunStore.open(store).committed_evaluations == 400


def test_a_store_from_a_catalog_is_not_simulated(wave_store, tmp_path):
    store = _copy(wave_store, tmp_path / "downloaded.zarr")
    (store / FROM_CATALOG).write_text(json.dumps({"url": "https://example.org/runs/1"}))
    result = CliRunner().invoke(app, ["analyze", str(store), "--sensitivity"])
    assert result.exit_code == 2  # not ours to simulate: the user is told what to do
    assert "downloaded from a results catalog: its sensitivity is not computed" in result.stderr
    assert read_sensitivity(store) is None
