"""External models through the real command line (a LocalCluster, a private Prefect server):
individuals whose program fails are stored failed with the penalty and the program's stderr,
and the run goes on; a program that fails at the true values stops the run at setup with one
line and no store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from commands import command_env

# the models of tests/optimization (a test folder is no package)
sys.path.insert(0, str(Path(__file__).parents[1] / "optimization"))
from blackbox_models import fake_script, problem  # noqa: E402

from neuroptimus.storage.runs.run_store import RunStore  # noqa: E402

pytestmark = pytest.mark.slow

MODEL = {"simulator": "external", "command": ["python3", "model.py"]}


@pytest.fixture
def env(tmp_path):
    return command_env(HOME=str(tmp_path / "home"))


def cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", *args], capture_output=True, text=True,
        timeout=600, env=env,
    )  # fmt: skip


def test_failing_individuals_are_stored_with_stderr_and_the_run_goes_on(tmp_path, env):
    folder = tmp_path / "model"
    folder.mkdir()
    fake_script(folder, "exit", "params[1] > 100")
    path = problem(folder, MODEL, algorithm={"name": "random", "population": 6, "generations": 2})
    store = tmp_path / "run.zarr"
    result = cli(["run", str(path), "--workers", "2", "--seed", "3", "--store", str(store)], env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = RunStore.open(store).evaluations()
    assert len(rows["status"]) == 12
    failed = rows["parameters"][:, 1] > 100
    assert failed.any() and (~failed).any()  # random points on both sides of b_pA = 100
    assert (rows["status"][failed] == 1).all() and (rows["status"][~failed] == 0).all()
    assert np.all(rows["total"][failed] == 100.0)
    for message in rows["message"][failed]:
        assert "model.py (sweep 0): exit code 3; stderr: model exploded: g_L too large" in str(
            message
        )


def test_a_program_failing_at_the_true_values_stops_the_run_at_setup(tmp_path, env):
    fake_script(tmp_path, "short", "True")
    store = tmp_path / "run.zarr"
    result = cli(
        ["run", str(problem(tmp_path, MODEL)), "--workers", "1", "--store", str(store)], env
    )
    assert result.returncode == 2
    # (Dask may warn that its dashboard port is taken on a shared machine)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("error: model.command python3 model.py: at the true values: ")
    assert "the trace has 100 samples, expected 1501" in lines[0]
    assert not store.exists()
