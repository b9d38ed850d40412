"""Problem specification: the whole problem file as one pydantic model (its model and protocol
parts in ``model_spec`` and ``protocol_spec``; reading and checking a file in ``problem_file``).

The same model is the typed parameter of the Prefect flows, so the Prefect UI renders it as a
form. Paths in a problem file are relative to that file, or ``data://`` names of the data
registry. Units are in the field names (``_ms``, ``_mV``, ``_hz``); amplitudes are nA for
current clamp and mV for voltage clamp.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    model_validator,
)

from neuroptimus.optimization.algorithms import ALGORITHMS
from neuroptimus.optimization.problem.emodel_spec import EModelProtocolSpec, check_emodel_problem
from neuroptimus.optimization.problem.model_spec import AnyModelSpec, ParameterSpec, form_any_of
from neuroptimus.optimization.problem.protocol_spec import ProtocolSpec
from neuroptimus.optimization.problem.spec_base import Strict as _Strict
from neuroptimus.optimization.problem.validation_spec import check_validation, move_held_out

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


DEFAULT_VALIDATE_BEST = 10


class ValidationSpec(_Strict):
    """Held-out protocols and targets: evaluated on the best ``best`` distinct individuals
    once the optimization ends, never during it."""

    best: Annotated[int, Field(ge=0)] = Field(
        DEFAULT_VALIDATE_BEST, description="how many of the best distinct individuals are "
        "validated (0: none; the command line's --validate-best overrides it)"
    )  # fmt: skip
    protocol: ProtocolSpec | None = Field(None, title="Protocol", exclude_if=lambda v: v is None)
    target: TargetSpec | None = Field(None, title="Target", exclude_if=lambda v: v is None)
    costs: CostSpec | None = Field(
        None, title="Costs", exclude_if=lambda v: v is None,
        description="default: the training's costs",
    )  # fmt: skip
    protocols: list[EModelProtocolSpec] | None = Field(
        None, title="Protocols", exclude_if=lambda v: v is None,
        description="emodel models: held-out protocols, each one sweep with its features",
    )  # fmt: skip
    hold_out: list[str] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="emodel models: names of the problem's protocols to validate on instead "
        "of fitting (moved into protocols when the file is read)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _something(self) -> ValidationSpec:
        given = (self.protocol, self.target, self.protocols, self.hold_out)
        if all(field is None for field in given):
            raise ValueError(
                "give a protocol and a target (or, for an emodel model, protocols or hold_out)"
            )
        return self


def _algorithm_choices(schema: dict[str, Any]) -> None:
    """The form offers the registered algorithms as a drop-down (validation stays _known)."""

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
    model: AnyModelSpec = Field(title="Model", json_schema_extra=form_any_of)
    parameters: Annotated[list[ParameterSpec], Field(min_length=1)]
    # Required but for emodel problems, whose sweeps and scores are their `protocols` (the
    # check is _consistent's; typed optional so that the Prefect form accepts their absence).
    protocol: ProtocolSpec | None = Field(None, title="Protocol", exclude_if=lambda v: v is None)
    target: TargetSpec | None = Field(None, title="Target", exclude_if=lambda v: v is None)
    costs: CostSpec | None = Field(None, title="Costs", exclude_if=lambda v: v is None)
    protocols: list[EModelProtocolSpec] | None = Field(
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
    validation: ValidationSpec | None = Field(
        None, title="Validation", exclude_if=lambda value: value is None,
        description="held-out protocols and targets the fit never sees; the best individuals "
        "are evaluated on them after the optimization",
    )  # fmt: skip
    base_dir: str = Field(".", description="folder that relative paths are resolved against")

    @model_validator(mode="before")
    @classmethod
    def _held_out(cls, data: Any) -> Any:

        return move_held_out(data)

    @model_validator(mode="after")
    def _consistent(self) -> ProblemSpec:
        names = [p.name for p in self.parameters]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameter names must be unique: {', '.join(duplicates)} repeated")
        if self.validation is not None:
            check_validation(self)
        if self.model.simulator == "emodel":
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
        refusal = self.model.engine == "coreneuron" and self.coreneuron_refusal()
        if refusal:
            raise ValueError(f"model.engine: {refusal}")

    def coreneuron_refusal(self) -> str | None:
        """Why this NEURON problem's protocol cannot run on CoreNEURON, or None."""
        if self.protocol.cvode:
            return (
                "CoreNEURON integrates with fixed steps only; leave out protocol.cvode or use "
                "engine neuron"
            )
        stimulus = self.protocol.stimulus
        if stimulus and stimulus.waveforms:  # NEURON 9.0.2 aborts (nrnthread_dat2_vecplay)
            return (
                "CoreNEURON cannot play a waveform into the clamp (protocol.stimulus.waveforms); "
                "use engine neuron"
            )
        return None

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
            from neuroptimus.optimization.problem.data import fetch  # noqa: PLC0415 (lazy: pooch's HTTP stack loads only for data files to fetch)

            return fetch(path)
        return Path(self.resolve(path))


def validation_spec(spec: ProblemSpec) -> ProblemSpec:
    """The validation as a problem: ``spec`` with its protocol(s), target and costs replaced by
    the held-out ones. Its own ``validation`` is the training's protocol and target (with
    ``best: 0``), so a features target shared by both is checked against both sets of
    sweeps. Raises pydantic's ValidationError (locations are the validation's own)."""
    validation = spec.validation
    data = spec.model_dump(by_alias=True, exclude={"validation"})
    held = validation.model_dump(by_alias=True, exclude_unset=True)
    if spec.model.simulator == "emodel":
        data["protocols"] = held["protocols"]
        data["validation"] = {
            "best": 0,
            "protocols": [p.model_dump(by_alias=True) for p in spec.protocols],
        }
    else:
        data.update(protocol=held["protocol"], target=held["target"])
        data["costs"] = held.get("costs") or data["costs"]
        data["validation"] = {
            "best": 0, "protocol": spec.protocol.model_dump(by_alias=True),
            "target": spec.target.model_dump(), "costs": spec.costs.model_dump(),
        }  # fmt: skip
    return ProblemSpec.model_validate(data)
