"""Held-out validation in real runs of the wave problem (a Python model, cheap) with a longer
recording held out: `neuroptimus run` evaluates the best individuals on it on the run's own
cluster at the end, and `neuroptimus analyze STORE --validate` does it again for a store; the
stored errors are those of a direct evaluation, the run's own arrays are untouched, the report
and metadata.json show them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from commands import command_env

from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.storage.runs.validation import read_validation
from tests.analysis.trust_runs import in_fresh_process
from tests.flows import validation_runs


def _command(*arguments: str, home) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", *arguments],
        capture_output=True, text=True, timeout=900, env=command_env(HOME=str(home)),
    )  # fmt: skip


def _direct(store: str, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The rows' validation errors and totals evaluated here, without a cluster (in a fresh
    process: a process hosts one model)."""
    from neuroptimus.optimization.evaluation.individual import evaluate_batch
    from neuroptimus.optimization.problem.spec import ProblemSpec
    from neuroptimus.optimization.trust.validation import validation_problem

    run = RunStore.open(store)
    problem = validation_problem(ProblemSpec.model_validate(run.attrs["spec"]))
    result = evaluate_batch(problem, run.evaluations()["parameters"][rows])
    return result.errors, result.total


@pytest.fixture(scope="module")
def validated_run(tmp_path_factory):
    """A finished run of 8 × 5 whose best 3 distinct individuals were validated."""
    folder = tmp_path_factory.mktemp("validated")
    problem = validation_runs.write_problem(folder / "problem")
    store = folder / "wave.zarr"
    result = _command(
        "run", str(problem), "--population", "8", "--generations", "5", "--workers", "1",
        "--validate-best", "3", "--store", str(store), home=folder / "home",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return store


@pytest.mark.slow
def test_a_run_validates_its_best_individuals_on_the_held_out_recording(validated_run):
    found = read_validation(validated_run)
    run = RunStore.open(validated_run)
    rows = run.evaluations()
    order = np.argsort(rows["total"], kind="stable")
    assert found["best"] == 3 and len(found["rows"]) == 3
    assert found["rows"][0] == run.best()["index"] == order[0]
    assert list(found["training_total"]) == sorted(found["training_total"])
    assert np.array_equal(found["training_total"], rows["total"][found["rows"]])
    assert list(found["status"]) == [0, 0, 0]
    errors, total = in_fresh_process(_direct, str(validated_run), list(found["rows"]))
    assert np.array_equal(found["errors"], errors) and np.array_equal(found["total"], total)
    assert found["validation_error"] == total[0]
    # the best's validation traces cover the held-out 150 ms, the training's only 100 ms
    assert found["best_time"][-1] == found["target_time"][-1] == validation_runs.HELD_OUT_MS

    metadata = json.loads((validated_run / "metadata.json").read_text())
    assert metadata["validation_error"] == total[0]
    assert [i["row"] for i in metadata["validation"]["individuals"]] == list(found["rows"])
    report = (validated_run / "report.html").read_text()
    assert "Held-out validation" in report and "Training against validation error" in report
    assert "Best individual on the validation protocols" in report


@pytest.mark.slow
def test_analyze_validates_an_existing_store_again_without_touching_the_run(
    validated_run, tmp_path
):
    store = tmp_path / "copy.zarr"
    shutil.copytree(validated_run, store, ignore=shutil.ignore_patterns("validation"))
    (store / "metadata.json").unlink()
    before = RunStore.open(store).evaluations()
    result = _command("analyze", str(store), "--validate", "--best", "2", "--workers", "1",
                      home=tmp_path / "home")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    found, first = read_validation(store), read_validation(validated_run)
    assert list(found["rows"]) == list(first["rows"][:2])
    assert np.array_equal(found["total"], first["total"][:2])  # the same model, the same errors
    assert f"validation error of the best: {first['total'][0]:.6g}" in result.stdout
    after = RunStore.open(store).evaluations()
    for name, values in after.items():
        assert np.array_equal(values, before[name]), name
    assert [p.name for p in store.iterdir() if p.name.startswith("validation")] == ["validation"]
    assert (
        json.loads((store / "metadata.json").read_text())["validation_error"] == (first["total"][0])
    )
    assert "Held-out validation" in (store / "report.html").read_text()


def _small_wave(folder):
    from tests.analysis import trust_runs

    return trust_runs.run_store(folder, population=6, generations=2)


def test_analyze_validate_needs_a_validation_section(tmp_path):
    from typer.testing import CliRunner

    from neuroptimus.flows.cli import app

    store = in_fresh_process(_small_wave, tmp_path)
    result = CliRunner().invoke(app, ["analyze", str(store), "--validate"])
    assert result.exit_code == 2
    assert "its problem has no validation: section" in result.stderr
    assert read_validation(store) is None


def test_a_validation_target_that_does_not_fit_stops_the_run_before_it_starts(tmp_path):
    problem = validation_runs.write_problem(tmp_path / "problem")
    lines = (tmp_path / "problem" / "held_out.txt").read_text().splitlines()
    (tmp_path / "problem" / "held_out.txt").write_text("\n".join(lines[:200]) + "\n")
    store = tmp_path / "wave.zarr"
    result = _command("run", str(problem), "--workers", "1", "--store", str(store),
                      home=tmp_path / "home")  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    expected = "error: validation: target sweep 1 has 200 samples but the protocol records 301"
    assert len(lines) == 1 and lines[0].startswith(expected)
    assert not store.exists()
