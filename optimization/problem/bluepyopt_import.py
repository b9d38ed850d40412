"""Convert a BluePyOpt e-model folder (the layout of BluePyOpt's ``examples/l5pc``) into a
problem file: ``config/mechanisms.json``, ``parameters.json``, ``protocols.json`` and
``features.json``, the morphology in ``morphology/`` and the NMODL files in ``mechanisms/``.

What the folder's Python scripts decide (BluePyOpt's l5pc example, ``l5pc_model.py`` and
``l5pc_evaluator.py``) is taken as they have it and said in the notes: the axon replaced, every
stimulus at the soma's middle, a somatic voltage recording ``soma`` in every protocol, the
Threshold -20 mV at the soma and -55 mV on dendrites (``dend`` in the name), the feature
window from the first stimulus (its whole sweep for ``bAP``), a failed simulation scored as
every feature missing (250 each)."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.emodel_spec import MISSING_SCORE, SECTION_LISTS

MORPHOLOGY_SUFFIXES = (".asc", ".swc", ".h5")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class BluePyOptImportError(UserError, ValueError):
    """The folder cannot be converted; the message names the file and the field."""


@dataclass
class EModelImport:
    """The converted problem (a mapping), its YAML text and what was not carried over."""

    problem: dict[str, Any]
    text: str
    carried: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BluePyOptImportError(f"{path}: not found (a BluePyOpt e-model folder has "
                                   "config/parameters.json, mechanisms.json, protocols.json "
                                   "and features.json)") from None  # fmt: skip
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BluePyOptImportError(f"{path}: not a JSON file ({error})") from None


class _Converter:
    def __init__(self, folder: Path, files_prefix: str | None, out_dir: Path) -> None:
        self.folder, self.config = folder, folder / "config"
        self.files_prefix, self.out_dir = files_prefix, out_dir
        self.carried: list[str] = []
        self.notes: list[str] = []

    def file_reference(self, path: Path) -> str:
        """A data:// name (bundled problems) or a path relative to the problem file."""
        relative = path.relative_to(self.folder).as_posix()
        if self.files_prefix is not None:
            return self.files_prefix + relative
        try:
            return Path(path).resolve().relative_to(self.out_dir.resolve()).as_posix()
        except ValueError:
            return str(path.resolve())

    def morphology(self) -> Path:
        found = sorted(
            p for p in (self.folder / "morphology").glob("*")
            if p.suffix.lower() in MORPHOLOGY_SUFFIXES
        )  # fmt: skip
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise BluePyOptImportError(
                f"{self.folder / 'morphology'}: expected one morphology file "
                f"({', '.join(MORPHOLOGY_SUFFIXES)}), found {names}"
            )
        if found[0].suffix.lower() == ".h5":
            self.notes.append(f"{found[0].name}: NEURON's Import3d reads .asc and .swc; "
                              "convert the .h5 file (morphio) before running")  # fmt: skip
        return found[0]

    def insert(self) -> dict[str, list[str]]:
        data = _read_json(self.config / "mechanisms.json")
        if not isinstance(data, dict):
            raise BluePyOptImportError(f"{self.config / 'mechanisms.json'}: must map section "
                                       "lists to mechanism names")  # fmt: skip
        for sections in data:
            self._check_list(sections, "mechanisms.json")
        count = sum(len(v) for v in data.values())
        self.carried.append(f"{count} mechanism insertions on {len(data)} section lists")
        return {sections: list(names) for sections, names in data.items()}

    def _check_list(self, name: str, where: str) -> None:
        if name not in SECTION_LISTS:
            raise BluePyOptImportError(f"{self.config / where}: section list {name!r} is none "
                                       f"of {', '.join(SECTION_LISTS)}")  # fmt: skip

    def parameters(self, distributions: dict[str, str]) -> tuple[list[dict], list[dict]]:
        """(fixed values, free parameters), in the file's order."""
        data = _read_json(self.config / "parameters.json")
        if not isinstance(data, list):
            raise BluePyOptImportError(f"{self.config / 'parameters.json'}: must be a list")
        fixed, free = [], []
        for k, entry in enumerate(data):
            where = f"parameters.json[{k}]"
            kind, name = entry.get("type"), entry.get("param_name")
            if "value" not in entry and "bounds" not in entry:
                raise BluePyOptImportError(f"{self.config / where}: has neither value nor bounds")
            if kind == "global":
                if name not in ("celsius", "v_init"):
                    self.notes.append(f"{where}: global {name} not carried over (celsius and "
                                      "v_init are)")  # fmt: skip
                    continue
                target = {"hoc": name}
                label = name
            elif kind in ("section", "range"):
                self._check_list(entry.get("sectionlist"), where)
                target = {"sections": entry["sectionlist"], "property": name}
                label = f"{name}.{entry['sectionlist']}"
                distribution = self._distribution(entry, where, distributions)
                if distribution is False:
                    continue
                if distribution:
                    target["distribution"] = distribution
            else:
                self.notes.append(f"{where}: parameter type {kind!r} not carried over")
                continue
            if "value" in entry:
                fixed.append({**target, "value": entry["value"]})
            else:
                lower, upper = entry["bounds"]
                free.append({"name": label, **target, "lower": lower, "upper": upper})
        self.carried.append(f"{len(free)} free parameters and {len(fixed)} fixed values")
        return fixed, free

    def _distribution(self, entry: dict, where: str, distributions: dict[str, str]):
        """The distribution's name (added to ``distributions``), None if uniform, False if
        it cannot be carried over."""
        if entry.get("dist_type", "uniform") == "uniform":
            return None
        text = entry.get("dist")
        others = sorted(set(_PLACEHOLDER.findall(text or "")) - {"distance", "value"})
        if not text or others:
            self.notes.append(f"{where}: distribution {text!r} not carried over (only "
                              "{distance} and {value} are known)")  # fmt: skip
            return False
        bare = re.sub(r"\(\{(\w+)\}\)", r"\1", text)  # ({distance}) -> distance
        expression = _PLACEHOLDER.sub(r"\1", bare).replace("math.", "")
        name = entry["dist_type"]
        while name in distributions and distributions[name] != expression:
            name += "_"
        distributions[name] = expression
        return name

    def protocols(self) -> list[dict]:
        definitions = _read_json(self.config / "protocols.json")
        features = _read_json(self.config / "features.json")
        order = list(features) + [name for name in definitions if name not in features]
        protocols = []
        for name in order:
            if name not in definitions:
                raise BluePyOptImportError(f"{self.config / 'features.json'}: protocol {name} "
                                           "is not in protocols.json")  # fmt: skip
            protocols.append(self._protocol(name, definitions[name], features.get(name, {})))
        scored = sum(len(f) for r in features.values() for f in r.values())
        self.carried.append(f"{len(protocols)} protocols, {scored} features scored")
        return protocols

    def _protocol(self, name: str, definition: dict, features: dict) -> dict:
        where = f"protocols.json {name}"
        stimuli = []
        for stimulus in definition.get("stimuli", []):
            missing = [k for k in ("delay", "amp", "duration", "totduration") if k not in stimulus]
            if missing:
                raise BluePyOptImportError(f"{self.config}/{where}: a stimulus lacks "
                                           f"{', '.join(missing)}")  # fmt: skip
            stimuli.append({
                "amplitude_nA": stimulus["amp"], "delay_ms": stimulus["delay"],
                "duration_ms": stimulus["duration"],
                "total_duration_ms": stimulus["totduration"],
            })  # fmt: skip
        if not stimuli:
            raise BluePyOptImportError(f"{self.config}/{where}: no stimuli")
        recordings = {"soma": {"name": "soma"}}
        for extra in definition.get("extra_recordings", []):
            if extra.get("type") != "somadistance" or extra.get("var", "v") != "v":
                self.notes.append(f"{where}: recording {extra.get('name')} of type "
                                  f"{extra.get('type')} not carried over")  # fmt: skip
                continue
            self._check_list(extra["seclist_name"], "protocols.json")
            location = {"sections": extra["seclist_name"],
                        "soma_distance_um": extra["somadistance"]}  # fmt: skip
            recordings[extra["name"]] = {"name": extra["name"], "location": location}
        for location, measured in features.items():
            if location not in recordings:
                raise BluePyOptImportError(f"{self.config / 'features.json'}: {name}.{location}"
                                           " is no recording of the protocol")  # fmt: skip
            recording = recordings[location]
            recording["threshold_mV"] = -55.0 if "dend" in location else -20.0
            recording["features"] = [
                {"name": feature, "mean": mean_std[0], "std": mean_std[1]}
                for feature, (mean_std) in measured.items()
            ]
        protocol = {"name": name, "stimuli": stimuli, "recordings": list(recordings.values())}
        if name == "bAP":
            first = stimuli[0]
            protocol["feature_window_ms"] = [first["delay_ms"], first["total_duration_ms"]]
        return protocol


def convert_folder(
    folder: str | Path, out_path: str | Path, files_prefix: str | None = None
) -> EModelImport:
    """The problem of a BluePyOpt e-model folder; paths relative to ``out_path``'s folder (or
    ``files_prefix`` + the path in the folder, e.g. data:// names)."""
    folder = Path(folder)
    if not (folder / "config").is_dir():
        raise BluePyOptImportError(f"{folder}: no config folder (a BluePyOpt e-model folder has "
                                   "config/, morphology/ and mechanisms/)")  # fmt: skip
    converter = _Converter(folder, files_prefix, Path(out_path).parent)
    morphology = converter.morphology()
    distributions: dict[str, str] = {}
    insert = converter.insert()
    fixed, free = converter.parameters(distributions)
    if not free:
        raise BluePyOptImportError(f"{folder / 'config/parameters.json'}: no parameter has "
                                   "bounds, nothing to fit")  # fmt: skip
    protocols = converter.protocols()
    scored = sum(len(r.get("features", [])) for p in protocols for r in p["recordings"])
    model: dict[str, Any] = {
        "simulator": "emodel",
        "morphology": converter.file_reference(morphology),
    }
    if (folder / "mechanisms").is_dir():
        model["mechanisms"] = converter.file_reference(folder / "mechanisms")
    else:
        converter.notes.append("no mechanisms folder: the mechanisms must be NEURON's own")
    model.update({"replace_axon": True, "nseg_length_um": 40.0, "insert": insert})
    if distributions:
        model["distributions"] = distributions
    model["fixed"] = fixed
    problem = {
        "name": folder.resolve().name,
        "description": f"BluePyOpt e-model {folder.resolve().name}, imported",
        "model": model,
        "parameters": free,
        "protocols": protocols,
        "algorithm": {"name": "bluepyopt-ibea", "population": 100, "generations": 100},
        "evaluation": {"penalty": MISSING_SCORE * scored},
    }
    converter.notes += [
        "the axon is replaced by two 30 µm stubs and nseg follows BluePyOpt's 40 µm rule "
        "(the example's l5pc_model.create defaults); change model.replace_axon if yours keeps it",
        "stimuli at the soma's middle and a somatic recording 'soma' in every protocol, as "
        "l5pc_evaluator.py defines them",
        "Threshold -20 mV at the soma and -55 mV on recordings named dend…, the feature window "
        "from the first stimulus (its whole sweep for bAP), as l5pc_evaluator.py sets them",
        f"a failed simulation is scored evaluation.penalty = {MISSING_SCORE:g} × {scored} "
        "features, as if every feature were missing",
    ]
    if (folder / "config/params.json").exists() or (folder / "config/fixed_params.json").exists():
        converter.notes.append("config/params.json and fixed_params.json are not read (the "
                               "example's model reads parameters.json)")  # fmt: skip
    text = _comments(folder, converter) + dump_problem(problem)
    return EModelImport(problem, text, converter.carried, converter.notes)


def _comments(folder: Path, converter: _Converter) -> str:
    lines = [f"Imported from the BluePyOpt e-model folder {folder.resolve().name}.", ""]
    lines += ["Carried over:"] + [f"- {line}" for line in converter.carried] + [""]
    lines += ["Taken from the example's scripts, or not carried over:"]
    for note in converter.notes:
        lines += textwrap.wrap(f"- {note}", 96, subsequent_indent="  ")
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


class _Dumper(yaml.SafeDumper):
    """Block style, but a mapping or list of plain values on one line."""


def _flat(values) -> bool:
    return all(not isinstance(v, dict | list) for v in values)


_Dumper.add_representer(
    dict,
    lambda dumper, data: dumper.represent_mapping(
        "tag:yaml.org,2002:map", data, flow_style=_flat(data.values()) and len(data) > 1
    ),
)
_Dumper.add_representer(
    list,
    lambda dumper, data: dumper.represent_sequence(
        "tag:yaml.org,2002:seq", data, flow_style=_flat(data)
    ),
)


def dump_problem(problem: dict[str, Any]) -> str:
    return yaml.dump(problem, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
