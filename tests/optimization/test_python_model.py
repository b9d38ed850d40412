"""simulator: python — a real NEST model of our own (aeif_cond_exp, a current step per sweep)
built once per process and simulated per sweep, NEST's spike times scored by the spike costs;
and the mistakes a model file can make, found at setup or recorded per individual."""

from __future__ import annotations

import pytest
from blackbox_models import (
    NEST_MODEL,
    evaluate,
    in_fresh_process,
    problem,
    setup_error,
    write,
)

from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec_base import SpecError

TRUE = [10.0, 60.0, 100.0]
OTHER = [20.0, 150.0, 250.0]


def nest_problem(folder):
    write(folder, "adex_model.py", NEST_MODEL)
    return problem(folder, {"simulator": "python", "file": "adex_model.py"})


def test_nest_model_in_process_uses_nest_spike_times_and_resets_the_kernel(tmp_path):
    path = nest_problem(tmp_path)
    (true, other, again) = in_fresh_process(evaluate, path, [TRUE, OTHER, TRUE])
    assert [r[1] for r in (true, other, again)] == ["ok"] * 3
    # components: sweep 1 (MSE excl. spikes, spike count), sweep 2 (the same)
    errors, _, _, spikes = true
    assert errors[0] == 0 and errors[2] == 0  # the target is the model at the true values
    # The voltmeter's 0.2 ms samples never show a spike (NEST resets V within the step), so
    # the target's threshold detection finds none; NEST's spike times are what is counted.
    assert all(n > 0 for n in spikes)
    assert errors[1] == pytest.approx(spikes[0] / (spikes[0] + 1))
    assert errors[3] == pytest.approx(spikes[1] / (spikes[1] + 1))
    assert other[0][0] > 0 and other[3] != spikes
    assert again[0] == errors, "a NEST run leaked state into the next evaluation"


COUNTING_MODEL = """
import math

def build(spec):
    with open("builds.log", "a") as log:  # the working folder is the model file's folder
        log.write("built\\n")
    return {"samples": int(round(spec["protocol"]["tstop_ms"] / spec["protocol"]["dt_ms"])) + 1}

def simulate(model, values, sweep):
    if values["b_pA"] > 190:
        raise RuntimeError("b_pA out of the model's range")
    return [-65 + values["g_L_nS"] * math.sin(i / 40 + sweep) for i in range(model["samples"])]
"""


def test_model_is_built_once_per_process_and_a_raising_simulate_fails_one_individual(tmp_path):
    write(tmp_path, "counting.py", COUNTING_MODEL)
    path = problem(tmp_path, {"simulator": "python", "file": "counting.py"})
    results = in_fresh_process(evaluate, path, [TRUE, [10.0, 195.0, 100.0], OTHER])
    assert [r[1] for r in results] == ["ok", "failed", "ok"]
    message = results[1][2]
    assert "counting.py: simulate raised RuntimeError: b_pA out of the model's range" in message
    assert results[1][0] == [100.0] * 4  # the penalty in every component
    assert (tmp_path / "builds.log").read_text() == "built\n"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def build(spec):\n    return None\n", "defines no function simulate: define simulate("),
        ("import not_a_module\n", "cannot import it (ModuleNotFoundError"),
        (
            "def build(spec):\n    raise ValueError('no such cell')\n"
            "def simulate(model, values, sweep):\n    return [0.0]\n",
            "build raised ValueError: no such cell",
        ),
        (
            "def build(spec):\n    return None\n"
            "def simulate(model, values, sweep):\n    return [0.0] * 100\n",
            "the trace has 100 samples, expected 1501",
        ),
        (
            "def build(spec):\n    return None\n"
            "def simulate(model, values, sweep):\n    return [0.0] * 1501, ['spike']\n",
            "the spike times are not numbers",
        ),
    ],
    ids=["no-simulate", "import-error", "build-raises", "wrong-length", "bad-spike-times"],
)
def test_model_file_mistakes_are_one_line_at_setup(tmp_path, source, expected):
    write(tmp_path, "broken.py", source)
    path = problem(tmp_path, {"simulator": "python", "file": "broken.py"})
    message = in_fresh_process(setup_error, path)
    assert message is not None and expected in message, message
    assert "broken.py" in message and "\n" not in message


def test_python_problems_need_no_neuron_fields_and_refuse_hoc_targets(tmp_path):
    write(tmp_path, "adex_model.py", NEST_MODEL)
    model = {"simulator": "python", "file": "adex_model.py"}
    # no stimulus, recording, v_init or hoc: sweeps from protocol.sweeps
    spec = load_problem(problem(tmp_path, model))
    assert spec.protocol.sweeps == 2 and spec.model.build == "build"
    # a biochemical time scale: dt of a minute, a target sampled every few minutes
    slow = {"tstop_ms": 600000.0, "dt_ms": 60000.0, "sweeps": 1}
    target = {"regenerate": True, "sampling_rate_hz": 1000 / 120000}
    assert load_problem(problem(tmp_path, model, protocol=slow, target=target)).protocol
    targeted = [{**p, "hoc": "soma.gl"} if k == 0 else p for k, p in enumerate(
        load_problem(problem(tmp_path, model)).model_dump()["parameters"])]  # fmt: skip
    with pytest.raises(SpecError, match="g_L_nS have hoc or section targets"):
        load_problem(problem(tmp_path, model, parameters=targeted))
    with pytest.raises(SpecError, match="model.file: file .*nope.py does not exist"):
        load_problem(problem(tmp_path, {"simulator": "python", "file": "nope.py"}))
