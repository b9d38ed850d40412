"""Which problem a run solved, by content: the use-case fingerprint.

Two runs meet in the catalog when they fitted the same parameters (names, bounds, scale) of the
same model files to the same target with the same protocol, cost functions, weights and
penalty. Files count by their SHA-256 (``data://`` names by the registry's, so nothing is
downloaded), never by their path: the same problem in another folder or on another machine has
the same fingerprint. The name, description, algorithm, seed, stopping rules and time-outs are
not part of it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.data import SCHEME, registry
from neuroptimus.optimization.problem.emodel_spec import EModelProtocolSpec
from neuroptimus.optimization.problem.emodel_spec import component_names as emodel_components

# parameter fields that say where a value goes in the model (no paths)
_TARGET_FIELDS = ("hoc", "section", "segment", "sections", "property", "distribution")
# files nrnivmodl reads from a local mechanisms folder
# (as neuroptimus.optimization.simulators.mechanisms)
_MECHANISM_SUFFIXES = {".mod", ".inc", ".h", ".hpp", ".c", ".cpp"}


class UseCaseIdentity(BaseModel):
    """Which problem a run solved. ``fingerprint`` is the SHA-256 of ``core`` (canonical JSON):
    ``content`` fingerprints hash the model files, target data, bounds, protocol, cost functions,
    weights and penalty; ``weak`` ones (the original tool's metadata) only names and bounds."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    kind: Literal["content", "weak"]
    name: str = Field(min_length=1, max_length=200)  # the problem's own name: the slug's stem
    description: str = ""
    simulator: str = Field("", max_length=50)
    parameters: list[str]
    components: list[str]  # error components (sweep × cost function), in the run's order
    core: dict[str, Any]  # what was hashed


class FingerprintError(UserError, ValueError):
    """A file the problem names cannot be read, so its content cannot be hashed."""


class IdentityMismatch(UserError, ValueError):
    """A claimed use-case identity is not the one its problem gives (one sentence)."""


class _Recorded:
    """Stands in a core for a hash only the run's own record holds: a file's SHA-256
    (``FILE``) or a folder's ``{name: SHA-256}`` (``FOLDER``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


FILE, FOLDER = _Recorded("file"), _Recorded("folder")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(core: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(core).encode()).hexdigest()


def _registered(name: str) -> str | None:
    entry = registry().get(name.removeprefix(SCHEME))
    return entry.removeprefix("sha256:") if entry else None


def _local(spec: dict[str, Any], value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else Path(spec.get("base_dir") or ".") / path


def file_sha256(spec: dict[str, Any], value: str) -> str:
    """SHA-256 of a file the problem names (a path relative to its folder or a data:// name)."""
    if value.startswith(SCHEME):
        found = _registered(value)
        if found is None:
            raise FingerprintError(f"{value} is not in the data registry")
        return found
    path = _local(spec, value)
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise FingerprintError(f"cannot hash {value} ({path}): {error.strerror or error}") from None


def folder_sha256(spec: dict[str, Any], value: str, suffixes: set[str] | None = None) -> dict:
    """{relative name: SHA-256} of a folder's files (a data:// folder: its registered files)."""
    if value.startswith(SCHEME):
        prefix = value.removeprefix(SCHEME).rstrip("/") + "/"
        files = {
            name.removeprefix(prefix): sha.removeprefix("sha256:")
            for name, sha in registry().items()
            if name.startswith(prefix)
        }
        if not files:
            raise FingerprintError(f"{value}: no registered files under this folder name")
        return dict(sorted(files.items()))
    folder = _local(spec, value)
    if not folder.is_dir():
        raise FingerprintError(f"cannot hash folder {value} ({folder}): not a folder")
    found = folder.iterdir() if suffixes else folder.rglob("*")  # nrnivmodl: top level only
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(found)
        if p.is_file()
        and not any(part.startswith((".", "__pycache__")) for part in p.relative_to(folder).parts)
        and (suffixes is None or p.suffix in suffixes)
    }


class _Hashes:
    """How a core gets its files' hashes: read from the files (a local run, an admin's
    registration), or left as ``FILE``/``FOLDER`` to be taken from a run's record."""

    def __init__(self, file: Callable[..., Any], folder: Callable[..., Any]) -> None:
        self.file, self.folder = file, folder


_READ = _Hashes(file_sha256, folder_sha256)
_LEFT_OPEN = _Hashes(lambda spec, value: FILE, lambda spec, value, suffixes=None: FOLDER)


def _mechanisms(spec: dict[str, Any], recorded: dict | None, hashes: _Hashes) -> dict | None:
    model = spec["model"]
    if not model.get("mechanisms"):
        return None
    if (
        recorded
    ):  # the store's record (neuroptimus.storage.runs.create): the files as they were compiled
        files = dict(sorted(recorded["files"].items()))
        patches = [p["sha256"] for p in recorded.get("patches") or []]
    else:
        files = hashes.folder(spec, model["mechanisms"], _MECHANISM_SUFFIXES)
        patches = [hashes.file(spec, p) for p in model.get("patches") or []]
    return {"files": files, "patches": patches}


def _model(spec: dict[str, Any], mechanisms: dict | None, hashes: _Hashes) -> dict[str, Any]:
    model = spec["model"]
    simulator = model.get("simulator", "neuron")
    if simulator == "python":
        return {"simulator": simulator, "file": hashes.file(spec, model["file"]),
                "build": model.get("build"), "simulate": model.get("simulate")}  # fmt: skip
    if simulator == "external":
        kept = ("command", "protocol", "per_sweep", "trace_file", "spike_file")
        return {
            "simulator": simulator,
            **{k: model.get(k) for k in kept},
            "folder": hashes.folder(spec, model.get("folder") or "."),
        }
    if simulator == "emodel":  # the cell's settings, its morphology and mechanisms by content
        kept = {k: v for k, v in model.items() if k not in ("morphology", "mechanisms", "patches")}
        return {**kept, "morphology": hashes.file(spec, model["morphology"]),
                "mechanisms": _mechanisms(spec, mechanisms, hashes)}  # fmt: skip
    function = model.get("user_function")
    return {
        "simulator": simulator,
        "entry": hashes.file(spec, model["hoc"]),
        "mechanisms": _mechanisms(spec, mechanisms, hashes),
        "user_function": function
        and {"file": hashes.file(spec, function["file"]), "function": function["function"]},
    }


def _protocol(spec: dict[str, Any], hashes: _Hashes) -> dict[str, Any]:
    protocol = json.loads(json.dumps(spec["protocol"]))  # a copy
    stimulus = protocol.get("stimulus")
    if stimulus and stimulus.get("waveforms"):
        stimulus["waveforms"] = [hashes.file(spec, w) for w in stimulus["waveforms"]]
    return protocol


def _target(spec: dict[str, Any], hashes: _Hashes) -> dict[str, Any]:
    target = dict(spec["target"])
    if target.get("regenerate"):  # simulated from the true values: they are the target
        target["true_values"] = {p["name"]: p.get("true_value") for p in spec["parameters"]}
    for key in ("file", "features"):
        if target.get(key):
            target[key] = hashes.file(spec, target[key])
    return target


def component_names(spec: dict[str, Any]) -> list[str]:
    """The error components a problem scores, as the objective names them."""
    if spec.get("protocols") is not None:  # an emodel problem: protocol.recording.feature
        return emodel_components([EModelProtocolSpec.model_validate(p) for p in spec["protocols"]])
    costs, protocol = spec["costs"], spec["protocol"]
    stimulus = protocol.get("stimulus") or {}
    if costs.get("features"):
        features = [f["name"] for f in costs["features"]]
        return [f"{f} [{a:g} nA]" for a in stimulus.get("amplitudes") or [] for f in features]
    functions = [f["name"] for f in costs["functions"]]
    sweeps = len(stimulus.get("amplitudes") or stimulus.get("waveforms") or []) or (
        protocol.get("sweeps") or 1
    )
    if sweeps == 1:
        return functions
    return [f"{f} [sweep {s + 1}]" for s in range(sweeps) for f in functions]


def content_core(
    spec: dict[str, Any], mechanisms: dict | None = None, hashes: _Hashes = _READ
) -> dict[str, Any]:
    """What the content fingerprint hashes (see the module's docstring)."""
    parameters = [
        {"name": p["name"], "lower": float(p["lower"]), "upper": float(p["upper"]),
         "log": bool(p.get("log", False)),
         **{k: p[k] for k in _TARGET_FIELDS if p.get(k) is not None}}
        for p in spec["parameters"]
    ]  # fmt: skip
    if spec.get("protocols") is not None:  # an emodel problem: its protocols score it
        return {
            "parameters": parameters,
            "protocols": spec["protocols"],
            "penalty": (spec.get("evaluation") or {}).get("penalty", 100.0),
            "model": _model(spec, mechanisms, hashes),
        }
    costs = spec["costs"]
    return {
        "parameters": parameters,
        "protocol": _protocol(spec, hashes),
        "target": _target(spec, hashes),
        "costs": {
            "functions": costs.get("functions"),
            "features": costs.get("features"),
            "spike_threshold_mV": costs.get("spike_threshold_mV"),
            "spike_window_samples": costs.get("spike_window_samples"),
        },
        "penalty": (spec.get("evaluation") or {}).get("penalty", 100.0),
        "model": _model(spec, mechanisms, hashes),
    }


def use_case_identity(
    spec: dict[str, Any], mechanisms: dict | None = None, components: list[str] | None = None
) -> UseCaseIdentity:
    """The content identity of a problem spec (a store's ``attrs["spec"]``); ``mechanisms``
    is the store's record of the compiled files (else the folder is hashed now),
    ``components`` the store's component names (else derived from the spec)."""
    core = content_core(spec, mechanisms)
    return UseCaseIdentity(
        fingerprint=digest(core),
        kind="content",
        name=spec["name"],
        description=spec.get("description") or "",
        simulator=spec["model"].get("simulator", "neuron"),
        parameters=[p["name"] for p in spec["parameters"]],
        components=components or component_names(spec),
        core=core,
    )


def recomputed_identity(spec: dict[str, Any], claimed: UseCaseIdentity) -> UseCaseIdentity:
    """The identity of an uploaded problem, derived from the problem itself without reading a
    file: everything but the files' hashes comes from ``spec``, the hashes from the claimed
    core (what the uploader's run recorded), at the places the problem's files take. Raises
    IdentityMismatch naming the first thing the claim gets wrong."""
    if claimed.kind != "content":
        raise IdentityMismatch("use_case.kind must be 'content' for a run that records its problem")
    template = content_core(spec, hashes=_LEFT_OPEN)
    core = _filled(template, claimed.core, "use_case.core")
    fingerprint = digest(core)
    if fingerprint != claimed.fingerprint:
        raise IdentityMismatch("use_case.fingerprint is not the SHA-256 of use_case.core")
    derived = {
        "name": spec["name"],
        "simulator": spec["model"].get("simulator", "neuron"),
        "parameters": [p["name"] for p in spec["parameters"]],
    }
    for key, value in derived.items():
        if getattr(claimed, key) != value:
            raise IdentityMismatch(f"use_case.{key} is not the problem's ({value!r})")
    return UseCaseIdentity(
        fingerprint=fingerprint, kind="content", description=spec.get("description") or "",
        components=claimed.components, core=core, **derived,
    )  # fmt: skip


def _filled(template: Any, claimed: Any, where: str) -> Any:
    """``template`` with its ``FILE``/``FOLDER`` places taken from ``claimed``, which must
    agree with it everywhere else (compared as canonical JSON, as the fingerprint hashes)."""
    wrong = IdentityMismatch(f"{where} is not what the problem gives")
    if template is FILE:
        if not (isinstance(claimed, str) and _SHA256.match(claimed)):
            raise IdentityMismatch(f"{where} must be a file's SHA-256 (64 hex digits)")
        return claimed
    if template is FOLDER:
        if not isinstance(claimed, dict) or not all(
            isinstance(v, str) and _SHA256.match(v) for v in claimed.values()
        ):
            raise IdentityMismatch(f"{where} must map a folder's file names to their SHA-256")
        return dict(sorted(claimed.items()))
    if isinstance(template, dict):
        if not isinstance(claimed, dict) or set(claimed) != set(template):
            raise wrong
        return {k: _filled(v, claimed[k], f"{where}.{k}") for k, v in template.items()}
    if isinstance(template, list):
        if not isinstance(claimed, list) or len(claimed) != len(template):
            raise wrong
        pairs = enumerate(zip(template, claimed, strict=True))
        return [_filled(t, c, f"{where}[{k}]") for k, (t, c) in pairs]
    if canonical_json(template) != canonical_json(claimed):
        raise wrong
    return template


def weak_identity(original_metadata: dict[str, Any]) -> UseCaseIdentity:
    """The original tool's metadata.json names its problem only: the model's name, the target
    files, the parameters with their bounds and the error functions with their weights."""
    data = original_metadata
    model = (data.get("models") or {}).get("model_name") or "unnamed"
    core = {
        "model_name": model,
        "target_files": sorted(str(t.get("file_name", "")) for t in data.get("target_data") or []),
        "parameters": [
            {
                "name": p["name"],
                "lower": float(p["min_boundary"]),
                "upper": float(p["max_boundary"]),
            }
            for p in data["parameters"]
        ],  # fmt: skip
        "error_functions": [
            {"name": e["name"], "weight": float(e["weight"])} for e in data["error_function"]
        ],
    }
    return UseCaseIdentity(
        fingerprint=digest(core),
        kind="weak",
        name=model,
        simulator="neuron",
        parameters=[p["name"] for p in data["parameters"]],
        components=[e["name"] for e in data["error_function"]],
        core=core,
    )
