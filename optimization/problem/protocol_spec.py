"""The problem file's protocol: the stimulus of each sweep (steps or waveforms, current or
voltage clamp) and what is recorded."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    model_validator,
)

from neuroptimus.optimization.problem.spec_base import Strict as _Strict

# A waveform is played from t = 0 for ever (the original's custom stimulus).
WAVEFORM_DURATION_MS = 1e9


class StimulusSpec(_Strict):
    """A step stimulus (each amplitude one sweep) or current waveforms (each file one sweep:
    one value in nA per simulation step, played into the clamp from t = 0). With neither,
    the sweeps come from elsewhere (a features file)."""

    type: Literal["IClamp", "VClamp"]
    section: str = "soma"
    position: Annotated[float, Field(ge=0, le=1)] = 0.5
    amplitudes: Annotated[list[float], Field(min_length=1)] | None = None
    waveforms: Annotated[list[str], Field(min_length=1)] | None = Field(
        None, description="files (paths or data:// names), one current value (nA) per dt"
    )
    delay_ms: Annotated[float, Field(ge=0)] | None = None
    duration_ms: Annotated[float, Field(ge=0)] | None = None
    holding_mV: float | None = Field(None, description="VClamp level outside the step")
    series_resistance_MOhm: Annotated[float, Field(gt=0)] = 0.01

    @model_validator(mode="before")
    @classmethod
    def _waveform_timing(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("waveforms"):
            data = {"delay_ms": 0.0, "duration_ms": WAVEFORM_DURATION_MS, **data}
        return data

    @model_validator(mode="after")
    def _kind(self) -> StimulusSpec:
        if self.amplitudes is not None and self.waveforms is not None:
            raise ValueError("give amplitudes (steps) or waveforms (files), not both")
        if self.waveforms is not None:
            if self.type != "IClamp":
                raise ValueError("waveforms are played into an IClamp: set type: IClamp")
            if (self.delay_ms, self.duration_ms) != (0.0, WAVEFORM_DURATION_MS):
                raise ValueError("a waveform plays from t = 0 for ever: leave out delay_ms and "
                                 "duration_ms")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _units(self) -> StimulusSpec:
        for amplitude in self.amplitudes or []:
            if self.type == "IClamp" and abs(amplitude) > 100:
                raise ValueError(
                    f"IClamp amplitude {amplitude:g} is in nA: {amplitude:g} nA is implausible "
                    f"(did you give pA? use {amplitude / 1000:g})"
                )
            if self.type == "VClamp" and not -200 <= amplitude <= 100:
                raise ValueError(f"VClamp amplitude {amplitude:g} must be in mV (-200 … 100)")
            if self.type == "VClamp" and amplitude != 0 and abs(amplitude) < 1:
                raise ValueError(
                    f"VClamp amplitude {amplitude:g} is in mV: did you give volts? "
                    f"use {amplitude * 1000:g}"
                )
        return self


class RecordingSpec(_Strict):
    """What is recorded: a range variable at a location, or the clamp's electrode current."""

    variable: str = Field("v", description="range variable such as v or cai, or clamp_current")
    section: str = "soma"
    position: Annotated[float, Field(ge=0, le=1)] = 0.5


class ProtocolSpec(_Strict):
    """Simulation and stimulation protocol."""

    tstop_ms: Annotated[float, Field(gt=0)]
    dt_ms: Annotated[float, Field(gt=0)] = 0.025
    v_init_mV: float = -65.0
    # Left out of the stored spec when unset, so that problems without it keep their keys.
    celsius: float | None = Field(
        None, exclude_if=lambda value: value is None,
        description="NEURON models: the temperature (hoc celsius) to simulate at; unset: "
        "the model's own",
    )  # fmt: skip
    cvode: bool = Field(
        False, exclude_if=lambda value: not value,
        description="NEURON models: variable time step (CVODE) instead of fixed steps of dt_ms; "
        "recordings are sampled at the target's rate",
    )  # fmt: skip
    atol: Annotated[float, Field(gt=0)] | None = Field(
        None, exclude_if=lambda value: value is None,
        description="with cvode: absolute tolerance (NEURON's default 1e-3)",
    )  # fmt: skip
    rtol: Annotated[float, Field(gt=0)] | None = Field(
        None, exclude_if=lambda value: value is None,
        description="with cvode: relative tolerance (NEURON's default 0)",
    )  # fmt: skip
    # Titles on model-typed fields: JSON schema drops them for references, and the Prefect
    # UI form would label the field with the class name (or "Field") instead.
    stimulus: StimulusSpec | None = Field(None, title="Stimulus")
    recording: RecordingSpec = Field(RecordingSpec(), title="Recording")
    # The YAML key is `sweeps`; the property `sweeps` is the count every kind uses.
    sweeps_given: Annotated[int, Field(ge=1)] | None = Field(
        None, alias="sweeps", description="python and external models without stimulus "
        "amplitudes: how many sweeps each evaluation simulates"
    )  # fmt: skip

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)  # fmt: skip

    def neuron_units(self) -> str | None:
        """The first unit slip that only makes sense to catch for neurons simulated by NEURON
        (a biochemical model may step by minutes), as 'field: message'."""
        if self.dt_ms > 1:
            return (f"protocol.dt_ms: time step {self.dt_ms:g} ms is too coarse for neurons "
                    "(did you give µs?)")  # fmt: skip
        value = self.v_init_mV
        if not -150 <= value <= 60:
            return f"protocol.v_init_mV: initial voltage {value:g} must be in mV (-150 … 60)"
        if value != 0 and abs(value) < 1:
            return f"protocol.v_init_mV: initial voltage {value:g} is in mV: did you give volts?"
        if self.celsius is not None and not -30 <= self.celsius <= 60:
            return (f"protocol.celsius: temperature {self.celsius:g} must be in °C (-30 … 60; "
                    "did you give kelvin?)")  # fmt: skip
        return None

    @model_validator(mode="after")
    def _variable_step(self) -> ProtocolSpec:
        if not self.cvode:
            if self.atol is not None or self.rtol is not None:
                raise ValueError("atol and rtol are tolerances of the variable time step: "
                                 "give cvode: true too")  # fmt: skip
            return self
        if self.recording.variable == "clamp_current":
            raise ValueError("cvode: a clamp's current is recorded per fixed step; record v "
                             "or leave cvode out")  # fmt: skip
        if self.stimulus and self.stimulus.waveforms:
            raise ValueError("cvode: waveforms play one sample per fixed step; leave cvode "
                             "out")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _timing(self) -> ProtocolSpec:
        if self.dt_ms >= self.tstop_ms:
            raise ValueError(
                f"dt_ms {self.dt_ms:g} must be smaller than tstop_ms {self.tstop_ms:g}"
            )
        delay = self.stimulus.delay_ms if self.stimulus else None
        if delay is not None and delay >= self.tstop_ms:
            raise ValueError(
                f"stimulus delay {self.stimulus.delay_ms:g} ms starts after the simulation ends "
                f"(tstop_ms {self.tstop_ms:g}); both are in ms"
            )
        if self.recording.variable == "clamp_current" and (
            not self.stimulus or self.stimulus.type != "VClamp"
        ):
            raise ValueError("recording clamp_current needs a VClamp stimulus")
        return self

    @model_validator(mode="after")
    def _sweep_count(self) -> ProtocolSpec:
        stimulus = self.stimulus
        given = stimulus and (stimulus.amplitudes or stimulus.waveforms)
        if given and self.sweeps_given is not None and len(given) != self.sweeps_given:
            raise ValueError(
                f"sweeps {self.sweeps_given} but the stimulus has {len(given)}: give one of them"
            )
        return self

    @property
    def sweeps(self) -> int:
        stimulus = self.stimulus
        if stimulus and stimulus.amplitudes:
            return len(stimulus.amplitudes)
        if stimulus and stimulus.waveforms:
            return len(stimulus.waveforms)
        return self.sweeps_given or 1
