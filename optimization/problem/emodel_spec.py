"""E-model problems (a detailed cell as BluePyOpt describes it), in a problem file's own style.

The model (``model.simulator: emodel``): a morphology read by NEURON's Import3d, its standard
section lists (``all``, ``somatic``, ``axonal``, ``basal``, ``apical``, ``myelinated``), the
axon optionally replaced by two stub sections, ``nseg`` by the length rule, mechanisms
inserted per section list and fixed values (``model.fixed``); the free parameters are the
problem's ``parameters`` with ``sections`` + ``property`` (a section list and a range or
section variable, optionally a ``distribution`` of the soma distance) or ``hoc`` (a global
such as ``celsius``). Values are applied fixed first, then free, each in the file's order.

The protocols (top-level ``protocols``): each is one sweep of its own duration, with step
stimuli (several add up: a step and a holding current), recordings at a section list's
section or at a soma distance, and per recording the eFEL features scored as
``|value - mean| / std`` (250 where eFEL gives nothing), one component per (protocol,
recording, feature).
"""

from __future__ import annotations

import ast
import math
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MISSING_SCORE = 250.0  # BluePyOpt's score of a feature eFEL cannot compute
SECTION_LISTS = ("all", "somatic", "axonal", "basal", "apical", "myelinated")
_NAMES_IN_EXPRESSIONS = {"distance", "value", "exp", "log", "sqrt", "pi", "math"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


SectionList = Annotated[str, Field(description="a section list: " + ", ".join(SECTION_LISTS))]


def check_expression(text: str) -> str:
    """An arithmetic expression of ``distance`` (µm from the soma's middle) and ``value``."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ValueError(f"distribution {text!r} is not an arithmetic expression") from None
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load,
               ast.Call, ast.Attribute, ast.operator, ast.unaryop)  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ValueError(f"distribution {text!r}: only arithmetic, exp, log and sqrt")
        if isinstance(node, ast.Attribute) and not (
            isinstance(node.value, ast.Name) and node.value.id == "math"
            and node.attr in _NAMES_IN_EXPRESSIONS
        ):  # fmt: skip
            raise ValueError(f"distribution {text!r}: of math only math.exp, math.log …")
        if isinstance(node, ast.Name) and node.id not in _NAMES_IN_EXPRESSIONS:
            raise ValueError(
                f"distribution {text!r}: unknown name {node.id!r} (use distance and value)"
            )
    return text


class FixedValue(_Strict):
    """A value that is not fitted: a global (``hoc: celsius``) or a variable on a section
    list (``sections`` + ``property``), optionally distributed by the soma distance."""

    hoc: Literal["celsius", "v_init"] | None = Field(None, description="a global of NEURON")
    sections: SectionList | None = None
    property: str | None = Field(None, description="range variable (gbar_x), cm, Ra, ena …")
    distribution: str | None = Field(None, description="a name of model.distributions")
    value: float

    @model_validator(mode="after")
    def _target(self) -> FixedValue:
        if (self.hoc is None) == (self.sections is None or self.property is None):
            raise ValueError("give hoc (celsius or v_init) or sections and property")
        if self.hoc is not None and (self.sections or self.property or self.distribution):
            raise ValueError(f"hoc {self.hoc} is a global: leave sections, property and "
                             "distribution out")  # fmt: skip
        return self


class EModelSpec(_Strict):
    """A detailed cell built from a morphology file (see the module's description)."""

    simulator: Literal["emodel"]
    morphology: str = Field(description=".asc, .swc (or .h5): a path or a data:// name")
    mechanisms: str | None = Field(None, description="folder of .mod files: path or data://")
    patches: list[str] = Field(default_factory=list, description="unified diffs applied to "
                               "copies of the mechanism files before compiling")  # fmt: skip
    replace_axon: bool = Field(
        False, description="the axon replaced by two stub sections (axon[0], axon[1]) of "
        "axon_stub_length_um / 2 each, their diameters from the original axon (BluePyOpt's)"
    )  # fmt: skip
    axon_stub_length_um: Annotated[float, Field(gt=0)] = 60.0
    nseg_length_um: Annotated[float, Field(gt=0)] | None = Field(
        40.0, description="nseg = 1 + 2 int(L / this) in every section (BluePyOpt's "
        "nseg_frequency); null keeps Import3d's nseg"
    )  # fmt: skip
    insert: dict[SectionList, list[str]] = Field(
        default_factory=dict, description="mechanisms inserted per section list, in order"
    )
    distributions: dict[str, str] = Field(
        default_factory=dict,
        description="name → expression of distance (µm from the soma's middle) and value, "
        "e.g. (-0.8696 + 2.087*exp(distance*0.0031))*value",
    )
    fixed: list[FixedValue] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_names(self) -> EModelSpec:
        for name, text in self.distributions.items():
            try:
                check_expression(text)
            except ValueError as error:
                raise ValueError(f"distributions.{name}: {error}") from None
        lists = set(self.insert) | {f.sections for f in self.fixed if f.sections}
        unknown = sorted(lists - set(SECTION_LISTS))
        if unknown:
            raise ValueError(f"section list {unknown[0]!r} is none of {', '.join(SECTION_LISTS)}")
        for k, fixed in enumerate(self.fixed):
            if fixed.distribution and fixed.distribution not in self.distributions:
                raise ValueError(f"fixed[{k}].distribution {fixed.distribution!r} is not in "
                                 "model.distributions")  # fmt: skip
        return self


class LocationSpec(_Strict):
    """A point of the cell: ``sections``' section number ``index`` at ``position`` (0 … 1),
    or the point at ``soma_distance_um`` (path length from the soma's middle) on that list
    (the last of the list's sections that spans the distance, as BluePyOpt picks it)."""

    sections: SectionList = "somatic"
    index: Annotated[int, Field(ge=0)] = 0
    position: Annotated[float, Field(ge=0, le=1)] = 0.5
    soma_distance_um: Annotated[float, Field(ge=0)] | None = None


class StepSpec(_Strict):
    """A current step (IClamp) of ``amplitude_nA`` from ``delay_ms`` for ``duration_ms``; the
    sweep lasts the longest ``total_duration_ms`` of its stimuli."""

    type: Literal["step"] = "step"
    location: LocationSpec = Field(LocationSpec(), title="Location")
    amplitude_nA: float
    delay_ms: Annotated[float, Field(ge=0)]
    duration_ms: Annotated[float, Field(ge=0)]
    total_duration_ms: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _units(self) -> StepSpec:
        if abs(self.amplitude_nA) > 100:
            raise ValueError(f"amplitude_nA {self.amplitude_nA:g} is implausible (did you give "
                             "pA?)")  # fmt: skip
        return self


class FeatureSpec(_Strict):
    """An eFEL feature of one recording with its experimental mean and std."""

    name: Annotated[str, Field(min_length=1, description="an eFEL feature name")]
    mean: float
    std: Annotated[float, Field(gt=0)]
    weight: Annotated[float, Field(ge=0)] = 1.0
    threshold_mV: float | None = Field(None, description="default: the recording's")


class EModelRecordingSpec(_Strict):
    """The membrane voltage at a location, and the features measured on it."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    location: LocationSpec = Field(LocationSpec(), title="Location")
    threshold_mV: float = Field(-20.0, description="eFEL's spike Threshold for its features")
    features: list[FeatureSpec] = Field(default_factory=list)


class EModelProtocolSpec(_Strict):
    """One sweep: its stimuli, recordings and features."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    stimuli: Annotated[list[StepSpec], Field(min_length=1)]
    recordings: Annotated[list[EModelRecordingSpec], Field(min_length=1)]
    feature_window_ms: Annotated[list[float], Field(min_length=2, max_length=2)] | None = Field(
        None, description="eFEL's stim_start and stim_end; default: the first stimulus's "
        "delay and delay + duration (BluePyOpt's rule)"
    )  # fmt: skip
    cvode: bool = Field(True, description="variable time step, NEURON's default tolerances")
    dt_ms: Annotated[float, Field(gt=0, le=1)] = 0.025

    @property
    def duration_ms(self) -> float:
        return max(stimulus.total_duration_ms for stimulus in self.stimuli)

    @property
    def window_ms(self) -> tuple[float, float]:
        if self.feature_window_ms is not None:
            return (self.feature_window_ms[0], self.feature_window_ms[1])
        first = self.stimuli[0]
        return (first.delay_ms, first.delay_ms + first.duration_ms)

    @model_validator(mode="after")
    def _names(self) -> EModelProtocolSpec:
        names = [r.name for r in self.recordings]
        if len(set(names)) != len(names):
            raise ValueError(f"protocol {self.name}: recording names must be unique")
        start, end = self.window_ms
        if not 0 <= start < end:
            raise ValueError(f"protocol {self.name}: feature window [{start:g}, {end:g}] ms is "
                             "empty")  # fmt: skip
        return self


def component_names(protocols: list[EModelProtocolSpec]) -> list[str]:
    """``protocol.recording.feature`` per scored feature (BluePyOpt's objective names)."""
    return list(component_weights(protocols))


def component_weights(protocols: list[EModelProtocolSpec]) -> dict[str, float]:
    """Each component's weight by its name, ``protocol.recording.feature``, in order."""
    return {
        f"{protocol.name}.{recording.name}.{feature.name}": feature.weight
        for protocol in protocols
        for recording in protocol.recordings
        for feature in recording.features
    }


def check_emodel_problem(spec: Any) -> None:
    """Whole-problem checks of an e-model problem (``spec`` is a ProblemSpec)."""
    model = spec.model
    if spec.protocols is None:
        raise ValueError("protocols: an emodel model needs its protocols (stimuli, recordings "
                         "and features)")  # fmt: skip
    for field in ("protocol", "target", "costs"):
        if getattr(spec, field) is not None:
            raise ValueError(f"{field}: an emodel problem's sweeps and scores are its "
                             "protocols; leave this section out")  # fmt: skip
    names = [p.name for p in spec.protocols]
    if len(set(names)) != len(names):
        raise ValueError("protocols: names must be unique")
    if not component_names(spec.protocols):
        raise ValueError("protocols: no recording has features to score")
    for p in spec.parameters:
        if p.hoc is not None:
            if p.hoc not in ("celsius", "v_init") or p.distribution:
                raise ValueError(f"parameters: {p.name}: an emodel global is celsius or v_init "
                                 "(without distribution)")  # fmt: skip
            continue
        if p.sections is None or p.property is None:
            raise ValueError(f"parameters: {p.name} needs sections (a section list) and "
                             "property, or hoc")  # fmt: skip
        if p.sections not in SECTION_LISTS:
            raise ValueError(f"parameters: {p.name}: sections {p.sections!r} is none of "
                             f"{', '.join(SECTION_LISTS)}")  # fmt: skip
        if p.distribution is not None and p.distribution not in model.distributions:
            raise ValueError(f"parameters: {p.name}: distribution {p.distribution!r} is not "
                             "in model.distributions")  # fmt: skip


def evaluate_distribution(text: str, distance: float, value: float) -> float:
    """The expression's value at a soma distance (µm) for a parameter value."""
    names = {"distance": distance, "value": value, "exp": math.exp, "log": math.log,
             "sqrt": math.sqrt, "pi": math.pi, "math": math}  # fmt: skip
    return float(eval(_compiled(text), {"__builtins__": {}}, names))


@lru_cache(maxsize=64)
def _compiled(text: str):
    return compile(check_expression(text), "<distribution>", "eval")
