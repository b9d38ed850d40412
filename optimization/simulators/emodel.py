"""An e-model in NEURON, in-process: a cell from a morphology file (``morphology``), its
mechanisms and parameters on section lists, and one sweep per protocol.

What BluePyOpt's cell evaluator does per protocol (a fresh cell, its parameters, the stimuli
and recordings, ``h.run()``), done with one cell built once per process: every evaluation
applies the globals, the fixed values and then the free ones over the whole cell, and each
protocol adds its own clamps and recordings for its run only (a clamp left in place would
add its onset and offset events to CVODE's steps in the other protocols)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroptimus.optimization.problem.emodel_spec import (
    EModelProtocolSpec,
    FixedValue,
    LocationSpec,
    evaluate_distribution,
)
from neuroptimus.optimization.problem.model_spec import ParameterSpec
from neuroptimus.optimization.simulators.base import (
    ModelError,
    SimulationTimeout,
    Simulator,
    Trace,
    VectorError,
)
from neuroptimus.optimization.simulators.mechanisms import load_problem_mechanisms
from neuroptimus.optimization.simulators.morphology import build_cell, section_list
from neuroptimus.optimization.simulators.sampled import check_point


@dataclass(frozen=True)
class TimedTrace(Trace):
    """A recording at the variable time step's own times (``dt_ms`` is their mean step)."""

    times: np.ndarray | None = None

    @property
    def time_ms(self) -> np.ndarray:
        return self.times


class _Placement:
    """One value on a section list: per segment (range variables, cm, reversal potentials) or
    per section (Ra), uniform or by a distribution of the soma distance."""

    def __init__(self, h: Any, cell: Any, label: str, sections: str, prop: str,
                 expression: str | None) -> None:  # fmt: skip
        self.label, self.prop, self.expression = label, prop, expression
        self.sections = section_list(cell, sections)
        self.per_section = prop == "Ra"
        if self.per_section and expression:
            raise ModelError(f"{label}: Ra is one value per section; it takes no distribution")
        h.distance(0, 0.5, sec=cell.soma[0])  # the origin BluePyOpt's distances start from
        self.segments = [
            (segment, h.distance(1, segment.x, sec=section))
            for section in self.sections
            for segment in section
        ]
        for section in self.sections:
            target = section if self.per_section else section(0.5)
            if not hasattr(target, prop):
                raise ModelError(
                    f"{label}: section {section.name()} of {sections} has no {prop!r} (is its "
                    "mechanism inserted in model.insert?)"
                )

    def apply(self, value: float) -> None:
        if self.per_section:
            for section in self.sections:
                setattr(section, self.prop, value)
            return
        for segment, distance in self.segments:
            scaled = value
            if self.expression is not None:
                scaled = evaluate_distribution(self.expression, distance, value)
            setattr(segment, self.prop, scaled)


class EModelSimulator(Simulator):
    """Builds the cell once per process; runs every protocol per evaluation (see module)."""

    def setup(self) -> None:
        from neuron import h  # noqa: PLC0415 (lazy: NEURON loads only when a model is built)

        spec, model = self.spec, self.spec.model
        load_problem_mechanisms(spec)
        self._h = h
        self._cell = build_cell(
            h, spec.local_path(model.morphology), model.nseg_length_um, model.replace_axon,
            model.axon_stub_length_um,
        )  # fmt: skip
        for sections, mechanisms in model.insert.items():
            for mechanism in mechanisms:
                for section in section_list(self._cell, sections):
                    try:
                        section.insert(mechanism)
                    except ValueError:
                        raise ModelError(
                            f"model.insert.{sections}: no mechanism {mechanism!r} (is it in "
                            "model.mechanisms?)"
                        ) from None
        fixed = [(self._setter(f"model.fixed[{k}]", f), f.value) for k, f in enumerate(model.fixed)]
        self._fixed = fixed
        self._free = {p.name: self._setter(f"parameter {p.name}", p) for p in spec.parameters}
        self._locations = {
            (protocol.name, k): self._segment(stimulus.location, f"{protocol.name} stimulus")
            for protocol in spec.protocols
            for k, stimulus in enumerate(protocol.stimuli)
        }
        self._locations.update({
            (protocol.name, recording.name): self._segment(
                recording.location, f"{protocol.name} recording {recording.name}"
            )
            for protocol in spec.protocols
            for recording in protocol.recordings
        })  # fmt: skip
        try:
            self._apply(check_point(spec))
        except VectorError as error:
            raise ModelError(f"{error} (at the setup check's values)") from None
        self._ready = True

    def _setter(self, label: str, target: FixedValue | ParameterSpec):
        """How a value reaches its target: a global, or a section list (see _Placement)."""
        if target.hoc is not None:
            return lambda value: setattr(self._h, target.hoc, value)
        expression = self.spec.model.distributions.get(target.distribution)
        placement = _Placement(self._h, self._cell, label, target.sections, target.property,
                               expression)  # fmt: skip
        return placement.apply

    def _segment(self, location: LocationSpec, what: str):
        sections = section_list(self._cell, location.sections)
        if location.soma_distance_um is None:
            if location.index >= len(sections):
                raise ModelError(
                    f"{what}: {location.sections} has {len(sections)} section(s), so index "
                    f"{location.index} does not exist (indices count from 0)"
                )
            return sections[location.index](location.position)
        return self._at_soma_distance(sections, location, what)

    def _at_soma_distance(self, sections: list, location: LocationSpec, what: str):
        """The point at that path distance from the soma's middle; of several, the one on the
        list's last section spanning it (BluePyOpt's choice)."""
        h, distance = self._h, location.soma_distance_um
        h.distance(0, 0.5, sec=self._cell.soma[0])
        found = None
        for section in sections:
            ends = h.distance(1, 0.0, sec=section), h.distance(1, 1.0, sec=section)
            near, far = min(ends), max(ends)
            if near <= distance <= far:
                x = float(distance - near) / (far - near)
                if section(x).diam > 0:
                    found = section(x)
        if found is None:
            raise ModelError(f"{what}: no point of {location.sections} lies {distance:g} µm "
                             "from the soma")  # fmt: skip
        return found

    def _apply(self, parameters: dict[str, float]) -> None:
        for setter, value in self._fixed:
            setter(value)
        for p in self.spec.parameters:
            value = float(parameters[p.name])
            if not np.isfinite(value):
                raise VectorError(f"parameter {p.name} is {value}")
            try:
                self._free[p.name](value)
            except Exception as error:
                raise VectorError(f"parameter {p.name} = {value!r}: {error}") from None

    def run(self, parameters: dict[str, float], deadline: float | None = None) -> list[Trace]:
        if not self._ready:
            self.setup()
        self._apply(parameters)
        traces = []
        for protocol in self.spec.protocols:
            traces += self._sweep(protocol)
            if deadline is not None and time.monotonic() > deadline:
                raise SimulationTimeout(f"simulation passed its time limit after protocol "
                                        f"{protocol.name}")  # fmt: skip
        return traces

    def _sweep(self, protocol: EModelProtocolSpec) -> list[TimedTrace]:
        """One protocol's run: its clamps and recordings exist only for it (NEURON drops
        them with the last reference, when this call returns)."""
        h = self._h
        clamps = []
        for k, stimulus in enumerate(protocol.stimuli):
            clamp = h.IClamp(self._locations[(protocol.name, k)])
            clamp.dur, clamp.amp = stimulus.duration_ms, stimulus.amplitude_nA
            clamp.delay = stimulus.delay_ms
            clamps.append(clamp)
        recordings = []
        for recording in protocol.recordings:
            segment = self._locations[(protocol.name, recording.name)]
            values, times = h.Vector(), h.Vector()
            values.record(segment._ref_v)
            times.record(h._ref_t)
            recordings.append((values, times))
        h.cvode_active(1 if protocol.cvode else 0)
        h.dt, h.steps_per_ms = protocol.dt_ms, 1 / protocol.dt_ms
        h.tstop = protocol.duration_ms
        try:
            h.run()
        except RuntimeError as error:
            raise VectorError(f"protocol {protocol.name}: NEURON failed ({error})") from None
        traces = []
        for values, times in recordings:
            t = times.as_numpy().copy()
            step = float(np.mean(np.diff(t))) if len(t) > 1 else protocol.dt_ms
            traces.append(TimedTrace(values.as_numpy().copy(), step, times=t))
        return traces
