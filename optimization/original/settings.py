"""Convert a settings JSON of the original Neuroptimus into a problem file of this project.

The original tool saves its whole configuration as ``<name>_settings.json`` (a mapping under
``"attributes"``). This module reads one, finds the files it names — settings carry absolute
paths of their author's machine, so a file missing there is looked up by name beside the
settings file — and builds the equivalent problem mapping, with a note for everything that
cannot be carried over. :func:`import_settings` also writes the problem (YAML with the notes as
comments at the top) and the user function, if any, beside it.

What the original does with each field (the semantics reproduced here) is described in the
project's use-case notes: parameters are applied to one segment (``"sec seg mech param"``), to a
section (``"sec param"``) or by the user function; a string amplitude is a waveform file; the
target's time column is detected from its 5th line; a target sampled coarser than the
simulation is up-sampled onto the simulation grid.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.original.algorithms import algorithm_from_settings
from neuroptimus.optimization.original.external import (
    external_model,
    external_parameters,
    external_protocol_and_target,
    is_external,
)
from neuroptimus.optimization.original.protocol_target import ProtocolAndTarget
from neuroptimus.optimization.problem.problem_yaml import dump_problem
from neuroptimus.optimization.problem.spec import CostName
from neuroptimus.optimization.simulators.nmodl_compat import neuron9_patches

USER_FUNCTION_FILE = "user_function.py"

_DEF_LINE = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


class SettingsImportError(UserError, ValueError):
    """A settings file that cannot be converted; the message is one line naming the field."""


@dataclass
class ImportResult:
    """The converted problem, what was resolved and what could not be carried over."""

    problem: dict[str, Any]
    text: str  # the problem file: YAML with the notes as comments at the top
    resolved: list[str] = field(default_factory=list)  # "field: original -> found path"
    notes: list[str] = field(default_factory=list)  # what was not (or differently) carried over
    user_function: str | None = None  # source written beside the problem file
    files: dict[str, str] = field(default_factory=dict)  # name beside the problem -> text


class _Converter(ProtocolAndTarget):
    """One conversion: the settings' attributes, where they came from and where they go."""

    def __init__(self, settings_path: Path, out_path: Path) -> None:
        self.path = settings_path
        self.folder = settings_path.resolve().parent
        self.out_folder = out_path.resolve().parent
        self.resolved: list[str] = []
        self.notes: list[str] = []
        self.comments: dict[str, str] = {}
        self.patches: dict[str, str] = {}  # patch file name -> unified diff
        self.attributes = _read(settings_path)

    # -- fields and files ---------------------------------------------------------------------

    def error(self, name: str, message: str) -> SettingsImportError:
        return SettingsImportError(f"{self.path}: {name}: {message}")

    def get(self, name: str, default: Any = ...) -> Any:
        value = self.attributes.get(name, default)
        if value is ...:
            raise self.error(name, "required field is missing")
        return value

    def number(self, name: str) -> float:
        value = self.get(name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.error(name, f"expected a number, got {value!r}")
        return value

    def find(self, name: str, value: Any, folder: bool = False) -> Path:
        """The file (or folder) a settings path names: there if it exists, else by its name
        beside the settings file (or the settings file's own folder, if that is its name)."""
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"expected a path, got {value!r}")
        original = Path(value.strip())
        # the last part of the path, also of a Windows one (C:\Users\…\model.hoc)
        base = re.split(r"[\\/]", value.strip().rstrip("/\\"))[-1]
        exists = Path.is_dir if folder else Path.is_file
        candidates = [original] if original.is_absolute() else [self.folder / original]
        candidates.append(self.folder / base)
        if folder and base == self.folder.name:
            candidates.append(self.folder)
        for candidate in candidates:
            if exists(candidate):
                found = candidate.resolve()
                where = (
                    "" if candidate == candidates[0]
                    else " (the settings file's folder)" if candidate == self.folder
                    else " (found beside the settings file)"
                )  # fmt: skip
                self.resolved.append(f"{name}: {value} -> {found}{where}")
                return found
        kind = "folder" if folder else "file"
        raise self.error(name, f"{kind} {value} not found, nor {base} beside the settings file")

    def relative(self, path: Path) -> str:
        """How the problem file names a path: relative to it when inside its folder."""
        text = os.path.relpath(path, self.out_folder)
        return str(path) if text.startswith("..") else Path(text).as_posix()

    # -- sections of the problem --------------------------------------------------------------

    def convert(self) -> dict[str, Any]:
        simulator = self.get("simulator", "Neuron")
        if is_external(simulator):
            return self.convert_external()
        if simulator != "Neuron":
            raise self.error(
                "simulator", f"{simulator!r}: expected Neuron or External (Python)"
            )  # fmt: skip
        kinds = self.get("type", None) or ["voltage"]
        features = (kinds if isinstance(kinds, list) else [kinds])[-1] == "features"
        model, user_function = self.model()
        problem = self.heading()
        problem["model"] = model
        problem["parameters"] = self.parameters(user_function is not None)
        problem["protocol"], problem["target"] = self.protocol_and_target(features)
        problem["costs"] = self.costs(features, problem["target"])
        return self.finish(problem)

    def convert_external(self) -> dict[str, Any]:
        """An external program through the original's file protocol (settings_external)."""
        kinds = self.get("type", None) or ["voltage"]
        if (kinds if isinstance(kinds, list) else [kinds])[-1] == "features":
            raise self.error("type", "features targets of external programs are not supported")
        problem = self.heading()
        parameters = external_parameters(self)
        problem["model"] = external_model(self, len(parameters))
        problem["parameters"] = parameters
        problem["protocol"], problem["target"] = external_protocol_and_target(self)
        problem["costs"] = self.costs(False, problem["target"])
        return self.finish(problem)

    def heading(self) -> dict[str, Any]:
        return {
            "name": self.path.name.removesuffix(".json").removesuffix("_settings") or "imported",
            "description": f"Imported from the original Neuroptimus settings {self.path.name}",
        }

    def finish(self, problem: dict[str, Any]) -> dict[str, Any]:
        """Algorithm, seed and the notes on what is left out (common to every kind)."""
        problem["algorithm"] = self.algorithm()
        seed = self.get("seed", None)
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int | float) or seed != int(seed):
                raise self.error("seed", f"expected a whole number, got {seed!r}")
            problem["seed"] = int(seed)
        self.ignored()
        return problem

    def model(self) -> tuple[dict[str, Any], str | None]:
        model: dict[str, Any] = {"simulator": "neuron"}
        model["hoc"] = self.relative(self.find("model_path", self.get("model_path")))
        spec_dir = self.get("model_spec_dir", None)
        if isinstance(spec_dir, str) and spec_dir.strip():
            folder = self.find("model_spec_dir", spec_dir, folder=True)
            if any(folder.glob("*.mod")):
                model["mechanisms"] = self.relative(folder)
                self.neuron9(model, folder)
            else:
                self.resolved[-1] += "; no .mod files there: no mechanisms to compile"
        source = (self.get("u_fun_string", "") or "").strip('"')
        if not source.strip():
            return model, None
        match = _DEF_LINE.search(source)
        if not match:
            raise self.error("u_fun_string", "the user function has no `def NAME(...)` line")
        try:
            compile(source, "u_fun_string", "exec")
        except SyntaxError as error:
            raise self.error(
                "u_fun_string", f"the user function is not valid Python (line {error.lineno}: "
                f"{error.msg})"
            ) from None  # fmt: skip
        model["user_function"] = {"file": USER_FUNCTION_FILE, "function": match.group(1)}
        self.comments["model.user_function"] = "called as function(h, values) after the build"
        return model, source

    def neuron9(self, model: dict[str, Any], folder: Path) -> None:
        """Patches for .mod files NEURON 9 refuses (the original ran NEURON 8)."""
        for mod_name, (diff, dropped) in neuron9_patches(folder).items():
            patch = f"{Path(mod_name).stem}_neuron9.patch"
            self.patches[patch] = diff
            model.setdefault("patches", []).append(patch)
            self.notes.append(
                f"{mod_name}: its RANGE lists {', '.join(dropped)}, which are also its "
                f"FUNCTIONs; NEURON 9 refuses that (NEURON 8 did not): {patch}, written beside "
                "this file, drops them from RANGE before compiling (no change in behaviour)"
            )
        if "patches" in model:
            self.comments["model.patches"] = "NEURON 9 fixes (see the notes)"

    def bounded_entries(self) -> list[tuple[int, Any, dict[str, Any]]]:
        """(index, ``adjusted_params`` entry, its ``{"lower", "upper"}`` from ``boundaries``)
        for every parameter, after checking both lists."""
        entries = self.get("adjusted_params")
        bounds = self.get("boundaries")
        if not isinstance(entries, list) or not entries:
            raise self.error("adjusted_params", "expected a non-empty list of parameters")
        if (
            not isinstance(bounds, list)
            or len(bounds) != 2
            or any(not isinstance(row, list) or len(row) != len(entries) for row in bounds)
        ):
            raise self.error(
                "boundaries", f"expected [[lower…], [upper…]] with {len(entries)} values each"
            )
        checked = []
        for index, (entry, lower, upper) in enumerate(zip(entries, *bounds, strict=True)):
            for side, value in (("lower", lower), ("upper", upper)):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    where = f"boundaries (adjusted_params[{index}])"
                    raise self.error(where, f"{side} bound {value!r}")
            checked.append((index, entry, {"lower": lower, "upper": upper}))
        return checked

    def parameters(self, by_user_function: bool) -> list[dict[str, Any]]:
        parameters = []
        for index, entry, bounds in self.bounded_entries():
            where = f"adjusted_params[{index}]"
            tokens = str(entry).split()
            if by_user_function:
                name = tokens[-1] if len(tokens) > 2 else tokens[0] if tokens else ""
                parameter: dict[str, Any] = {"name": name}
            elif len(tokens) == 4:
                section, segment, _mechanism, prop = tokens
                if not re.fullmatch(r"\d+", segment):
                    raise self.error(where, f"{entry!r}: segment {segment!r} is not an index")
                parameter = {
                    "name": prop,
                    "section": section,
                    "segment": int(segment),
                    "property": prop,
                }
            elif len(tokens) == 2:
                parameter = {"name": tokens[1], "hoc": f"{tokens[0]}.{tokens[1]}"}
            else:
                raise self.error(
                    where, f"{entry!r}: expected 'section segment mechanism parameter' or "
                    "'section parameter' (or a user function in u_fun_string)"
                )  # fmt: skip
            parameters.append({**parameter, **bounds})
        self.unique_names(parameters)
        if any("hoc" in p for p in parameters):
            self.notes.append(
                "'section parameter' entries became hoc assignments (section.parameter); the "
                "original's fallback to a point process at section(0.5) is not carried over"
            )
        return parameters

    def unique_names(self, parameters: list[dict[str, Any]]) -> None:
        """Names valid as identifiers and unique (a property set in two sections is named
        after its section too)."""
        for parameter in parameters:
            name = re.sub(r"\W", "_", parameter["name"]) or "parameter"
            parameter["name"] = f"p_{name}" if name[0].isdigit() else name
        names = [p["name"] for p in parameters]
        for parameter in parameters:
            if names.count(parameter["name"]) > 1 and "section" in parameter:
                section = re.sub(r"\W+", "_", parameter["section"]).strip("_")
                parameter["name"] = f"{section}_{parameter['segment']}_{parameter['name']}"
        seen: dict[str, int] = {}
        for parameter in parameters:
            name = parameter["name"]
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:
                parameter["name"] = f"{name}_{seen[name]}"

    def costs(self, features: bool, target: dict[str, Any]) -> dict[str, Any]:
        names = self.get("feats")
        weights = self.get("weights")
        if not isinstance(names, list) or not names:
            raise self.error("feats", "expected a non-empty list of cost functions")
        if not isinstance(weights, list) or len(weights) != len(names):
            raise self.error("weights", f"expected {len(names)} weights, one per feats entry")
        for weight in weights:
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise self.error("weights", f"weight {weight!r} is not a non-negative number")
        costs: dict[str, Any] = {}
        if features:
            costs["features"] = [
                {"name": str(n), "weight": w} for n, w in zip(names, weights, strict=True)
            ]
            self.check_features(target, names)
        else:
            costs["functions"] = self.cost_functions(names, weights)
        costs["spike_threshold_mV"] = self.number("spike_thres")
        window = self.get("spike_window", None)
        if not features and isinstance(window, int | float) and not isinstance(window, bool):
            samples = max(0, round(window))
            if not math.isclose(samples, window):
                self.notes.append(f"spike_window {window:g} samples rounded to {samples}")
            costs["spike_window_samples"] = samples
        if features:
            self.comments["costs.spike_threshold_mV"] = "eFEL's Threshold"
        return costs

    def cost_functions(self, names: list[Any], weights: list[float]) -> list[dict[str, Any]]:
        known = {name.casefold(): name for name in CostName.__args__}
        functions = []
        for name, weight in zip(names, weights, strict=True):
            project = known.get(str(name).strip().casefold())
            if project is None:
                raise self.error(
                    "feats", f"unknown cost function {name!r}; known: {', '.join(known.values())}"
                )
            functions.append({"name": project, "weight": weight})
        return functions

    def check_features(self, target: dict[str, Any], names: list[Any]) -> None:
        path = self.out_folder / target["features"]
        data = json.loads(path.read_text()).get("features", {})
        missing = [str(n) for n in names if str(n) not in data]
        if missing:
            self.notes.append(
                f"feats {', '.join(missing)} have no statistics in the features file: they "
                "contribute 0"
            )

    def algorithm(self) -> dict[str, Any]:
        algorithm, notes = algorithm_from_settings(self.get("current_algorithm", None))
        self.notes += notes
        return algorithm

    def ignored(self) -> None:
        starting = self.get("starting_points", None)
        if starting:
            self.notes.append(
                f"starting_points {starting} not carried over (a start point is an algorithm "
                "setting, x0, in unit-cube coordinates)"
            )


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SettingsImportError(f"{path}: settings file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsImportError(f"{path}: cannot read the settings file ({error})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsImportError(
            f"{path}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    if not isinstance(attributes, dict):
        raise SettingsImportError(
            f"{path}: attributes: required field is missing (not an original Neuroptimus "
            "settings file)"
        )
    return attributes


def convert_settings(settings_path: str | Path, out_path: str | Path) -> ImportResult:
    """The problem equivalent to a settings file, with paths relative to ``out_path``'s
    folder. Nothing is written; raises SettingsImportError (one line) when it cannot."""
    settings_path, out_path = Path(settings_path), Path(out_path)
    converter = _Converter(settings_path, out_path)
    problem = _tidy(converter.convert())
    header = [
        f"Imported by `neuroptimus import-settings` from {settings_path.name} (a settings file "
        "of the original Neuroptimus). Paths are relative to this file.",
    ]
    if converter.notes:
        header += ["", "Not carried over, or carried over differently:"]
        header += [f"- {note}" for note in converter.notes]
    text = dump_problem(problem, header, converter.comments)
    files = dict(converter.patches)
    source = None
    if "user_function" in problem["model"]:
        source = _user_function_file(settings_path, problem["model"]["user_function"]["function"])
        source += (converter.get("u_fun_string") or "").strip('"')
        files[USER_FUNCTION_FILE] = source
    return ImportResult(problem, text, converter.resolved, converter.notes, source, files)


def _tidy(value: Any) -> Any:
    """Whole-number floats as integers (``tstop_ms: 1000``, not ``1000.0``): easier to read,
    and every such field accepts an integer."""
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _user_function_file(settings_path: Path, function: str) -> str:
    return (
        f"# User function imported from {settings_path.name} (u_fun_string) by `neuroptimus "
        "import-settings`.\n"
        f"# Called as {function}(h, values) once per evaluation, after the model is built: "
        "NEURON's `h`\n"
        "# is also a global here, values are the parameters in the problem's order (real units)."
        "\n"
    )


def import_settings(
    settings_path: str | Path, out_path: str | Path, force: bool = False
) -> ImportResult:
    """Convert a settings file and write the problem to ``out_path``, with its user function
    and patches beside it; existing files that differ are kept unless ``force``."""
    out_path = Path(out_path)
    result = convert_settings(settings_path, out_path)
    writes = [(out_path, result.text.encode())]
    for name, text in result.files.items():
        # a patch holds the .mod file's bytes as they are (read as latin-1, like the applier)
        data = text.encode("latin-1" if name.endswith(".patch") else "utf-8")
        writes.append((out_path.parent / name, data))
    for path, data in writes:
        if path.exists() and not force and path.read_bytes() != data:
            raise SettingsImportError(f"{path}: exists already (use --force to overwrite it)")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for path, data in writes:
        path.write_bytes(data)
    return result
