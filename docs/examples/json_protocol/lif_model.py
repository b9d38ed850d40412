"""A leaky integrate-and-fire neuron as an external program of the JSON protocol.

Neuroptimus runs `python3 lif_model.py params.json` once per sweep in a temporary folder:
params.json holds the parameter values by name, the sweep index, the protocol's tstop_ms
and dt_ms, and the stimulus amplitudes (nA). The program writes trace.npz: `trace`, the
membrane voltage (mV) every dt_ms from t = 0, and `spike_times_ms`.
"""

import json
import sys

import numpy as np

E_L, V_THRESHOLD, V_RESET, V_SPIKE = -65.0, -50.0, -65.0, 20.0  # mV
DELAY_MS, DURATION_MS = 50.0, 200.0  # the step, as in problem.yaml's stimulus

with open(sys.argv[1]) as file:
    request = json.load(file)
g_leak = request["parameters"]["g_leak_uS"]  # 1/g: input resistance in MΩ
tau = request["parameters"]["tau_ms"]
amplitude = request["amplitudes"][request["sweep"]]  # nA
dt, tstop = request["dt_ms"], request["tstop_ms"]

steps = int(round(tstop / dt))
time_ms = np.arange(steps + 1) * dt
current = np.where((time_ms >= DELAY_MS) & (time_ms < DELAY_MS + DURATION_MS), amplitude, 0.0)
voltage = np.empty(steps + 1)
voltage[0] = v = E_L
spikes = []
for k in range(steps):  # forward Euler: dV/dt = (E_L - V + I/g) / tau
    v += dt * (E_L - v + current[k] / g_leak) / tau
    voltage[k + 1] = v
    if v >= V_THRESHOLD:  # a spike: drawn in the trace for one sample, then the reset
        spikes.append(time_ms[k + 1])
        voltage[k + 1], v = V_SPIKE, V_RESET

np.savez("trace.npz", trace=voltage, spike_times_ms=np.array(spikes))
