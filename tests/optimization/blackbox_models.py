"""Models of our own for the python and external simulators, written into a test's folder:
a NEST AdEx neuron (in-process and as a script of the original file protocol), a JSON-protocol
script and broken variants. The texts are the files a user would write."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

# An adaptive exponential integrate-and-fire neuron (NEST aeif_cond_exp) under a current step
# per sweep; three fitted parameters: leak conductance, spike-triggered adaptation, its time
# constant. NEST keeps every node it created: simulate resets the kernel first.
NEST_MODEL = """
import nest
import numpy as np

STEPS_PA = [300.0, 600.0]
V_INIT = -65.0


def build(spec):
    nest.verbosity = nest.VerbosityLevel.ERROR
    protocol = spec["protocol"]
    return {"tstop": protocol["tstop_ms"], "dt": protocol["dt_ms"]}


def simulate(model, values, sweep):
    nest.ResetKernel()  # a fresh kernel per sweep: no node of the last run survives
    cell = nest.Create("aeif_cond_exp", params={
        "g_L": values["g_L_nS"], "b": values["b_pA"], "tau_w": values["tau_w_ms"],
        "C_m": 200.0, "E_L": -65.0, "V_th": -50.0, "V_reset": -58.0, "Delta_T": 2.0,
        "V_peak": 0.0, "a": 2.0, "V_m": V_INIT,
    })
    step = nest.Create("step_current_generator", params={
        "amplitude_times": [50.0, 250.0], "amplitude_values": [STEPS_PA[sweep], 0.0],
    })
    voltmeter = nest.Create("voltmeter", params={"interval": model["dt"]})
    spikes = nest.Create("spike_recorder")
    nest.Connect(step, cell)
    nest.Connect(voltmeter, cell)
    nest.Connect(cell, spikes)
    nest.Simulate(model["tstop"] + model["dt"])
    events = voltmeter.get("events")
    # the voltmeter's first sample is at t = dt: t = 0 is the initial voltage
    trace = np.concatenate([[V_INIT], events["V_m"][events["times"] <= model["tstop"]]])
    return trace, spikes.get("events")["times"]
"""

# The same model as a script of the original tool's file protocol (UC5's way): it imports
# adex_model.py, which the model folder holds beside it.
NEST_SCRIPT = """
import sys

import numpy as np

import adex_model

ident = sys.argv[1]
values = np.genfromtxt(f"params{ident}.param")
names = ["g_L_nS", "b_pA", "tau_w_ms"]
model = adex_model.build({"protocol": {"tstop_ms": 300.0, "dt_ms": 0.2}})
trace, spikes = adex_model.simulate(model, dict(zip(names, values[:3])), int(values[3]))
time_ms = np.arange(len(trace)) * 0.2
np.savetxt(f"trace{ident}.dat", np.column_stack([time_ms, trace]), fmt="%.17g")
np.savetxt(f"spike{ident}.dat", spikes, fmt="%.17g")
"""

# A fast script of the original protocol (no NEST, no numpy) that breaks in one way (KIND)
# when BROKEN holds: exit code 3, no trace file, a short trace, a spike file that is not
# numbers, or a hang with a child process (its pid written to child.pid in the model folder).
FAKE_SCRIPT = """
import math, os, subprocess, sys, time

KIND = {kind!r}
ident = sys.argv[1]
*params, sweep = [float(x) for x in open(f"params{{ident}}.param").read().split()]
trace = [-65 + params[0] * math.sin(i / 50) + sweep for i in range(1501)]
spikes = [10.0 * (k + 1) for k in range(int(params[1] // 50))]
BROKEN = {when}
print("simulating", ident, flush=True)
if BROKEN and KIND == "exit":
    print("model exploded: g_L too large", file=sys.stderr)
    sys.exit(3)
if BROKEN and KIND == "hang":
    child = subprocess.Popen(["sleep", "300"])
    folder = os.environ["NEUROPTIMUS_MODEL_FOLDER"]
    with open(os.path.join(folder, "child.pid"), "w") as file:
        file.write(str(child.pid))
    print("waiting for ever", file=sys.stderr, flush=True)
    time.sleep(300)
if BROKEN and KIND == "short":
    trace = trace[:100]
if not (BROKEN and KIND == "no_output"):
    with open(f"trace{{ident}}.dat", "w") as file:
        file.writelines(f"{{0.2 * i:.1f}} {{v!r}}\\n" for i, v in enumerate(trace))
with open(f"spike{{ident}}.dat", "w") as file:
    if BROKEN and KIND == "bad_spikes":
        file.write("12.5\\nspike!\\n")
    else:
        file.writelines(f"{{t}}\\n" for t in spikes)
"""


def fake_script(folder: Path, kind: str = "none", when: str = "False") -> Path:
    """FAKE_SCRIPT as model.py in ``folder``; ``when`` is a condition on ``params``."""
    return write(folder, "model.py", FAKE_SCRIPT.format(kind=kind, when=when))


PARAMETERS = [
    {"name": "g_L_nS", "lower": 5.0, "upper": 30.0, "true_value": 10.0},
    {"name": "b_pA", "lower": 0.0, "upper": 200.0, "true_value": 60.0},
    {"name": "tau_w_ms", "lower": 20.0, "upper": 300.0, "true_value": 100.0},
]

COSTS = {
    "functions": [
        {"name": "MSE (excl. spikes)", "weight": 0.5},
        {"name": "Spike count", "weight": 0.5},
    ],
    "spike_threshold_mV": 0.0,
    "spike_window_samples": 5,
}


def problem(folder: Path, model: dict, name: str = "blackbox", **changes) -> Path:
    """A problem file in ``folder`` fitting ``model`` to its own trace at the true values
    (300 ms, dt 0.2 ms, two sweeps), written as YAML; ``changes`` replace top-level keys."""
    data = {
        "name": name,
        "model": model,
        "parameters": PARAMETERS,
        "protocol": {"tstop_ms": 300.0, "dt_ms": 0.2, "sweeps": 2},
        "target": {"regenerate": True, "sampling_rate_hz": 5000},
        "costs": COSTS,
        "algorithm": {"name": "random", "population": 4, "generations": 2},
        "evaluation": {"timeout_s": 60},
        **changes,
    }
    path = folder / "problem.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# Run in a spawned process (a process hosts one model): the setup check, then evaluations.


def setup_error(path: Path) -> str | None:
    """The one-line error of the run's setup (preflight) for the problem file, or None."""
    from neuroptimus.optimization.errors import UserError
    from neuroptimus.optimization.loop.preflight import prepare_here
    from neuroptimus.optimization.problem.problem_file import load_problem

    try:
        prepare_here(load_problem(path))
    except UserError as error:
        return str(error)
    return None


def evaluate(path: Path, vectors: list[list[float]], check: bool = True) -> list[tuple]:
    """(errors, status name, message, spike counts per sweep) of each vector, in order, by
    one simulator; ``check``: through the setup's check first (else no check run)."""
    import numpy as np

    from neuroptimus.optimization.evaluation.individual import STATUSES, evaluate_one, simulator_for
    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.optimization.loop.preflight import prepare_here
    from neuroptimus.optimization.problem.problem_file import load_problem

    spec = load_problem(path)
    problem = prepare_here(spec) if check else build_problem(spec)
    results = []
    for vector in vectors:
        errors, status, message, _ = evaluate_one(problem, np.array(vector, dtype=float))
        spikes = []
        if status == 0:
            traces = simulator_for(problem).run(problem.space.as_dict(np.array(vector)))
            spikes = [len(t.spike_times_ms) if t.spike_times_ms is not None else None
                      for t in traces]  # fmt: skip
        results.append((errors.tolist(), STATUSES[status], message, spikes))
    return results


def in_fresh_process(function, *args):
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


JSON_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "json_protocol"


def slow_json_example(folder: Path, wrapper: str, population: int, generations: int, seed: int):
    """The JSON-protocol example model run through ``wrapper`` (a script that logs and sleeps,
    then runs lif_model.py), fitted by CMA-ES for exactly ``generations``; its problem file."""
    import shutil

    shutil.copy(JSON_EXAMPLE / "lif_model.py", folder / "lif_model.py")
    (folder / "slow_wrapper.py").write_text(wrapper)
    data = yaml.safe_load((JSON_EXAMPLE / "problem.yaml").read_text())
    data["model"]["command"] = ["python3", "slow_wrapper.py"]
    data["algorithm"] = {"name": "cmaes", "population": population, "generations": generations}
    data["seed"] = seed
    path = folder / "problem.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
