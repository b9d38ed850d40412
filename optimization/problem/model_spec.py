"""The problem file's model: its kinds (a NEURON model, a Python model, an external program,
a BluePyOpt e-model) and the fitted parameters with their bounds and targets."""

from __future__ import annotations

import builtins
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from neuroptimus.optimization.problem.emodel_spec import EModelSpec
from neuroptimus.optimization.problem.spec_base import Strict as _Strict


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
    engine: Literal["neuron", "coreneuron"] = Field(
        "neuron",
        description="what integrates the sweeps: NEURON itself, or CoreNEURON (fixed steps "
        "and stdrun's own run procedures only; the mechanisms compiled for both; `neuroptimus "
        "benchmark mechanisms PROBLEM --engines` compares the two on a model)",
    )

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


def form_any_of(schema: dict[str, Any]) -> None:
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
