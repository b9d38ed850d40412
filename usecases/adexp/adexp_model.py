"""Use case 5 in-process: an adaptive exponential integrate-and-fire neuron (NEST's
``aeif_cond_exp``) under one of four current steps per sweep.

The ten parameters mean what they mean in the original tool's external script for this use
case (``teststeps_optim5.py``), so that both ways of running it score the same numbers:
the leak conductance is given in µS, the capacitance follows from the membrane time constant
(C_m = τ_m · g_L), the reset is an offset below the threshold (so V_reset ≤ V_th < V_peak for
every point of the bounds) and b is given in nA. The trace is recorded as that script writes
it: a 0.2 ms voltmeter, a leading sample (0 ms, −60 mV), voltages rounded to 0.01 mV and spike
times to 0.01 ms (its ``%.2f`` files).
"""

from __future__ import annotations

import os

import numpy as np

STEPS_PA = (150.0, 200.0, 300.0, 600.0)  # one per sweep
STEP_ON_MS, STEP_OFF_MS = 100.0, 900.0
V_INIT_MV = -60.0
RECORD_INTERVAL_MS = 0.2
SIMULATED_MS = 1100.1  # the voltmeter's last sample is then at 1100 ms
# fixed by the script (synaptic settings of a cell that gets no synapses here)
FIXED = {"E_ex": 0.0, "E_in": -70.0, "tau_syn_ex": 3.0, "tau_syn_in": 1.5}


def neuron_parameters(values: dict[str, float]) -> dict[str, float]:
    """NEST's aeif_cond_exp parameters for one point (names as in the problem file)."""
    g_leak_ns = values["g_L_uS"] * 1000
    threshold = values["V_th_mV"]
    return {
        **FIXED,
        "g_L": g_leak_ns,
        "C_m": values["tau_m_ms"] * g_leak_ns,  # ms · nS = pF
        "E_L": values["E_L_mV"],
        "V_reset": threshold - values["Vth_minus_Vreset_mV"],
        "V_th": threshold,
        "t_ref": values["t_ref_ms"],
        "a": values["a_nS"],
        "b": values["b_nA"] * 1000,  # pA
        "Delta_T": values["Delta_T_mV"],
        "tau_w": values["tau_w_ms"],
        "V_peak": threshold + 5 * values["Delta_T_mV"],
    }


def build(spec: dict) -> dict:
    """Once per worker process: NEST imported (its banner and messages kept quiet)."""
    os.environ.setdefault("PYNEST_QUIET", "1")  # no banner in the worker's output
    import nest  # noqa: PLC0415 (lazy: NEST loads only in the process that simulates)

    nest.verbosity = nest.VerbosityLevel.ERROR
    return {"nest": nest}


def _two_decimals(values: np.ndarray) -> np.ndarray:
    # exactly what "%.2f" text gives back (np.round may differ at a tie)
    return np.array([float(f"{v:.2f}") for v in values])


def simulate(model: dict, values: dict[str, float], sweep: int) -> tuple[np.ndarray, np.ndarray]:
    """One sweep: the step of STEPS_PA[sweep] from 100 to 900 ms; (trace, spike times)."""
    nest = model["nest"]
    nest.ResetKernel()  # NEST keeps every node it created: start each sweep from nothing
    nest.verbosity = nest.VerbosityLevel.ERROR
    cell = nest.Create("aeif_cond_exp", params=neuron_parameters(values))
    cell.set(V_m=V_INIT_MV)
    step = nest.Create(
        "step_current_generator",
        params={
            "amplitude_times": [STEP_ON_MS, STEP_OFF_MS],
            "amplitude_values": [STEPS_PA[sweep], 0.0],
        },
    )
    voltmeter = nest.Create("voltmeter", params={"interval": RECORD_INTERVAL_MS})
    recorder = nest.Create("spike_recorder")
    nest.Connect(step, cell)
    nest.Connect(voltmeter, cell)
    nest.Connect(cell, recorder)
    try:
        nest.Simulate(SIMULATED_MS)
        voltages = np.concatenate([[V_INIT_MV], voltmeter.get("events")["V_m"]])
    except nest.NESTError:
        # the script's stand-in for a simulation NEST gives up on (a numerical instability):
        # a ramp that scores badly, so the optimizer moves away
        voltages = np.linspace(-100.0, 0.0, 5501)
    spikes = np.asarray(recorder.get("events")["times"], dtype=float)
    return _two_decimals(voltages), _two_decimals(spikes)
