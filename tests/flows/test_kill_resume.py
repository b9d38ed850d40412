"""kill -9 of a running optimization, then `neuroptimus resume`: every evaluation stored exactly
once and the same final result, bit for bit, as an uninterrupted run with the same seed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from storage.run_store import RunStore

pytestmark = pytest.mark.slow

ARGS = ["hh", "--population", "10", "--generations", "8", "--seed", "11", "--workers", "2"]


def _cli(*args):
    return [sys.executable, "-m", "flows.cli", *args]


def _run(args, env, timeout=600):
    result = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Each test module gets its own Prefect home (database) for the CLI's runs."""
    return {**os.environ, "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    path = tmp_path_factory.mktemp("reference") / "reference.zarr"
    _run(["run", *ARGS, "--store", str(path)], env)
    return path


def _committed(path):
    try:
        return RunStore.open(path).committed_generations
    except Exception:
        return 0


@pytest.mark.parametrize("kill_after_generations", [0, 3])
def test_kill_9_then_resume_matches_uninterrupted_run(
    tmp_path, env, reference, kill_after_generations
):
    killed = tmp_path / "killed.zarr"
    process = subprocess.Popen(
        _cli("run", *ARGS, "--store", str(killed)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if (killed / "zarr.json").exists() and _committed(killed) >= kill_after_generations:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # the CLI, its Dask workers and Prefect server
    process.wait()
    assert RunStore.open(killed).attrs["finished"] is None

    _run(["resume", str(killed)], env)

    ours, theirs = RunStore.open(killed), RunStore.open(reference)
    a, b = ours.evaluations(), theirs.evaluations()
    assert len(a["total"]) == len(b["total"]) == ours.committed_evaluations
    for name in ("parameters", "errors", "total", "generation", "status"):
        assert np.array_equal(a[name], b[name]), name
    assert ours.best() == theirs.best()
    assert ours.attrs["finished"] == theirs.attrs["finished"]
    assert np.array_equal(ours.arrays("best")["trace"], theirs.arrays("best")["trace"])
