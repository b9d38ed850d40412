"""NEURON in-process: a user's hoc or Python model with step or waveform stimuli and one
recorded variable."""

from __future__ import annotations

import math
import os
from pathlib import Path

from neuroptimus.optimization.problem.trace_files import TraceFileError, read_waveform
from neuroptimus.optimization.simulators.base import ModelError, Simulator, Trace, VectorError
from neuroptimus.optimization.simulators.mechanisms import (
    coreneuron_library,
    for_coreneuron,
    load_problem_mechanisms,
)
from neuroptimus.optimization.simulators.neuron_model import (
    ModelState,
    find_section,
    load_entry_file,
    load_user_function,
    make_setter,
)
from neuroptimus.optimization.simulators.neuron_run import (
    count_stdrun_calls,
    probe,
    run_sweep,
    way_to_run,
)
from neuroptimus.optimization.simulators.sampled import check_point


class NeuronSimulator(Simulator):
    """Builds the model once (entry file, stimulus, recording, parameter setters, user
    function) and checks it at the setup check's values, then per evaluation puts the model
    back as built, applies the values and runs each sweep as ``h.run()`` would.

    NEURON holds global state, so a process hosts one model: run one simulator per process.
    A user function that deletes a section of the model fails that individual and ruins the
    process's model (``ruined``): NEURON cannot rebuild the section there.
    """

    def setup(self) -> None:
        from neuron import h  # noqa: PLC0415 (lazy: NEURON loads only when a model is built)

        spec, protocol = self.spec, self.spec.protocol
        library = load_problem_mechanisms(spec)  # a data:// folder, the patches, compiled once
        count_stdrun_calls(h)  # before the model, so that its redefinitions replace them
        entry = spec.local_path(spec.model.hoc)
        load_entry_file(h, entry)
        self._h = h
        if protocol.celsius is not None:  # before the snapshot: put back with the model
            h.celsius = protocol.celsius
        self._clamp = self._make_stimulus()
        self._factor = round(1000 / (protocol.dt_ms * spec.comparison_rate_hz))
        self._vector = self._make_recording()
        self._waveforms = self._read_waveforms()
        self._playing = None
        self._setters = {
            p.name: make_setter(h, p, entry.name)
            for p in spec.parameters
            if not p.applied_by_model_file
        }
        self._user_function = None
        if spec.model.user_function:
            self._function_file = spec.local_path(spec.model.user_function.file)
            self._user_function = load_user_function(
                h, spec.model.user_function, self._function_file
            )
        h.cvode_active(1 if protocol.cvode else 0)
        if protocol.atol is not None:
            h.cvode.atol(protocol.atol)
        if protocol.rtol is not None:
            h.cvode.rtol(protocol.rtol)
        self._pc = h.ParallelContext()
        self._pc.set_maxstep(10)
        self._state = ModelState(h)
        self._way = self._check_model()
        if for_coreneuron(spec):
            self._use_coreneuron(library)
        self._ready = True

    def _use_coreneuron(self, library: Path | None) -> None:
        """Sweeps integrated by CoreNEURON from here on (``psolve`` hands the model over and
        takes its state back), each in one call, so the time limit is checked after each sweep
        (a hung one is still ended by the worker's watchdog): its library of the problem's
        mechanisms, or its own where the model has none."""
        if self._way != "psolve":
            redefined = {
                "run": "run()",
                "continuerun": "continuerun()",
                "steps": "step() or advance()",
            }
            raise ModelError(
                f"model.engine coreneuron: the model redefines stdrun's {redefined[self._way]}, "
                "which CoreNEURON cannot call at each step; use engine neuron"
            )
        from neuron import coreneuron  # noqa: PLC0415 (lazy: NEURON loads only when a model is built)

        if library is not None:  # read when psolve first loads CoreNEURON
            os.environ["CORENEURONLIB"] = str(coreneuron_library(library))
        self._h.CVode().cache_efficient(1)
        coreneuron.enable = True
        coreneuron.verbose = 0
        self._way = "coreneuron"

    def _check_model(self) -> str:
        """Apply the setup check's point (the true values, else the middle of the bounds)
        and start a run there: what fails then fails for every vector, so it is reported at
        setup. Returns how sweeps run (see neuron_run.way_to_run)."""
        where = "at the setup check's values (the true values, else the middle of the bounds)"
        try:
            self._apply(check_point(self.spec))
        except VectorError as error:
            raise ModelError(f"{error} ({where})") from None
        h, dt = self._h, self.spec.protocol.dt_ms
        self._set_run_controls()
        try:
            calls = probe(h)
        except Exception as error:
            raise ModelError(
                f"the model cannot run {where}: h.run() raised {type(error).__name__}: {error}"
            ) from None
        if h.dt != dt and not self.spec.protocol.cvode:
            raise ModelError(
                f"the model changes dt to {h.dt:g} ms when it initializes or runs: give "
                f"protocol.dt_ms {h.dt:g} (it is {dt:g})"
            )
        self._state.restore()
        return way_to_run(calls, self.spec.protocol.cvode)

    def _apply(self, parameters: dict[str, float]) -> None:
        """The vector's values, through the setters and then the user function; anything
        that fails is this vector's VectorError."""
        values = [float(parameters[p.name]) for p in self.spec.parameters]
        for p, value in zip(self.spec.parameters, values, strict=True):
            if not math.isfinite(value):
                raise VectorError(f"parameter {p.name} is {value}")
        for name, setter in self._setters.items():
            try:
                setter(float(parameters[name]))
            except VectorError:
                raise
            except Exception as error:
                message = f"{type(error).__name__}: {error}"
                raise VectorError(f"parameter {name} = {parameters[name]!r}: {message}") from None
        if not self._user_function:
            return
        where = f"model.user_function: {self.spec.model.user_function.function} in "
        where += str(self._function_file)
        try:
            # whatever section the model left accessed stays accessed (UC6 depends on it)
            self._user_function(self._h, values)
        except Exception as error:
            raise VectorError(f"{where} raised {type(error).__name__}: {error}") from None
        deleted = self._state.deleted_section()
        if deleted is not None:
            self.ruined = f"{where} deleted section {deleted}"
            raise VectorError(f"{self.ruined}, which NEURON cannot rebuild")

    def _read_waveforms(self) -> list:
        stimulus, protocol = self.spec.protocol.stimulus, self.spec.protocol
        vectors = []
        for name in (stimulus.waveforms if stimulus else None) or []:
            try:
                values = read_waveform(
                    self.spec.local_path(name), protocol.tstop_ms, protocol.dt_ms
                )
            except TraceFileError as error:
                raise ModelError(str(error)) from None
            vectors.append(self._h.Vector(values))
        return vectors

    def _section(self, name: str):
        return find_section(self._h, name)

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
        if self.spec.protocol.cvode:  # at the target's sample times, not at CVODE's steps
            step, tstop = 1000 / self.spec.comparison_rate_hz, self.spec.protocol.tstop_ms
            # times, not an interval: an interval's last sample is lost to rounding at tstop
            self._times = h.Vector([k * step for k in range(round(tstop / step) + 1)])
            vector.record(reference, self._times)
        else:
            vector.record(reference)
        return vector

    def run(self, parameters: dict[str, float], deadline: float | None = None) -> list[Trace]:
        if not self._ready:
            self.setup()
        if self.ruined:
            raise ModelError(
                f"{self.ruined} in an earlier evaluation, and NEURON cannot rebuild it in this "
                "process: the evaluations left need a fresh process"
            )
        # the model as built (the original reloads it for each evaluation)
        self._state.restore()
        self._apply(parameters)
        stimulus = self.spec.protocol.stimulus
        if self._waveforms:
            return [self._sweep(None, deadline, waveform) for waveform in self._waveforms]
        amplitudes = (stimulus.amplitudes if stimulus else None) or [None]
        return [self._sweep(amplitude, deadline) for amplitude in amplitudes]

    def _set_run_controls(self) -> None:
        """tstop, v_init and dt in hoc, as h.run() reads them (and a model may); steps_per_ms
        so that stdrun's setdt() keeps dt."""
        h, protocol = self._h, self.spec.protocol
        h.tstop, h.v_init = protocol.tstop_ms, protocol.v_init_mV
        h.dt, h.steps_per_ms = protocol.dt_ms, 1 / protocol.dt_ms

    def _play(self, waveform) -> None:
        """One sample per step into the clamp's amplitude (the original's custom stimulus)."""
        if self._playing is not waveform:
            if self._playing is not None:
                self._playing.play_remove()
            waveform.play(self._clamp._ref_amp, self.spec.protocol.dt_ms)
            self._playing = waveform

    def _sweep(self, amplitude: float | None, deadline: float | None, waveform=None) -> Trace:
        h, protocol = self._h, self.spec.protocol
        if waveform is not None:
            self._play(waveform)
        if amplitude is not None:
            if protocol.stimulus.type == "IClamp":
                self._clamp.amp = amplitude
            else:
                self._clamp.amp2 = amplitude
        self._set_run_controls()
        run_sweep(h, self._pc.psolve, protocol.tstop_ms, deadline, self._way)
        values = self._vector.as_numpy()
        dt = protocol.dt_ms
        if protocol.cvode:  # recorded at the sample times
            return Trace(values.copy(), dt * self._factor)
        if protocol.recording.variable == "clamp_current":
            # A clamp's current is computed over each step, so sample k belongs to the middle
            # of step k; the value at t = 0 (before any step) is undefined and dropped.
            return Trace(values[1 :: self._factor].copy(), dt * self._factor, dt / 2)
        return Trace(values[:: self._factor].copy(), dt * self._factor)
