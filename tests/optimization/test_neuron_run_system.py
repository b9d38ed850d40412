"""A NEURON model runs as NEURON's own ``h.run()`` runs it: models that redefine ``init()``
(the zero-net-current ``e_pas`` rule), ``advance()``, or read ``tstop`` and ``v_init`` in hoc
give, bitwise, the trace plain NEURON gives them in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest

from neuroptimus.optimization.problem.problem_file import parse_problem
from neuroptimus.optimization.simulators import create_simulator

SOMA = """\
create soma
soma { L = 20  diam = 20  insert hh  insert pas  g_pas = 1e-4  e_pas = -70 }
"""

# ModelDB's usual start at rest: e_pas chosen so that the net current is zero at v_init.
CUSTOM_INIT = (
    SOMA
    + """\
proc init() {
    finitialize(v_init)
    soma { e_pas = v + (ina + ik + il_hh) / g_pas }
    fcurrent()
}
"""
)

# A current changed every step by the model's own advance().
CUSTOM_ADVANCE = (
    SOMA
    + """\
objref wobble
soma wobble = new IClamp(0.5)
wobble.del = 0
wobble.dur = 1e9
proc advance() {
    wobble.amp = 0.05 * sin(t / 3)
    fadvance()
}
"""
)

# tstop and v_init read in hoc when the run initializes (no procedure redefined).
READS_TSTOP = (
    SOMA
    + """\
objref ramp, handler
soma ramp = new IClamp(0.5)
ramp.amp = 0.15
handler = new FInitializeHandler("ramp.del = tstop / 4  ramp.dur = tstop / 2  e_pas = v_init")
"""
)

# A run() of its own: the cell starts 5 mV below v_init (recordings restarted there).
CUSTOM_RUN = (
    SOMA
    + """\
proc run() {
    running_ = 1
    stdinit()
    forall { v = v_init - 5 }
    fcurrent()
    frecord_init()
    continuerun(tstop)
}
"""
)

MODELS = {
    "custom_init": CUSTOM_INIT,
    "custom_advance": CUSTOM_ADVANCE,
    "reads_tstop": READS_TSTOP,
    "custom_run": CUSTOM_RUN,
}
# How the sweeps run: psolve where stdrun's run, continuerun, step and advance are kept.
WAYS = {"custom_init": "psolve", "custom_advance": "steps", "reads_tstop": "psolve",
        "custom_run": "run"}  # fmt: skip

# Plain NEURON: the model, the problem's clamp and recording, then h.run() — or, to show the
# test can fail, what a bare finitialize and psolve give (hoc's tstop, v_init untouched).
PLAIN_NEURON = """\
import sys
import numpy as np
from neuron import h

model, way, gnabar, g_pas, celsius, out = sys.argv[1:]
h.load_file("stdrun.hoc")
h.load_file(model)
if celsius != "model":
    h.celsius = float(celsius)
h.soma.gnabar_hh = float(gnabar)
h.soma.g_pas = float(g_pas)
clamp = h.IClamp(h.soma(0.5))
clamp.delay, clamp.dur, clamp.amp = 10, 30, 0.1
vector = h.Vector()
if way == "cvode":
    h.cvode_active(1)
    h.cvode.atol(1e-4)
    times = h.Vector([k * 0.1 for k in range(601)])
    vector.record(h.soma(0.5)._ref_v, times)
else:
    vector.record(h.soma(0.5)._ref_v)
h.dt = 0.025
if way in ("run", "cvode"):
    h.tstop, h.steps_per_ms, h.v_init = 60, 40, -60
    h.run()
else:  # tstop and v_init stay NEURON's defaults in hoc
    context = h.ParallelContext()
    context.set_maxstep(10)
    h.finitialize(-60)
    context.psolve(60)
np.save(out, vector.as_numpy())
"""

VALUES = {"gnabar": 0.15, "g_pas": 2e-4}


def _spec(folder, name, **protocol):
    (folder / "model.hoc").write_text(MODELS[name])
    data = {
        "name": name.replace("_", "-"),
        "model": {"hoc": "model.hoc"},
        "parameters": [
            {
                "name": "gnabar",
                "hoc": "soma.gnabar_hh",
                "lower": 0.05,
                "upper": 0.3,
                "true_value": 0.12,
            },
            {
                "name": "g_pas",
                "hoc": "soma.g_pas",
                "lower": 1e-5,
                "upper": 1e-3,
                "true_value": 1e-4,
            },
        ],  # fmt: skip
        "protocol": {
            "tstop_ms": 60,
            "dt_ms": 0.025,
            "v_init_mV": -60,
            "stimulus": {"type": "IClamp", "amplitudes": [0.1], "delay_ms": 10, "duration_ms": 30},
            **protocol,
        },
        "target": {"regenerate": True, "sampling_rate_hz": 40000},
        "costs": {"functions": [{"name": "MSE"}]},
    }
    return parse_problem(data, base_dir=str(folder))


def _simulate(spec, vectors):
    simulator = create_simulator(spec)
    simulator.setup()
    return [simulator.run(values)[0].values for values in vectors]


def _way(spec):
    simulator = create_simulator(spec)
    simulator.setup()
    return simulator._way


def _ours(spec, vectors):
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_simulate, spec, vectors).result()


def _plain_neuron(folder, way, celsius="model"):
    out = folder / f"{way}.npy"
    env = {**os.environ, "NEURON_MODULE_OPTIONS": "-nogui"}
    arguments = [str(VALUES["gnabar"]), str(VALUES["g_pas"]), str(celsius), str(out)]
    subprocess.run(
        [sys.executable, "-c", PLAIN_NEURON, str(folder / "model.hoc"), way, *arguments],
        check=True, cwd=folder, env=env, capture_output=True,
    )  # fmt: skip
    return np.load(out)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_model_runs_as_h_run_runs_it(tmp_path, name):
    spec = _spec(tmp_path, name)
    other = {"gnabar": 0.25, "g_pas": 5e-4}
    # the vector alone, and after another one in the same process
    (alone,), (_, after) = _ours(spec, [VALUES]), _ours(spec, [other, VALUES])
    run = _plain_neuron(tmp_path, "run")
    assert np.array_equal(alone, run)
    assert np.array_equal(after, run)
    # a bare finitialize and psolve give another trace: the model depends on the run system
    assert not np.array_equal(_plain_neuron(tmp_path, "finitialize"), run)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        assert pool.submit(_way, spec).result() == WAYS[name]


def test_protocol_celsius_is_the_temperature_neuron_simulates_at(tmp_path):
    """hh's rates scale with celsius: the problem's temperature is the one h.run() gets."""
    spec = _spec(tmp_path, "custom_init", celsius=16.3)
    (warm,) = _ours(spec, [VALUES])
    assert np.array_equal(warm, _plain_neuron(tmp_path, "run", celsius=16.3))
    assert not np.array_equal(warm, _plain_neuron(tmp_path, "run"))  # NEURON's 6.3 °C


def test_a_variable_step_run_is_h_run_with_cvode(tmp_path):
    """protocol.cvode with a tolerance: NEURON's CVODE, recorded at the target's rate."""
    spec = _spec(tmp_path, "custom_init", cvode=True, atol=1e-4)
    target = spec.target.model_copy(update={"sampling_rate_hz": 10000})
    spec = spec.model_copy(update={"target": target})
    (variable,) = _ours(spec, [VALUES])
    assert len(variable) == 601  # 0 to 60 ms every 0.1 ms
    assert np.array_equal(variable, _plain_neuron(tmp_path, "cvode"))
    fixed = _plain_neuron(tmp_path, "run")[::4]
    assert not np.array_equal(variable, fixed)  # another integrator …
    spikes = [np.sum((trace[1:] > 0) & (trace[:-1] <= 0)) for trace in (variable, fixed)]
    assert spikes[0] == spikes[1] > 0  # … of the same cell
