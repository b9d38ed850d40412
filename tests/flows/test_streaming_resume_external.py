"""The same kill -9 and resume as test_streaming_resume, with a black box: an external program
(the JSON-protocol example model, made slow) that logs every invocation. No individual whose
result was streamed into the store is run again, and the resumed store is bit-identical to an
uninterrupted run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from commands import command_env

from tests.flows.test_streaming_resume import (
    GENERATIONS,
    POPULATION,
    _run,
    _without_best_trace,
    kill_mid_generation,
    resume_and_check,
)
from tests.optimization.blackbox_models import slow_json_example

pytestmark = pytest.mark.slow


# Logs the invocation (parameter values in problem order, sweep index), sleeps, then runs the
# example model unchanged.
WRAPPER = """
import json, os, runpy, sys, time

request = json.load(open(sys.argv[1]))
values = [request["parameters"][name] for name in ("g_leak_uS", "tau_ms")]
with open(os.environ["STREAMING_TEST_CALLS"], "a") as handle:
    handle.write(" ".join(repr(float(v)) for v in values) + f" {request['sweep']}\\n")
time.sleep(0.4)
runpy.run_path("lif_model.py", run_name="__main__")
"""


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slow-external")
    return slow_json_example(folder, WRAPPER, POPULATION, GENERATIONS, seed=5)


@pytest.fixture(scope="module")
def env():
    return command_env()


def _evaluations(calls: Path, store: Path) -> Counter:
    """Vectors the program was run at (sweep 0: once per evaluation), less the set-up's run at
    the true values and the best individual's re-simulation for its stored trace."""
    lines = calls.read_text().splitlines() if calls.exists() else []
    runs = Counter(tuple(map(float, line.split()[:2])) for line in lines if line.endswith(" 0"))
    del runs[(0.05, 20.0)]
    return _without_best_trace(runs, store)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, problem, env):
    folder = tmp_path_factory.mktemp("reference")
    store, calls = folder / "reference.zarr", folder / "calls.txt"
    _run(["run", str(problem), "--workers", "2", "--store", str(store), "--no-report"],
         {**env, "STREAMING_TEST_CALLS": str(calls)})  # fmt: skip
    evaluated = _evaluations(calls, store)
    assert sum(evaluated.values()) == POPULATION * GENERATIONS == len(evaluated)
    return store


def test_kill_9_then_resume_runs_no_streamed_individual_of_an_external_program_again(
    tmp_path, problem, env, reference
):
    store, killed_calls = tmp_path / "killed.zarr", tmp_path / "calls-killed.txt"
    kill_mid_generation(problem, store, env, killed_calls)

    resume_and_check(tmp_path, store, env, reference, _evaluations)
