"""simulator: external — real subprocesses: the original tool's file protocol (the upstream
UC5 script unchanged; a NEST script of our own that matches the in-process model), a run per
evaluation, the timeout that kills the program's process group, and every way a program
can fail: at setup one line, during a run one failed individual with its stderr."""

from __future__ import annotations

import os
import signal
import time
from multiprocessing import get_context
from pathlib import Path

import pytest
from blackbox_models import (
    NEST_MODEL,
    NEST_SCRIPT,
    evaluate,
    fake_script,
    in_fresh_process,
    problem,
    setup_error,
    write,
)

from tests.reference_numbers import usecase

TRUE = [10.0, 60.0, 100.0]
OTHER = [20.0, 150.0, 250.0]
EXTERNAL = {"simulator": "external", "command": ["python3", "model.py"]}
UC5 = "testcase_5_adexpif_external_ca3_pc"


def uc5_problem(folder: Path) -> Path:
    """UC5 as the original's settings define it, the upstream script run unchanged."""
    bounds = [[0.001, 10.0, -70.0, 0.0, -40.0, 0.5, -5.0, 0.0, 0.5, 10.0],
              [0.01, 100.0, -40.0, 30.0, -10.0, 5.0, 5.0, 1.0, 5.0, 500.0]]  # fmt: skip
    return problem(
        folder,
        {
            "simulator": "external",
            "command": ["python3", "teststeps_optim5.py"],
            "folder": f"data://{UC5}",
        },  # fmt: skip
        parameters=[
            {"name": f"p{k}", "lower": lo, "upper": hi}
            for k, (lo, hi) in enumerate(zip(*bounds, strict=True))
        ],  # fmt: skip
        protocol={"tstop_ms": 1100.0, "dt_ms": 0.2, "sweeps": 4},
        target={
            "file": f"data://{UC5}/ca3_pc_v2_4.csv",
            "sampling_rate_hz": 5000,
            "time_column": False,
        },  # fmt: skip
        costs={
            "functions": [
                {"name": n, "weight": 0.3333}
                for n in ("MSE (excl. spikes)", "Spike count (stim.)", "Latency to 1st spike")
            ],
            "spike_threshold_mV": 0.0,
            "spike_window_samples": 5,
        },  # fmt: skip
    )


def test_upstream_uc5_script_runs_unchanged_and_gives_the_original_total(tmp_path):
    adexp = usecase("adexp")
    path = uc5_problem(tmp_path)
    ((errors, status, message, spikes),) = in_fresh_process(evaluate, path, [adexp["values"]])
    assert status == "ok", message
    total = sum(0.3333 * e for e in errors)
    assert total == pytest.approx(adexp["total"], rel=1e-9)
    # the spike file's times were used: four sweeps of NEST spikes
    assert spikes == [len(t["model_spike_times_ms"]) for t in adexp["per_trace"]]


def test_nest_script_of_the_original_protocol_matches_the_in_process_model(tmp_path):
    write(tmp_path, "adex_model.py", NEST_MODEL)
    write(tmp_path, "adex_script.py", NEST_SCRIPT)
    inside = in_fresh_process(
        evaluate, problem(tmp_path, {"simulator": "python", "file": "adex_model.py"}),
        [TRUE, OTHER],
    )  # fmt: skip
    external = {"simulator": "external", "command": ["python3", "adex_script.py"]}
    outside = in_fresh_process(evaluate, problem(tmp_path, external), [TRUE, OTHER])
    for mine, theirs in zip(inside, outside, strict=True):
        assert theirs[1] == "ok", theirs[2]
        assert theirs[0] == pytest.approx(mine[0], rel=1e-6, abs=1e-12)
        assert theirs[3] == mine[3]  # the same NEST spikes, read from the spike file
    assert not list(tmp_path.glob("trace*.dat")), "outputs must stay in the temporary folder"


PER_EVALUATION = """
import csv, json, math, sys
with open(sys.argv[1]) as file:
    request = json.load(file)
assert request["sweep"] is None and request["sweeps"] == 2
with open("calls.log", "a") as log:  # a file of the model folder, through its link
    log.write(request["id"] + "\\n")
g = request["parameters"]["g_L_nS"]
with open("trace.csv", "w", newline="") as file:
    out = csv.writer(file)
    out.writerow(["time_ms", "sweep0", "sweep1"])
    for i in range(1501):
        out.writerow([0.2 * i, -65 + g * math.sin(i / 40), -60 + g * math.cos(i / 40)])
"""


def test_json_protocol_once_per_evaluation_with_csv_output(tmp_path):
    write(tmp_path, "per_evaluation.py", PER_EVALUATION)
    (tmp_path / "calls.log").write_text("")
    model = {"simulator": "external", "command": ["python3", "per_evaluation.py"],
             "protocol": "json", "per_sweep": False, "trace_file": "trace.csv"}  # fmt: skip
    results = in_fresh_process(evaluate, problem(tmp_path, model), [TRUE, OTHER], False)
    assert [r[1] for r in results] == ["ok", "ok"], results
    assert results[0][0] == [0.0] * 4 and results[1][0][0] > 0
    # the target's regeneration, then one call per evaluation and one per trace read back
    assert len((tmp_path / "calls.log").read_text().split()) == 1 + 2 * 2


def test_documented_json_example_runs(tmp_path):
    example = Path(__file__).parents[2] / "docs" / "examples" / "json_protocol"
    message = in_fresh_process(setup_error, example / "problem.yaml")
    assert message is None
    (errors, status, _, _), = in_fresh_process(
        evaluate, example / "problem.yaml", [[0.1, 10.0]], False
    )  # fmt: skip
    assert status == "ok" and errors[0] > 0


def test_timeout_kills_the_process_group_and_the_run_goes_on(tmp_path):
    fake_script(tmp_path, "hang", "params[1] > 100")
    path = problem(tmp_path, EXTERNAL, evaluation={"timeout_s": 3})
    started = time.monotonic()
    results = in_fresh_process(evaluate, path, [OTHER, TRUE])
    assert time.monotonic() - started < 60
    (_, status, message, _), after = results
    assert status == "timeout" and "past the evaluation's time limit" in message
    assert "waiting for ever" in message  # the tail of its stderr
    assert after[1] == "ok"
    child = int((tmp_path / "child.pid").read_text())
    time.sleep(0.5)
    assert _state(child) in ("gone", "Z"), "child left running"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return "gone"


def test_a_worker_that_dies_mid_evaluation_leaves_nothing_running(tmp_path):
    """The process evaluating dies by SIGKILL (a Ctrl-C'd run, a nanny's restart, a cancelled
    job): the program and the child it started end with it, long before their time limit."""
    fake_script(tmp_path, "hang", "params[1] > 100")
    path = problem(tmp_path, EXTERNAL, evaluation={"timeout_s": 600})
    worker = get_context("spawn").Process(target=evaluate, args=(path, [OTHER], False))
    worker.start()
    pid_file, deadline = tmp_path / "child.pid", time.monotonic() + 120
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert worker.is_alive() and time.monotonic() < deadline, "the program never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    os.kill(worker.pid, signal.SIGKILL)
    worker.join()
    deadline = time.monotonic() + 30
    while _state(child) not in ("gone", "Z"):
        assert time.monotonic() < deadline, "the program's child outlived its worker"
        time.sleep(0.1)


BREAKS = [
    ("exit", "model.py (sweep 0): exit code 3; stderr: model exploded: g_L too large"),
    ("no_output", "model.py: wrote no trace file trace{id}.dat"),
    ("short", "model.py: trace{id}.dat: sweep 0: the trace has 100 samples, expected 1501"),
    ("bad_spikes", "model.py: spike{id}.dat: line 2: 'spike!' is not a spike time"),
]


@pytest.mark.parametrize(("kind", "expected"), BREAKS, ids=[b[0] for b in BREAKS])
def test_program_failures_are_one_line_at_setup(tmp_path, kind, expected):
    fake_script(tmp_path, kind, "True")
    message = in_fresh_process(setup_error, problem(tmp_path, EXTERNAL))
    assert message is not None and expected in message, message
    assert message.startswith("model.command python3 model.py: at the true values: ")
    assert "\n" not in message


@pytest.mark.parametrize(("kind", "expected"), BREAKS, ids=[b[0] for b in BREAKS])
def test_program_failures_during_a_run_fail_one_individual(tmp_path, kind, expected):
    fake_script(tmp_path, kind, "params[1] > 100")
    bad, good = in_fresh_process(evaluate, problem(tmp_path, EXTERNAL), [OTHER, TRUE])
    assert bad[1] == "failed" and expected in bad[2], bad
    assert bad[0] == [100.0] * 4
    assert "simulating" in bad[2] or "stderr: model exploded" in bad[2]  # the output's tail
    assert good[1] == "ok"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["no-such-simulator", "x"], "program 'no-such-simulator' not found on PATH"),
        (["python3", "missing.py"], "missing.py is not in the model folder"),
        (["./run.sh"], "run.sh is not an executable file"),
    ],
    ids=["not-on-path", "missing-script", "not-executable"],
)
def test_command_not_found_is_one_line_at_setup(tmp_path, command, expected):
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    message = in_fresh_process(
        setup_error, problem(tmp_path, {"simulator": "external", "command": command})
    )
    assert message is not None and expected in message and "\n" not in message, message
