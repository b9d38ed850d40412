"""Building blocks of a NEURON model as users write them: the entry file loaded from its own
folder, the ways a parameter reaches the model, a user function, and the model's parameter
state as built (restored before every evaluation)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from optimization.simulators.base import ModelError
from optimization.spec import ParameterSpec, UserFunctionSpec

Setter = Callable[[float], None]


@contextmanager
def working_directory(folder: Path):
    """Run a block in ``folder`` (models load their sibling files by relative path)."""
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def load_entry_file(h: Any, path: Path) -> None:
    """Load a hoc file (``load_file``) or run a Python file, with the cwd at its folder."""
    with working_directory(path.parent):
        if path.suffix == ".py":
            namespace = {"__name__": "__neuroptimus_model__", "__file__": str(path), "h": h}
            try:
                exec(compile(path.read_text(), str(path), "exec"), namespace)
            except Exception as error:
                raise ModelError(f"model file {path}: {type(error).__name__}: {error}") from None
            return
        try:  # a hoc error raises (NEURON prints where); a missing file returns 0
            loaded = h.load_file(1, str(path))
        except RuntimeError as error:
            raise ModelError(f"NEURON could not load the model file {path}: {error}") from None
    if not loaded:
        raise ModelError(f"NEURON could not load the model file {path}")


def find_section(h: Any, name: str) -> Any:
    """A section by hoc name: ``soma``, ``dend[3]`` or ``cell.soma[0]``."""
    obj = h
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


def _section_group(h: Any, parameter: ParameterSpec, model: str) -> list[Any]:
    """``all``: every section; otherwise a hoc SectionList (or one section) of that name."""
    name = parameter.sections
    if name == "all":
        return list(h.allsec())
    try:
        group = find_section(h, name)
        return [group]
    except ModelError:
        pass
    group = getattr(h, name, None)
    if group is None or not isinstance(group, type(h.SectionList())):
        raise ModelError(
            f"parameter {parameter.name}: sections {name!r} is neither 'all' nor a section "
            f"list or section of {model}"
        )
    return list(group)


def make_setter(h: Any, parameter: ParameterSpec, model: str) -> Setter:
    """How one parameter is applied, checked against the built model (one-line ModelError for
    a section, segment or variable that does not exist)."""
    name, prop = parameter.name, parameter.property
    if parameter.hoc is not None:
        target = parameter.hoc
        # execute1(…, 0): a missing target is reported here, not printed by NEURON
        if not h.execute1(f"{target} = {target}", 0):
            raise ModelError(f"parameter {name}: hoc target {target!r} does not exist in {model}")

        def assign(value: float) -> None:
            if not h(f"{target} = {float(value)!r}"):
                raise ModelError(f"could not set {name} = {value!r}")

        return assign
    if parameter.section is not None:
        try:
            section = find_section(h, parameter.section)
        except ModelError as error:
            raise ModelError(f"parameter {name}: {error}") from None
        index = parameter.segment
        if index >= section.nseg:
            raise ModelError(
                f"parameter {name}: section {parameter.section} has {section.nseg} segment(s), "
                f"so segment {index} does not exist (segments count from 0)"
            )
        if not hasattr(list(section)[index], prop):
            raise ModelError(
                f"parameter {name}: {parameter.section} segment {index} has no range variable "
                f"{prop!r} (is the mechanism inserted there?)"
            )

        def on_segment(value: float) -> None:  # the original's list(sec)[seg]
            setattr(list(section)[index], prop, value)

        return on_segment
    sections = _section_group(h, parameter, model)
    for section in sections:
        if not hasattr(section, prop):
            raise ModelError(
                f"parameter {name}: section {section.name()} has no property or range variable "
                f"{prop!r} (is the mechanism inserted there?)"
            )

    def on_sections(value: float) -> None:  # a range variable is set on every segment
        for section in sections:
            setattr(section, prop, value)

    return on_sections


def load_user_function(h: Any, spec: UserFunctionSpec, path: Path) -> Callable:
    """The user's function, from Python source run with NEURON's ``h`` in its globals."""
    where = f"model.user_function: {path}"
    namespace: dict[str, Any] = {"h": h, "__name__": "__neuroptimus_user_function__"}
    try:
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        raise ModelError(f"{where}: cannot run the file ({message})") from None
    function = namespace.get(spec.function)
    if not callable(function):
        raise ModelError(f"{where}: the file defines no function {spec.function!r}")
    return function


class ModelState:
    """The parameters of every section as built — Ra, cm, the density mechanisms' PARAMETERs
    and the ions' reversal potentials of every segment, and ``celsius`` — put back before
    every evaluation. The original reloads the model for each evaluation; without this, a
    value one evaluation sets (a user function that sets a variable only for some values)
    would leak into the next. Mechanism GLOBALs, inserted mechanisms and new sections are not
    covered: a user function must set those on every call."""

    def __init__(self, h: Any) -> None:
        self._h = h
        self._celsius = h.celsius
        self._sections = []
        names_of: dict[str, list[str]] = {}
        for section in h.allsec():
            info = section.psection()
            variables = ["cm"] + [f"e{ion}" for ion in info["ions"]]
            for mechanism in info["density_mechs"]:
                if mechanism not in names_of:
                    names_of[mechanism] = _parameters_of(h, mechanism)
                variables += names_of[mechanism]
            segments = [
                [(v, getattr(segment, v)) for v in variables if hasattr(segment, v)]
                for segment in section
            ]
            self._sections.append((section, section.Ra, segments))

    def restore(self) -> None:
        """Back to the parameters as built (does not change the accessed section)."""
        self._h.celsius = self._celsius
        for section, ra, segments in self._sections:
            section.Ra = ra
            for segment, values in zip(section, segments, strict=True):
                for variable, value in values:
                    setattr(segment, variable, value)


def _parameters_of(h: Any, mechanism: str) -> list[str]:
    """A density mechanism's PARAMETER range variables (``gbar_kd`` …)."""
    standard = h.MechanismStandard(mechanism, 1)
    name = h.ref("")
    names = []
    for i in range(int(standard.count())):
        standard.name(name, i)
        names.append(name[0])
    return names
