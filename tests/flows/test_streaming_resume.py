"""kill -9 in the middle of a generation of a slow model, then `neuroptimus resume`: the results
streamed into the store before the kill are taken, not simulated again (the model's user
function logs every call), and the final store is bit-identical to an uninterrupted run."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml
from commands import command_env
from hpc.hpc_runs import assert_same_run

from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.optimization.problem.spec import StoppingSpec
from neuroptimus.storage.runs.inflight import read_records
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path

pytestmark = pytest.mark.slow

POPULATION, GENERATIONS = 8, 3
SECONDS = 0.8  # per evaluation: a generation of 8 on 2 workers takes some 3.5 s

# Called by the NEURON simulator before each simulation (and once at the true values when a
# worker builds the model): a line per call, written before the sleep, so a call cut short by
# the kill is logged too.
SLOW_FUNCTION = f"""
import os
import time


def slow(h, values):
    with open(os.environ["STREAMING_TEST_CALLS"], "a") as handle:
        handle.write(" ".join(repr(float(v)) for v in values) + "\\n")
    time.sleep({SECONDS})
"""


def _cli(*args):
    return [sys.executable, "-m", "neuroptimus.flows.cli", *args]


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """UC1 made slow, fitted by CMA-ES for exactly 3 generations of 8."""
    folder = tmp_path_factory.mktemp("slow-problem")
    (folder / "slow.py").write_text(SLOW_FUNCTION)
    spec = with_overrides(load_problem(problem_path("hh")), population=POPULATION,
                          generations=GENERATIONS, seed=11)  # fmt: skip
    data = spec.model_copy(update={"stopping": StoppingSpec()}).model_dump(mode="json")
    data["model"]["user_function"] = {"file": str(folder / "slow.py"), "function": "slow"}
    path = folder / "problem.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def env():
    return command_env()


def _calls(path) -> Counter:
    """The parameter vectors the model was simulated at, minus the set-up calls."""
    true = tuple(p.true_value for p in load_problem(problem_path("hh")).parameters)
    lines = path.read_text().splitlines() if path.exists() else []
    calls = Counter(tuple(float(v) for v in line.split()) for line in lines)
    del calls[true]
    return calls


def _without_best_trace(calls: Counter, store) -> Counter:
    """Less the best individual's simulation for its stored trace, where there was one (its
    traces kept from its evaluation need none)."""
    run = RunStore.open(store)
    best = tuple(float(v) for v in run.arrays("best")["parameters"])
    assert calls[best] >= 1
    calls = calls.copy()
    if run.attrs["best_traces"] == "simulated again":
        calls[best] -= 1
    return +calls


def _run(args, env):
    result = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def reference(tmp_path_factory, problem, env):
    folder = tmp_path_factory.mktemp("reference")
    store, calls = folder / "reference.zarr", folder / "calls.txt"
    _run(["run", str(problem), "--workers", "2", "--store", str(store), "--no-report"],
         {**env, "STREAMING_TEST_CALLS": str(calls)})  # fmt: skip
    # an uninterrupted run's best traces come from its evaluation: not simulated again
    assert RunStore.open(store).attrs["best_traces"] == "evaluation"
    evaluated = _without_best_trace(_calls(calls), store)
    # the counting works: each evaluation of the uninterrupted run is one call
    assert sum(evaluated.values()) == POPULATION * GENERATIONS == len(evaluated)
    return store


def _checkpoint(store):
    path = store / "checkpoint.pkl"
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        return pickle.load(handle)


def _streamed(store, generation: int) -> set[tuple[float, ...]]:
    """Parameter vectors with a whole streamed record, of generation ``generation`` on."""
    found = set()
    # the running flow deletes committed generations' files and then the empty folder
    try:
        paths = sorted((store / "inflight").iterdir())
    except FileNotFoundError:
        return found
    for path in paths:
        try:
            records = read_records(path)[0]
        except FileNotFoundError:
            continue
        for record_generation, values, _ in records:
            if record_generation >= generation:
                found |= {tuple(map(float, row)) for row in values}
    return found


def kill_mid_generation(problem, store, env, calls) -> None:
    """Start a run and kill -9 its whole process group once generation 1 or 2 is under way
    with at least 3 of its individuals streamed to disk."""
    process = subprocess.Popen(
        _cli("run", str(problem), "--workers", "2", "--store", str(store), "--no-report"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**env, "STREAMING_TEST_CALLS": str(calls)},
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        checkpoint = _checkpoint(store)
        if checkpoint and checkpoint.generation >= 1:
            if len(_streamed(store, checkpoint.generation)) >= 3:
                break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # the CLI and its Dask workers (not the server)
    process.wait()


def test_kill_9_mid_generation_then_resume_simulates_no_streamed_individual_again(
    tmp_path, problem, env, reference
):
    store, killed_calls = tmp_path / "killed.zarr", tmp_path / "calls-killed.txt"
    kill_mid_generation(problem, store, env, killed_calls)

    resume_and_check(tmp_path, store, env, reference, _simulations)


def _simulations(calls, store) -> Counter:
    return _without_best_trace(_calls(calls), store)


def resume_and_check(tmp_path, store, env, reference, evaluations) -> None:
    """Resume the killed run: no individual streamed before the kill is evaluated again
    (``evaluations(log, store)`` counts the model's calls per vector from its log) and the
    store equals the uninterrupted ``reference`` bit for bit."""
    checkpoint = _checkpoint(store)
    streamed = _streamed(store, checkpoint.generation)
    assert 3 <= len(streamed) < POPULATION * (GENERATIONS - checkpoint.generation)
    assert RunStore.open(store).attrs["finished"] is None

    resumed_calls = tmp_path / "calls-resumed.txt"
    result = _run(["resume", str(store), "--no-report"],
                  {**env, "STREAMING_TEST_CALLS": str(resumed_calls)})  # fmt: skip
    assert f"{len(streamed)} evaluations taken from the store" in result.stdout

    evaluated = evaluations(resumed_calls, store)
    assert not set(evaluated) & streamed  # no streamed individual evaluated again
    rows = POPULATION * GENERATIONS
    assert sum(evaluated.values()) == rows - checkpoint.evaluations - len(streamed)
    assert_same_run(store, reference)  # bit for bit, every evaluation stored once
    assert not (store / "inflight").exists()
