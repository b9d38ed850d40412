"""NEURON in-process: a user's hoc model with a step stimulus and one recorded variable."""

from __future__ import annotations

import re
import time
from pathlib import Path

from optimization.data import fetch
from optimization.simulators.base import ModelError, SimulationTimeout, Simulator, Trace
from optimization.simulators.mechanisms import load_problem_mechanisms
from optimization.spec import ProblemSpec

# Simulated milliseconds between deadline checks: small enough to stop a hung run quickly,
# large enough that the check costs nothing.
_SLICE_MS = 100.0


def _resolve_file(spec: ProblemSpec, value: str) -> Path:
    return fetch(value) if value.startswith("data://") else Path(spec.resolve(value))


class NeuronSimulator(Simulator):
    """Loads the hoc file once, then sets parameters by hoc assignment and runs each sweep.

    NEURON holds global state, so a process hosts one model: run one simulator per process.
    """

    def __init__(self, spec: ProblemSpec) -> None:
        self.spec = spec
        self._ready = False

    def __getstate__(self) -> dict:
        return {"spec": self.spec, "_ready": False}

    def setup(self) -> None:
        from neuron import h

        spec, protocol = self.spec, self.spec.protocol
        load_problem_mechanisms(spec)  # a data:// folder, the patches, compiled once
        h.load_file("stdrun.hoc")
        hoc = _resolve_file(spec, spec.model.hoc)
        try:  # a hoc error raises (NEURON prints where); a missing file returns 0
            loaded = h.load_file(1, str(hoc))
        except RuntimeError as error:
            raise ModelError(f"NEURON could not load the model file {hoc}: {error}") from None
        if not loaded:
            raise ModelError(f"NEURON could not load the model file {hoc}")
        self._h = h
        self._clamp = self._make_stimulus()
        self._vector = self._make_recording()
        self._assignments = {p.name: p.hoc for p in spec.parameters}
        for name, target in self._assignments.items():
            # execute1(…, 0): a missing target is reported here, not printed by NEURON
            if not h.execute1(f"{target} = {target}", 0):
                raise ModelError(
                    f"parameter {name}: hoc target {target!r} does not exist in {hoc.name}"
                )
        h.cvode_active(0)
        self._pc = h.ParallelContext()
        self._pc.set_maxstep(10)
        self._factor = round(1000 / (protocol.dt_ms * spec.target.sampling_rate_hz))
        self._ready = True

    def _section(self, name: str):
        """A section by hoc name: ``soma``, ``dend[3]`` or ``cell.soma[0]``."""
        obj = self._h
        try:
            for attr, index in re.findall(r"(\w+)(?:\[(\d+)\])?", name):
                obj = getattr(obj, attr)
                if index:
                    obj = obj[int(index)]
        except (AttributeError, IndexError, TypeError, LookupError):
            obj = None
        if obj is None or not hasattr(obj, "nseg"):
            raise ModelError(f"section {name!r} does not exist in the model")
        return obj

    def _make_stimulus(self):
        stimulus, protocol, h = self.spec.protocol.stimulus, self.spec.protocol, self._h
        if stimulus is None:
            return None
        segment = self._section(stimulus.section)(stimulus.position)
        if stimulus.type == "IClamp":
            clamp = h.IClamp(segment)
            clamp.delay, clamp.dur = stimulus.delay_ms, stimulus.duration_ms
            return clamp
        holding = protocol.v_init_mV if stimulus.holding_mV is None else stimulus.holding_mV
        clamp = h.SEClamp(segment)
        clamp.rs = stimulus.series_resistance_MOhm
        clamp.dur1, clamp.amp1 = stimulus.delay_ms, holding
        clamp.dur2 = stimulus.duration_ms
        clamp.dur3, clamp.amp3 = 1e9, holding
        return clamp

    def _make_recording(self):
        recording, h = self.spec.protocol.recording, self._h
        vector = h.Vector()
        if recording.variable == "clamp_current":
            vector.record(self._clamp._ref_i)
            return vector
        segment = self._section(recording.section)(recording.position)
        try:
            reference = getattr(segment, f"_ref_{recording.variable}")
        except (AttributeError, NameError):
            raise ModelError(
                f"cannot record {recording.variable!r} at {recording.section}"
                f"({recording.position}): no such range variable there"
            ) from None
        vector.record(reference)
        return vector

    def run(self, parameters: dict[str, float], deadline: float | None = None) -> list[Trace]:
        if not self._ready:
            self.setup()
        h, protocol = self._h, self.spec.protocol
        for name, value in parameters.items():
            if not h(f"{self._assignments[name]} = {float(value)!r}"):
                raise ModelError(f"could not set {name} = {value!r}")
        amplitudes = protocol.stimulus.amplitudes if protocol.stimulus else [None]
        return [self._sweep(amplitude, deadline) for amplitude in amplitudes]

    def _sweep(self, amplitude: float | None, deadline: float | None) -> Trace:
        h, protocol = self._h, self.spec.protocol
        if amplitude is not None:
            if protocol.stimulus.type == "IClamp":
                self._clamp.amp = amplitude
            else:
                self._clamp.amp2 = amplitude
        h.dt = protocol.dt_ms
        h.finitialize(protocol.v_init_mV)
        t = 0.0
        while t < protocol.tstop_ms:
            t = min(t + _SLICE_MS, protocol.tstop_ms)
            self._pc.psolve(t)
            if deadline is not None and time.monotonic() > deadline:
                raise SimulationTimeout(f"simulation passed its time limit at t = {h.t:g} ms")
        values = self._vector.as_numpy()
        dt = protocol.dt_ms
        if protocol.recording.variable == "clamp_current":
            # A clamp's current is computed over each step, so sample k belongs to the middle
            # of step k; the value at t = 0 (before any step) is undefined and dropped.
            return Trace(values[1 :: self._factor].copy(), dt * self._factor, dt / 2)
        return Trace(values[:: self._factor].copy(), dt * self._factor)
