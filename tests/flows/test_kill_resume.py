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
import yaml
from commands import command_env

from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.optimization.problem.spec import StoppingSpec
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path

pytestmark = pytest.mark.slow

# no report: what these tests compare is the store (tests/analysis draw reports)
ARGS = ["hh", "--population", "10", "--generations", "8", "--seed", "11", "--workers", "2",
        "--no-report"]  # fmt: skip


def _cli(*args):
    return [sys.executable, "-m", "neuroptimus.flows.cli", *args]


def _run(args, env, timeout=600):
    result = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def env():
    return command_env()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    path = tmp_path_factory.mktemp("reference") / "reference.zarr"
    out = _run(["run", *ARGS, "--store", str(path)], env).stdout
    assert "report:   not written (--no-report" in out
    assert (path / "metadata.json").is_file() and not (path / "report.html").exists()
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
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and its Dask workers (not the server)
    process.wait()
    assert RunStore.open(killed).attrs["finished"] is None

    _run(["resume", str(killed), "--no-report"], env)

    ours, theirs = RunStore.open(killed), RunStore.open(reference)
    a, b = ours.evaluations(), theirs.evaluations()
    assert len(a["total"]) == len(b["total"]) == ours.committed_evaluations
    for name in ("parameters", "errors", "total", "generation", "status"):
        assert np.array_equal(a[name], b[name]), name
    assert ours.best() == theirs.best()
    assert ours.attrs["finished"] == theirs.attrs["finished"]
    assert np.array_equal(ours.arrays("best")["trace"], theirs.arrays("best")["trace"])


SLEEPY = """
import time


def sleepy(h, values):
    time.sleep(0.2)
"""


def test_resume_while_the_run_goes_on_is_refused_and_changes_nothing(tmp_path, env):
    """A resume started while the run still writes its store fails at once with the writer
    named, before Prefect or a cluster starts (a second); the run, a random search of 20
    generations of 4 that sleeps 0.2 s per evaluation (some 8 s, many times that, at little
    CPU), finishes untouched."""
    running, problem = tmp_path / "running.zarr", tmp_path / "problem.yaml"
    (tmp_path / "sleepy.py").write_text(SLEEPY)
    spec = with_overrides(load_problem(problem_path("hh")), algorithm="random", population=4,
                          generations=20, seed=11)  # fmt: skip
    spec = spec.model_copy(update={"stopping": StoppingSpec()})  # no early stop: the budget
    data = spec.model_dump(mode="json")
    data["model"]["user_function"] = {"file": str(tmp_path / "sleepy.py"), "function": "sleepy"}
    problem.write_text(yaml.safe_dump(data))
    args = [str(problem), "--workers", "2", "--store", str(running), "--no-report"]
    process = subprocess.Popen(
        _cli("run", *args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and _committed(running) < 1:
        assert process.poll() is None, process.stderr.read()[-3000:]
        time.sleep(0.05)
    resume = subprocess.run(
        _cli("resume", str(running)), capture_output=True, text=True, timeout=300, env=env
    )
    assert resume.stderr.strip().count("\n") == 0, resume.stderr[-3000:]  # one line
    assert process.poll() is None, "the run ended before the resume could try"
    assert resume.returncode == 2, resume.stderr[-3000:]  # wait, or stop the other run
    assert f"{running} is being written by another run (pid {process.pid}" in resume.stderr
    assert process.wait(timeout=600) == 0, process.stderr.read()[-3000:]

    store = RunStore.open(running)
    rows = store.evaluations()
    assert store.committed_evaluations == len(rows["total"]) == 80
    assert np.array_equal(rows["generation"], np.repeat(np.arange(20), 4))
    assert store.attrs["finished"] == "evaluation budget of 80 used"
