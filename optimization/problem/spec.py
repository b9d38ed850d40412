"""Problem specification: the YAML problem file, validated by pydantic.

The same model is the typed parameter of the Prefect flows, so the Prefect UI renders it as a
form. Paths in a problem file are relative to that file, or ``data://`` names of the data
registry. Units are in the field names (``_ms``, ``_mV``, ``_hz``); amplitudes are nA for
current clamp and mV for voltage clamp.
"""

from __future__ import annotations

import builtins
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.emodel_spec import EModelProtocolSpec, EModelSpec
from neuroptimus.optimization.scoring.costs import COST_FUNCTIONS

CostName = Literal[
    "MSE",
    "MSE (excl. spikes)",
    "Spike count",
    "Spike count (stim.)",
    "ISI differences",
    "Latency to 1st spike",
    "AP amplitude",
    "AHP depth",
    "AP width",
    "Derivative difference",
]
assert set(CostName.__args__) == set(COST_FUNCTIONS), "CostName must list the Table-1 names"


class SpecError(UserError, ValueError):
    """A problem file is malformed; the message is one line naming file, field and fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ParameterSpec(_Strict):
    """One fitted parameter with its search bounds."""

    # dotted like BluePyOpt's names (gNaTs2_tbar_NaTs2_t.apical)
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]
    hoc: str | None = Field(None, description="hoc assignment target, e.g. soma.gnabar_hh")
    section: str | None = Field(None, description="one section (with segment and property)")
    segment: Annotated[int, Field(ge=0)] | None = Field(
        None, description="index of the section's segment (the original's 'sec seg mech param')"
    )
    sections: str | None = Field(
        None, description="'all' (every section) or a hoc SectionList (or section) name"
    )
    property: str | None = Field(None, description="section property or range variable")
    distribution: str | None = Field(
        None, exclude_if=lambda value: value is None,
        description="emodel models: a name of model.distributions (value by soma distance)",
    )  # fmt: skip
    lower: float
    upper: float
    log: bool = Field(False, description="search log10(value) uniformly")
    unit: str = ""
    true_value: float | None = Field(None, description="known optimum (surrogate problems)")

    @model_validator(mode="after")
    def _form(self) -> ParameterSpec:
        given = [k for k in ("hoc", "section", "segment", "sections", "property")
                 if getattr(self, k) is not None]  # fmt: skip
        if given not in ([], ["hoc"], ["section", "segment", "property"], ["sections", "property"]):
            raise ValueError(
                f"parameter {self.name} has {', '.join(given)}: give exactly one of hoc, "
                "section+segment+property, sections+property (or none with a user function)"
            )
        return self

    @builtins.property  # the field `property` shadows the builtin in this class
    def applied_by_model_file(self) -> bool:
        """No target of its own: the problem's user function applies it."""
        return self.hoc is None and self.property is None

    @model_validator(mode="after")
    def _bounds(self) -> ParameterSpec:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ValueError("bounds must be finite numbers")
        if self.lower >= self.upper:
            raise ValueError(f"lower bound {self.lower:g} must be below upper bound {self.upper:g}")
        if self.log and self.lower <= 0:
            raise ValueError(f"log scale needs a positive lower bound, got {self.lower:g}")
        if self.true_value is not None and not self.lower <= self.true_value <= self.upper:
            raise ValueError(
                f"true_value {self.true_value:g} lies outside [{self.lower:g}, {self.upper:g}]"
            )
        return self


class UserFunctionSpec(_Strict):
    """A Python function ``function(h, values)`` in ``file`` (Python source run with NEURON's
    ``h`` in its globals), called once per evaluation after the model is built and before the
    sweeps, with the parameter values (real units) in the problem's parameter order."""

    file: str = Field(description="Python source file: a path or a data:// name")
    function: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class ModelSpec(_Strict):
    """A NEURON model: a hoc or Python entry file (and NMODL folder) loaded by NEURON
    in-process, with the working directory at the entry file's folder."""

    simulator: Literal["neuron"] = "neuron"
    hoc: str = Field(description="entry file (.hoc or .py) building the cell: path or data://")
    mechanisms: str | None = Field(
        None, description="folder of .mod files compiled once: a path or a data:// folder name"
    )
    patches: list[str] = Field(
        default_factory=list,
        description="unified diffs (paths relative to the problem file) applied in order to "
        "copies of the mechanism files before compiling; the run store records them",
    )
    user_function: UserFunctionSpec | None = Field(None, title="User function")

    @model_validator(mode="after")
    def _patches_need_mechanisms(self) -> ModelSpec:
        if self.patches and not self.mechanisms:
            raise ValueError("patches apply to mechanism files: give model.mechanisms too")
        return self


_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class PythonModelSpec(_Strict):
    """Any in-process Python simulator (NEST, Brian2, Arbor …): ``build(spec_dict) -> model``
    runs once per worker process, ``simulate(model, values, sweep)`` once per sweep and
    returns the trace (one sample every ``protocol.dt_ms`` from t = 0), or ``(trace,
    spike_times_ms)``. State a simulator keeps between runs (NEST's kernel) is reset by
    ``simulate`` itself."""

    simulator: Literal["python"]
    file: str = Field(description="Python file defining build and simulate: a path or data://")
    build: Annotated[str, Field(pattern=_IDENTIFIER)] = "build"
    simulate: Annotated[str, Field(pattern=_IDENTIFIER)] = "simulate"


class ExternalModelSpec(_Strict):
    """Any program: run once per sweep (or per evaluation) in a fresh temporary folder that
    holds links to the files of ``folder``. ``protocol: neuroptimus`` is the original tool's
    (argv + [ID]; params<ID>.param: one value per line, the sweep index last; the program
    writes the trace file, whose last column is the trace, and optionally a spike-time file
    in ms); ``protocol: json`` writes params.json (argv + [params.json]) and reads a .npz or
    .csv trace file. The program's PATH starts with the running interpreter's folder, so a
    ``python3`` it starts itself has the same packages."""

    simulator: Literal["external"]
    command: Annotated[list[str], Field(min_length=1)] = Field(
        description="argv; a first word python or python3 is the interpreter running Neuroptimus"
    )
    folder: str | None = Field(
        None, description="folder (path or data:// folder) whose files the program sees in "
        "its working folder; default: the problem file's folder"
    )  # fmt: skip
    protocol: Literal["neuroptimus", "json"] = "neuroptimus"
    per_sweep: bool = Field(True, description="one run per sweep (else one per evaluation)")
    trace_file: str = Field(
        "trace{id}.dat",
        description="written by the program; {id} and {sweep} are filled in; default "
        "trace{id}.dat (neuroptimus) or trace.npz (json; .csv also read)",
    )
    spike_file: str | None = Field(
        None, description="spike times (ms), one per line, read when the program wrote it; "
        "default spike{id}.dat for the neuroptimus protocol (null: none)"
    )  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        neuroptimus = data.get("protocol", "neuroptimus") == "neuroptimus"
        defaults = {"trace_file": "trace{id}.dat" if neuroptimus else "trace.npz"}
        if neuroptimus:
            defaults["spike_file"] = "spike{id}.dat"
        return {**defaults, **data}  # spike_file: null turns the spike file off

    @model_validator(mode="after")
    def _outputs(self) -> ExternalModelSpec:
        if self.protocol == "json" and Path(self.trace_file).suffix not in (".npz", ".csv"):
            raise ValueError(f"trace_file {self.trace_file}: the json protocol reads .npz or .csv")
        return self


def _any_of(schema: dict[str, Any]) -> None:
    """The Prefect form draws anyOf as a choice of kinds (it does not know oneOf)."""
    if "oneOf" in schema:
        schema["anyOf"] = schema.pop("oneOf")


def _model_kind(value: Any) -> str:
    """The model kind of a mapping or a model object (neuron when not given)."""
    if isinstance(value, dict):
        return value.get("simulator", "neuron")
    return getattr(value, "simulator", "neuron")


AnyModelSpec = Annotated[
    Annotated[ModelSpec, Tag("neuron")]
    | Annotated[PythonModelSpec, Tag("python")]
    | Annotated[ExternalModelSpec, Tag("external")]
    | Annotated[EModelSpec, Tag("emodel")],
    Discriminator(
        _model_kind,
        custom_error_type="simulator",
        custom_error_message="model.simulator must be neuron, python, external or emodel",
    ),
]


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


class TargetSpec(_Strict):
    """Target traces: a data file (time column + one column per sweep) or regenerated; or
    eFEL feature statistics (the original tool's features JSON)."""

    file: str | None = Field(None, description="path or data:// name of the target traces")
    regenerate: bool = Field(False, description="simulate the target from the true values")
    sampling_rate_hz: Annotated[float, Field(gt=0)] | None = Field(
        None, description="of the target traces; features targets use 1000/dt_ms"
    )
    time_column: bool = True
    features: str | None = Field(
        None, description="path or data:// name of a features JSON (mean and std per feature "
        "and stimulus amplitude); costs.features then names the features"
    )  # fmt: skip
    efel_rule: Literal["efel4", "efel5"] = Field(
        "efel5", description="efel4: a missing inv_first_ISI, inv_last_ISI, "
        "inv_time_to_first_spike or time_to_last_spike counts as 0, as eFEL 4 returned"
    )  # fmt: skip
    unit: Literal["mV", "V"] = Field("mV", description="unit of the file's values (V: ×1000)")
    compare_on: Literal["target_grid", "simulation_grid"] = Field(
        "target_grid",
        description="target_grid: the model is sampled down to the target's rate; "
        "simulation_grid: the target is interpolated up onto the simulation steps (the "
        "original tool's way, its linspace end points included) and costs run at 1000/dt Hz",
    )

    def neuron_units(self) -> str | None:
        """A sampling rate that is a kHz slip for neuronal traces, as 'field: message'."""
        value = self.sampling_rate_hz
        if value is not None and value < 500:
            return (
                f"target.sampling_rate_hz: sampling rate {value:g} Hz is too low for neuronal "
                f"traces: it is in Hz, not kHz (use {value * 1000:g})"
            )
        return None

    @model_validator(mode="after")
    def _source(self) -> TargetSpec:
        if [self.file is not None, self.regenerate, self.features is not None].count(True) != 1:
            raise ValueError(
                "give exactly one of file (a target data file), regenerate: true or features "
                "(a features JSON)"
            )
        return self


class CostTerm(_Strict):
    name: CostName
    weight: Annotated[float, Field(ge=0)] = 1.0


class FeatureTerm(_Strict):
    name: Annotated[str, Field(min_length=1, description="an eFEL feature name")]
    weight: Annotated[float, Field(ge=0)] = 1.0


class CostSpec(_Strict):
    """Weighted cost functions (Table 1) or eFEL features, and their spike-detection settings
    (the threshold is eFEL's Threshold for features)."""

    functions: Annotated[list[CostTerm], Field(min_length=1)] | None = None
    features: Annotated[list[FeatureTerm], Field(min_length=1)] | None = None
    spike_threshold_mV: float = 0.0
    spike_window_samples: Annotated[int, Field(ge=0)] = 40


def _algorithm_choices(schema: dict[str, Any]) -> None:
    """The form offers the registered algorithms as a drop-down (validation stays _known)."""
    from neuroptimus.optimization.algorithms import ALGORITHMS

    schema["enum"] = list(ALGORITHMS)


class StageSpec(_Strict):
    """One stage of a chain: an algorithm run for ``evaluations``, from the best so far."""

    name: str = Field(json_schema_extra=_algorithm_choices)
    evaluations: Annotated[int, Field(ge=1)]
    population: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        None, description="default: the algorithm's population"
    )
    settings: dict[str, float | int | bool | str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> StageSpec:
        _check_algorithm(self.name, self.settings)
        return self


def _check_algorithm(name: str, settings: dict[str, Any]) -> None:
    from neuroptimus.optimization.algorithms import ALGORITHMS

    if name not in ALGORITHMS:
        raise ValueError(
            f"unknown algorithm {name!r}; choose one of {', '.join(sorted(ALGORITHMS))}"
        )
    known = ALGORITHMS[name].info.defaults
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ValueError(
            f"algorithm {name!r} has no setting {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known)) or 'none'}"
        )


def _algorithm_or_chain(schema: dict[str, Any]) -> None:
    _algorithm_choices(schema)
    schema["enum"].append("chain")


class AlgorithmSpec(_Strict):
    name: str = Field("cmaes", json_schema_extra=_algorithm_or_chain)
    population: Annotated[int, Field(ge=1, le=100_000)] = 20
    generations: Annotated[int, Field(ge=1)] = 50
    settings: dict[str, float | int | bool | str] = Field(default_factory=dict)
    # Left out of the stored spec when unset, so that problems without it keep their keys.
    chain: Annotated[list[StageSpec], Field(min_length=1)] | None = Field(
        None, exclude_if=lambda value: value is None,
        description="algorithms run in turn, each stage from the best so far (name: chain); "
        "the budget is the sum of the stages' evaluations",
    )  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _chain_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("chain") and "name" not in data:
            data = {**data, "name": "chain"}
        return data

    @model_validator(mode="after")
    def _known(self) -> AlgorithmSpec:
        from neuroptimus.optimization.algorithms import ALGORITHMS

        if self.chain is not None or self.name == "chain":
            if self.chain is None or self.name != "chain":
                raise ValueError("a chain is `name: chain` with a `chain:` list of stages")
            if self.settings:
                raise ValueError("a chain's settings go into its stages (chain[i].settings)")
            return self
        if self.name not in ALGORITHMS:
            raise ValueError(
                f"unknown algorithm {self.name!r}; choose one of {', '.join(sorted(ALGORITHMS))}"
            )
        known = ALGORITHMS[self.name].info.defaults
        unknown = sorted(set(self.settings) - set(known))
        if unknown:
            raise ValueError(
                f"algorithm {self.name!r} has no setting {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known)) or 'none'}"
            )
        return self


class StoppingSpec(_Strict):
    """When to stop besides the evaluation budget (population × generations by default)."""

    max_evaluations: Annotated[int, Field(ge=1)] | None = None
    error_target: Annotated[float, Field(ge=0)] | None = Field(
        None, description="stop once the best total error is at or below this"
    )
    stagnation_generations: Annotated[int, Field(ge=1)] | None = Field(
        None,
        description="stop after this many generations without improvement, a generation "
        "being `population` evaluations for every algorithm: serial methods (one point per "
        "island per ask) stop after the same number of evaluations as batch methods",
    )
    stagnation_tolerance: Annotated[float, Field(ge=0)] = Field(
        0.0, description="relative improvement that counts as progress"
    )


class EvaluationSpec(_Strict):
    timeout_s: Annotated[float, Field(gt=0)] = 600.0
    penalty: Annotated[float, Field(gt=0)] = 100.0
    # A model of minutes (UC7) would hold every start for minutes: a program still running
    # after setup_check_s started and did not fail, which is what the check is for.
    setup_check_s: Annotated[float, Field(ge=0)] | None = Field(
        None, description="python and external models: how long the setup's check evaluation "
        "(true values, else the middle of the bounds) may run. Empty: to its end, its output "
        "checked and scored; N: a model still running after N s passes (it started and did "
        "not fail; its output is not checked); 0: no check"
    )  # fmt: skip


class ProblemSpec(_Strict):
    """Everything that defines one optimization problem."""

    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    model: AnyModelSpec = Field(title="Model", json_schema_extra=_any_of)
    parameters: Annotated[list[ParameterSpec], Field(min_length=1)]
    # Required but for emodel problems, whose sweeps and scores are their `protocols`.
    protocol: ProtocolSpec = Field(None, title="Protocol", exclude_if=lambda v: v is None)
    target: TargetSpec = Field(None, title="Target", exclude_if=lambda v: v is None)
    costs: CostSpec = Field(None, title="Costs", exclude_if=lambda v: v is None)
    protocols: list[EModelProtocolSpec] = Field(
        None, title="Protocols", exclude_if=lambda value: value is None,
        description="emodel models: the protocols, each one sweep with its features",
    )  # fmt: skip
    algorithm: AlgorithmSpec = Field(AlgorithmSpec(), title="Algorithm")
    stopping: StoppingSpec = Field(StoppingSpec(), title="Stopping")
    evaluation: EvaluationSpec = Field(EvaluationSpec(), title="Evaluation")
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 1234
    warm_start: str | None = Field(
        None, exclude_if=lambda value: value is None,
        description="start from the best individuals of earlier runs of the same use case: "
        "a run store, a folder of run stores, or a catalog entry <server>/runs/<id>",
    )  # fmt: skip
    pareto_fronts: bool | None = Field(
        None,
        description="keep the non-dominated front of the weighted error components and its "
        "hypervolume after every generation; empty: only for multi-objective algorithms "
        "(a single-objective run does not need them, and with many components they cost)",
    )
    base_dir: str = Field(".", description="folder that relative paths are resolved against")

    @model_validator(mode="after")
    def _consistent(self) -> ProblemSpec:
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameter names must be unique: {', '.join(duplicates)} repeated")
        if self.model.simulator == "emodel":
            from neuroptimus.optimization.problem.emodel_spec import check_emodel_problem

            check_emodel_problem(self)
            return self
        for field in ("protocol", "target", "costs"):
            if getattr(self, field) is None:
                raise ValueError(f"{field}: required field is missing")
        if self.protocols is not None or any(p.distribution for p in self.parameters):
            raise ValueError("protocols: protocols and parameter distributions are for "
                             "model.simulator: emodel")  # fmt: skip
        if self.model.simulator == "neuron":
            self._check_neuron()
        else:
            if self.protocol.cvode:
                raise ValueError(
                    f"protocol.cvode chooses NEURON's integrator; a {self.model.simulator} "
                    "model chooses its own (leave it out)"
                )
            if self.protocol.celsius is not None:
                raise ValueError(
                    f"protocol.celsius sets NEURON's temperature; a {self.model.simulator} "
                    "model takes a temperature as one of its own settings (leave it out)"
                )
            targeted = [p.name for p in self.parameters if not p.applied_by_model_file]
            if targeted:
                raise ValueError(
                    f"parameters: {', '.join(targeted)} have hoc or section targets, which are "
                    f"for NEURON models; a {self.model.simulator} model gets the values by name "
                    "and order (leave the targets out)"
                )
        self._check_target_kind()
        if self.target.unit == "V" and self.protocol.recording.variable != "v":
            raise ValueError("target.unit V is for membrane voltage recordings (variable v)")
        ratio = 1000 / (self.protocol.dt_ms * self.target.sampling_rate_hz)
        if self.target.compare_on == "simulation_grid":
            if ratio < 1 - 1e-9:
                raise ValueError(
                    f"target sampling_rate_hz {self.target.sampling_rate_hz:g} is above the "
                    f"simulation rate 1000/dt_ms = {1000 / self.protocol.dt_ms:g} Hz: nothing "
                    "to up-sample (sampling rates are in Hz, not kHz)"
                )
        elif abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
            raise ValueError(
                f"target sampling_rate_hz {self.target.sampling_rate_hz:g} must divide the "
                f"simulation rate 1000/dt_ms = {1000 / self.protocol.dt_ms:g} Hz "
                "(sampling rates are in Hz, not kHz)"
            )
        if self.target.regenerate and any(p.true_value is None for p in self.parameters):
            raise ValueError("target.regenerate needs a true_value for every parameter")
        return self

    def _check_neuron(self) -> None:
        """What only a NEURON model needs: parameter targets, neuronal units, stimulus sweeps
        (python and external models get their parameters by name or position and may
        simulate anything at any time scale)."""
        if self.model.user_function is None:
            missing = [p.name for p in self.parameters if p.applied_by_model_file]
            if missing:
                raise ValueError(
                    f"parameters {', '.join(missing)} need a target (hoc, section+segment+"
                    "property or sections+property) or a model.user_function applying them"
                )
        slip = self.protocol.neuron_units() or self.target.neuron_units()
        if slip:
            raise ValueError(slip)
        if self.protocol.sweeps_given is not None:
            raise ValueError(
                "protocol.sweeps: NEURON models sweep over the stimulus amplitudes or "
                "waveforms; leave sweeps out"
            )

    def _check_target_kind(self) -> None:
        """Features targets score eFEL features of the full-resolution sweeps: their rate is
        the simulation's (filled in here), their sweeps may come from the features file."""
        target, costs, stimulus = self.target, self.costs, self.protocol.stimulus
        if target.features is None:
            if costs.functions is None or costs.features is not None:
                raise ValueError("costs: give functions (costs.features needs target.features)")
            if target.sampling_rate_hz is None:
                raise ValueError("target.sampling_rate_hz: required field is missing")
            steps = stimulus and (stimulus.amplitudes, stimulus.delay_ms, stimulus.duration_ms)
            if stimulus and not stimulus.waveforms and None in steps:
                raise ValueError(
                    "protocol.stimulus: give amplitudes, delay_ms and duration_ms (or waveforms)"
                )
            return
        if costs.features is None or costs.functions is not None:
            raise ValueError("costs: a features target is scored by costs.features, not functions")
        if stimulus is None or stimulus.type != "IClamp":
            raise ValueError("protocol.stimulus: a features target needs an IClamp stimulus")
        if self.protocol.recording.variable != "v":
            raise ValueError("protocol.recording: a features target needs the voltage (v)")
        full_rate = 1000 / self.protocol.dt_ms
        if target.sampling_rate_hz is None:
            target.sampling_rate_hz = full_rate
        elif not math.isclose(target.sampling_rate_hz, full_rate, rel_tol=1e-9):
            raise ValueError(
                f"target.sampling_rate_hz: features are extracted at the simulation rate "
                f"{full_rate:g} Hz; leave the field out"
            )

    @property
    def comparison_rate_hz(self) -> float:
        """Sampling rate at which model and target are compared (and costs computed)."""
        if self.target.compare_on == "simulation_grid":
            return 1000 / self.protocol.dt_ms
        return self.target.sampling_rate_hz

    @property
    def budget(self) -> int:
        """Model evaluations allowed, counted by the framework."""
        alg = self.algorithm
        if alg.chain and not self.stopping.max_evaluations:
            return sum(stage.evaluations for stage in alg.chain)
        return self.stopping.max_evaluations or alg.population * alg.generations

    def resolve(self, path: str) -> str:
        """A spec path made absolute (``data://`` names are returned unchanged)."""
        if path.startswith("data://"):
            return path
        return str((Path(self.base_dir) / path).resolve())

    def local_path(self, path: str) -> Path:
        """A spec path as a local file or folder: a ``data://`` name is fetched (and verified)
        first, any other path made absolute."""
        if path.startswith("data://"):
            from neuroptimus.optimization.problem.data import fetch

            return fetch(path)
        return Path(self.resolve(path))


def _field_path(location: tuple[Any, ...]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


_NAMES_ITS_FIELD = re.compile(r"^(parameters|(protocols?|target|costs|model)(\.\w+)?): ")


def _one_line(error: dict[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    # the model kind's tag (neuron, python, external, emodel) is no field of the file
    location = tuple(
        p for p in error["loc"]
        if not str(p).startswith("function-after")
        and p not in ("neuron", "python", "external", "emodel")
    )  # fmt: skip
    if error["type"] == "missing":
        message = "required field is missing"
    elif error["type"] == "extra_forbidden":
        message = "unknown field (check its spelling)"
    if not location and _NAMES_ITS_FIELD.match(message):
        return message  # a whole-problem check that names its field itself
    return f"{_field_path(location)}: {message}"


def parse_problem(data: Any, source: str = "<problem>", base_dir: str = ".") -> ProblemSpec:
    """Validate a problem mapping; raise SpecError with a one-line message."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: the problem file must be a mapping of fields")
    data = {**data}
    data.setdefault("base_dir", base_dir)
    try:
        spec = ProblemSpec.model_validate(data)
    except ValidationError as error:
        errors = error.errors()
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise SpecError(f"{source}: {_one_line(errors[0])}{more}") from None
    _check_files(spec, source)
    if spec.target is not None and spec.target.features is not None:
        from neuroptimus.optimization.problem.data import DataError
        from neuroptimus.optimization.scoring.features import FeaturesError, complete_protocol

        try:
            spec = complete_protocol(spec)
        except (FeaturesError, DataError) as error:
            raise SpecError(f"{source}: target.features: {error}") from None
    return spec


def _check_files(spec: ProblemSpec, source: str) -> None:
    from neuroptimus.optimization.problem.data import registry

    model = spec.model
    if model.simulator == "python":
        checks = [("model.file", model.file)]
    elif model.simulator == "external":
        checks = [("model.folder", model.folder)]
    elif model.simulator == "emodel":
        checks = [("model.morphology", model.morphology), ("model.mechanisms", model.mechanisms)]
        checks += [(f"model.patches[{k}]", patch) for k, patch in enumerate(model.patches)]
    else:
        checks = [("model.hoc", model.hoc), ("model.mechanisms", model.mechanisms)]
        if model.user_function:
            checks.append(("model.user_function.file", model.user_function.file))
        checks += [(f"model.patches[{k}]", patch) for k, patch in enumerate(model.patches)]
    stimulus = spec.protocol.stimulus if spec.protocol else None
    for k, waveform in enumerate((stimulus.waveforms if stimulus else None) or []):
        checks.append((f"protocol.stimulus.waveforms[{k}]", waveform))
    if spec.target is not None:
        checks += [("target.file", spec.target.file), ("target.features", spec.target.features)]
    entries = registry()
    for field, value in checks:
        if value is None:
            continue
        if value.startswith("data://"):
            name = value.removeprefix("data://")
            folder = name.rstrip("/") + "/"  # a registered folder: files under it
            if name not in entries and not any(e.startswith(folder) for e in entries):
                raise SpecError(f"{source}: {field}: {value} is not in the data registry")
        elif not Path(spec.resolve(value)).exists():
            raise SpecError(f"{source}: {field}: file {spec.resolve(value)} does not exist")


def read_yaml(path: Path, what: str, error: type[Exception] = SpecError) -> Any:
    """A YAML file's content; a missing file or bad YAML raises ``error`` with one line."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        reason = getattr(problem, "problem", problem)
        raise error(f"{path}: {where}not valid YAML ({reason})") from None


def load_problem(path: str | Path) -> ProblemSpec:
    """Read and validate a YAML problem file."""
    path = Path(path)
    data = read_yaml(path, "problem file")
    return parse_problem(data, source=str(path), base_dir=str(path.parent.resolve()))


def with_overrides(spec: ProblemSpec, **changes: Any) -> ProblemSpec:
    """A copy with command-line overrides (``algorithm``, ``population``, ``generations``,
    ``seed``, ``max_evaluations``, ``warm_start``) applied and validated again."""
    data = spec.model_dump()
    for key in ("population", "generations"):
        if changes.get(key) is not None:
            data["algorithm"][key] = changes[key]
    if changes.get("max_evaluations") is not None:
        data["stopping"]["max_evaluations"] = changes["max_evaluations"]
    if changes.get("algorithm") is not None:
        data["algorithm"] = _algorithm_override(data, changes["algorithm"])
    if changes.get("seed") is not None:
        data["seed"] = changes["seed"]
    if changes.get("warm_start") is not None:
        data["warm_start"] = changes["warm_start"]
    return parse_problem(data, source="command line", base_dir=spec.base_dir)


# ``--algorithm a+b``: the last stage takes this share of the budget, the others the rest.
LAST_STAGE_SHARE = 0.2


def _algorithm_override(data: dict[str, Any], name: str) -> dict[str, Any]:
    """The algorithm section for ``--algorithm NAME``: unchanged when it names the problem's
    algorithm (or its chain's stages in order), else NAME with default settings; ``a+b+…`` is
    a chain whose last stage takes a fifth of the budget (population × generations, or
    max_evaluations) and the stages before it share the rest equally."""
    current = data["algorithm"]
    names = name.split("+")
    given = [stage["name"] for stage in current.get("chain") or []] or [current["name"]]
    if names == given:
        return current
    if len(names) == 1:
        return {**{k: v for k, v in current.items() if k != "chain"}, "name": name,
                "settings": {}}  # fmt: skip
    if not all(names):
        raise SpecError(
            f"command line: --algorithm {name}: name each stage, as in cmaes+scipy-nelder-mead"
        )
    budget = (
        data["stopping"].get("max_evaluations") or current["population"] * current["generations"]
    )
    last = max(1, round(budget * LAST_STAGE_SHARE))
    first, extra = divmod(budget - last, len(names) - 1)
    if first < 1:
        raise SpecError(
            f"command line: --algorithm {name}: a budget of {budget} evaluations is too small "
            f"for {len(names)} stages"
        )
    shares = [first + (1 if k < extra else 0) for k in range(len(names) - 1)] + [last]
    stages = [{"name": n, "evaluations": e} for n, e in zip(names, shares, strict=True)]
    return {**current, "name": "chain", "settings": {}, "chain": stages}
