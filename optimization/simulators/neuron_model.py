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

from neuroptimus.optimization.problem.model_spec import ParameterSpec, UserFunctionSpec
from neuroptimus.optimization.simulators.base import ModelError, VectorError

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
            statement = f"{target} = {float(value)!r}"
            if not h(statement):  # NEURON prints why to the model's output
                raise VectorError(
                    f"parameter {name}: NEURON refused the hoc statement {statement!r} "
                    "(its message is in the model output)"
                )

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
    """The model as built, put back before every evaluation: of every section its
    segmentation (``nseg``), geometry (``L`` and diameters, or its 3-D points), ``Ra``, the
    density mechanisms inserted, and per segment ``cm``, the ions' reversal potentials and
    the mechanisms' PARAMETERs; the GLOBALs of every mechanism; ``celsius``. The original
    reloads the model for each evaluation; without this, what one evaluation's user function
    sets (a value set only for some vectors, ``nseg`` by the d_lambda rule, a mechanism
    uninserted, a GLOBAL) would leak into the next. Sections and point processes a user
    function creates are not covered; a section it deletes cannot be brought back."""

    def __init__(self, h: Any) -> None:
        self._h = h
        self._celsius = h.celsius
        self._globals = _mechanism_globals(h)
        self._sections = [_SectionState(h, section) for section in h.allsec()]

    def deleted_section(self) -> str | None:
        """The name (as built) of a section of the model that no longer exists, if any."""
        for section in self._sections:
            if not section.exists():
                return section.name
        return None

    def restore(self) -> None:
        """Back to the model as built (does not change the accessed section). A section
        deleted since is a ModelError: NEURON cannot rebuild it in this process."""
        h = self._h
        h.celsius = self._celsius
        for name, value in self._globals:
            setattr(h, name, value)
        for section in self._sections:
            section.restore()


def _mechanism_globals(h: Any) -> list[tuple[str, float]]:
    """(hoc name, value) of every scalar GLOBAL of every density and point mechanism."""
    values = []
    name = h.ref("")
    for kind in (0, 1):
        types = h.MechanismType(kind)
        for i in range(int(types.count())):
            types.select(i)
            types.selected(name)
            standard = h.MechanismStandard(name[0], -1)
            for k in range(int(standard.count())):
                size = standard.name(name, k)
                if size == 1:  # arrays are left alone
                    values.append((name[0], getattr(h, name[0])))
    return values


class _SectionState:
    """One section as built (see ModelState)."""

    def __init__(self, h: Any, section: Any) -> None:
        self.section, self.name = section, section.name()
        self.nseg, self.Ra, self.L = section.nseg, section.Ra, section.L
        info = section.psection()
        self.mechanisms = set(info["density_mechs"])
        self.points = [
            tuple(getattr(h, f)(i, sec=section) for f in ("x3d", "y3d", "z3d", "diam3d"))
            for i in range(int(h.n3d(sec=section)))
        ]
        self.diameters = [segment.diam for segment in section]
        variables = ["cm"] + [f"e{ion}" for ion in info["ions"]]
        for mechanism in sorted(self.mechanisms):
            variables += _parameters_of(h, mechanism)
        self.segments = [
            [(v, getattr(segment, v)) for v in variables if hasattr(segment, v)]
            for segment in section
        ]
        self._h = h

    def exists(self) -> bool:
        try:
            self.section.name()
        except ReferenceError:  # deleted
            return False
        return True

    def restore(self) -> None:
        section = self.section
        if not self.exists():
            raise ModelError(
                f"section {self.name} was deleted by the user function in an earlier "
                "evaluation, and NEURON cannot rebuild it in this process: a user function "
                "must not delete the model's sections"
            )
        inserted = {m.name() for m in section(0.5)}
        for mechanism in inserted - self.mechanisms:
            if not mechanism.endswith("_ion"):  # NEURON keeps an ion once inserted
                section.uninsert(mechanism)
        for mechanism in self.mechanisms - inserted:
            section.insert(mechanism)
        if section.nseg != self.nseg:
            section.nseg = self.nseg
        section.Ra = self.Ra
        self._restore_geometry()
        for segment, values in zip(section, self.segments, strict=True):
            for variable, value in values:
                setattr(segment, variable, value)

    def _restore_geometry(self) -> None:
        """Only what changed: setting L or a diameter recomputes areas (and rescales 3-D
        points), which an unchanged model must not pay for or be rounded by."""
        section, h = self.section, self._h
        diameters = [segment.diam for segment in section]
        if section.L == self.L and diameters == self.diameters:
            return
        if self.points:
            h.pt3dclear(sec=section)
            for x, y, z, diam in self.points:
                h.pt3dadd(x, y, z, diam, sec=section)
            return
        section.L = self.L
        for segment, diam in zip(section, self.diameters, strict=True):
            segment.diam = diam


def _parameters_of(h: Any, mechanism: str) -> list[str]:
    """A density mechanism's PARAMETER range variables (``gbar_kd`` …)."""
    standard = h.MechanismStandard(mechanism, 1)
    name = h.ref("")
    names = []
    for i in range(int(standard.count())):
        standard.name(name, i)
        names.append(name[0])
    return names
