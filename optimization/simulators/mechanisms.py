"""Compile a problem's NMODL folder once per machine and load it once per process.

The folder is a path or a ``data://`` name of the registry (every registered file under that
prefix is fetched and verified). Its files are copied into a build folder of the cache,
named by the content of the files, of the problem's patches, by the version of the NEURON
package that loads them, by the nrnivmodl that compiles them (its resolved path and its
build's version, see ``nmodl_compiler``) and by the compiler flags (``compile_flags``); the
patches are applied to those copies (the fetched files stay as verified), then that
``nrnivmodl`` compiles them. Workers of one node that start together wait on a lock instead
of compiling twice, for at most ``NEUROPTIMUS_NRNIVMODL_WAIT`` seconds (a hung nrnivmodl would
hold them all). A .mod file that does not compile is a ``ModelError`` of one line naming the
file and nrnivmodl's message.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from neuroptimus.optimization.locks import LockError, LockTimeout, exclusive_lock
from neuroptimus.optimization.problem.data import SCHEME, fetch, registry
from neuroptimus.optimization.simulators.base import ModelError
from neuroptimus.optimization.simulators.compile_flags import build_identity, mechanism_flags
from neuroptimus.optimization.simulators.nmodl_compiler import NrnivmodlBuild, nrnivmodl_build
from neuroptimus.optimization.simulators.patches import PatchError, apply_patch, parse_patch

_loaded: set[str] = set()
_COMPLETE = ".complete"  # written once nrnivmodl has succeeded (a killed build has none)
# files of a local folder that nrnivmodl reads (sources and what they INCLUDE)
_SOURCE_SUFFIXES = {".mod", ".inc", ".h", ".hpp", ".c", ".cpp"}
_WAIT = "NEUROPTIMUS_NRNIVMODL_WAIT"
DEFAULT_WAIT_S = 600.0  # UC4's 21 mechanisms compile in about 30 s


def cache_root() -> Path:
    return Path(os.environ.get("NEUROPTIMUS_CACHE", Path.home() / ".cache" / "neuroptimus"))


@dataclass(frozen=True)
class MechanismSources:
    """A mechanism folder as a problem names it (``label``), its files (name inside the
    folder → local, verified path) and the patch files to apply to their copies."""

    label: str
    files: dict[str, Path]
    patches: tuple[Path, ...] = field(default=())

    @classmethod
    def of(cls, value: str | Path, patches: tuple[Path, ...] = ()) -> MechanismSources:
        """The sources of a folder path or of a ``data://`` folder name."""
        value = str(value)
        if value.startswith(SCHEME):
            prefix = value.removeprefix(SCHEME).rstrip("/") + "/"
            names = sorted(name for name in registry() if name.startswith(prefix))
            if not names:
                raise ModelError(f"{value}: no registered files under this folder name")
            files = {name.removeprefix(prefix): fetch(SCHEME + name) for name in names}
            return cls(value, files, tuple(patches))
        folder = Path(value)
        if not folder.is_dir():
            raise ModelError(f"mechanisms folder {folder} does not exist")
        files = {
            p.name: p
            for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix in _SOURCE_SUFFIXES
        }
        return cls(value, files, tuple(patches))

    @property
    def mod_names(self) -> list[str]:
        return [name for name in self.files if name.endswith(".mod") and "/" not in name]

    def digest(
        self,
        compiler: NrnivmodlBuild | None = None,
        flags: tuple[str, ...] | None = None,
        coreneuron: bool = False,
    ) -> str:
        """Names the build: the files, the patches (applied in order), the NEURON package's
        version, the nrnivmodl (default: ``nrnivmodl_build()``), path and version, the
        compiler flags (default: ``mechanism_flags()``; for this CPU's code, the CPU) and
        whether CoreNEURON's library is built too."""
        compiler = compiler or nrnivmodl_build()
        flags = mechanism_flags() if flags is None else flags
        hasher = hashlib.sha256(f"neuron {neuron_version()} {platform.machine()}\0".encode())
        hasher.update(f"nrnivmodl {compiler.path}\0{compiler.version}\0".encode())
        if flags:  # (none: the key of the builds made before flags were chosen)
            hasher.update(f"{build_identity(flags)}\0".encode())
        if coreneuron:
            hasher.update(b"coreneuron\0")
        for name, path in self.files.items():
            hasher.update(b"file\0" + name.encode() + b"\0" + path.read_bytes() + b"\0")
        for patch in self.patches:
            hasher.update(b"patch\0" + patch.name.encode() + b"\0" + patch.read_bytes() + b"\0")
        return hasher.hexdigest()


def problem_sources(spec) -> MechanismSources | None:
    """The mechanisms of a problem spec (None without ``model.mechanisms``); paths are
    relative to the problem file, patches may also be data:// names."""
    model = spec.model
    if not getattr(model, "mechanisms", None):  # python and external models have none
        return None
    patches = tuple(spec.local_path(p) for p in model.patches)
    return MechanismSources.of(spec.resolve(model.mechanisms), patches)


def for_coreneuron(spec) -> bool:
    """Whether the problem's sweeps run in CoreNEURON (its mechanisms built for it too)."""
    return getattr(spec.model, "engine", "neuron") == "coreneuron"


def neuron_version() -> str:
    for name in ("neuron", "neuron-nightly"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def compile_wait_s() -> float:
    """How long a worker waits for another's compile: ``NEUROPTIMUS_NRNIVMODL_WAIT``."""
    value = os.environ.get(_WAIT, "").strip()
    try:
        wait = float(value) if value else DEFAULT_WAIT_S
    except ValueError:
        wait = -1.0
    if not wait > 0:
        raise ModelError(f"{_WAIT}={value!r}: give the seconds to wait, a number above 0")
    return wait


def compile_mechanisms(sources: MechanismSources | str | Path, coreneuron: bool = False) -> Path:
    """Compile ``sources`` with nrnivmodl unless a build of the same content exists; return
    the compiled library. Concurrent workers wait on a lock instead of compiling twice.
    ``coreneuron``: CoreNEURON's library is built beside it (``coreneuron_library``)."""
    if not isinstance(sources, MechanismSources):
        sources = MechanismSources.of(sources)
    if not sources.mod_names:
        raise ModelError(f"{sources.label}: no .mod files to compile")
    compiler, flags = nrnivmodl_build(), mechanism_flags()
    wait_s = compile_wait_s()
    build = cache_root() / "mechanisms" / sources.digest(compiler, flags, coreneuron)[:16]
    build.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(build / ".lock", wait=True, timeout_s=wait_s):
            return _library(build) or _compile(sources, build, compiler, flags, coreneuron)
    except LockTimeout as error:
        raise ModelError(
            f"cannot compile the mechanisms of {sources.label}: {error.holder} still holds "
            f"{error.path} after {wait_s:g} s, compiling them: stop it if its nrnivmodl "
            f"hangs{error.hint} ({_WAIT} sets the wait)"
        ) from None
    except LockError as error:
        raise ModelError(f"cannot compile the mechanisms of {sources.label}: {error}") from None


def _library(build: Path) -> Path | None:
    """What nrnivmodl made in ``build`` (once complete): ARCH/libnrnmech.so since NEURON 9,
    ARCH/.libs/ before (.dylib on macOS)."""
    if not (build / _COMPLETE).is_file():
        return None
    arch = build / platform.machine()
    for folder in (arch, arch / ".libs"):
        for suffix in (".so", ".dylib"):
            if (folder / f"libnrnmech{suffix}").is_file():
                return folder / f"libnrnmech{suffix}"
    return None


def _compile(
    sources: MechanismSources,
    build: Path,
    compiler: NrnivmodlBuild,
    flags: tuple[str, ...],
    coreneuron: bool = False,
) -> Path:
    for name, path in sources.files.items():
        (build / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, build / name)  # a fresh copy: patches apply to pristine files
    for patch in sources.patches:
        try:
            apply_patch(patch, build)
        except PatchError as error:
            raise ModelError(f"{sources.label}: {error}") from None
    command = [compiler.command, *(["-coreneuron"] if coreneuron else []),
               *(["-incflags", shlex.join(flags)] if flags else [])]  # fmt: skip
    # every .mod file of its folder (-incflags: added to each compile line, after NEURON's -O2)
    result = subprocess.run(
        command, cwd=build, capture_output=True, text=True, errors="replace", check=False
    )
    (build / "nrnivmodl.log").write_text(result.stdout + result.stderr)
    if result.returncode == 0:
        (build / _COMPLETE).write_text(f"{sorted(sources.files)}\n")
    library = _library(build)
    if library is None or (coreneuron and coreneuron_library(library) is None):
        where, message = compile_error(result.stdout + "\n" + result.stderr, sources.mod_names)
        name = f"{sources.label.rstrip('/')}/{where}" if where else sources.label
        for_engine = " -coreneuron (model.engine coreneuron)" if coreneuron else ""
        hint = " (engine neuron needs no CoreNEURON build)" if coreneuron else ""
        raise ModelError(
            f"mechanism {name} does not compile with nrnivmodl{for_engine} (NEURON "
            f"{compiler.release}): {message}{hint}"
        )
    return library


def coreneuron_library(library: Path) -> Path | None:
    """CoreNEURON's library of a build made for it, beside NEURON's (None if not made)."""
    found = library.with_name(library.name.replace("libnrnmech", "libcorenrnmech"))
    return found if found.is_file() else None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NMODL_ERROR = re.compile(r"\s*Error: (.*?)(?: in file (\S+\.mod))?\s*$")
_CXX_ERROR = re.compile(r"([^\s:]*?)([\w.-]+)\.(?:cpp|c):(\d+):\d+: (?:fatal )?error: (.*)")
_MAKE_TARGET = re.compile(r"make: \*\*\* \[[^\]]*: (?:\S*/)?([\w.-]+)\.(?:cpp|c|o)\] Error")
# CoreNEURON's translator (nrnivmodl -coreneuron) on what it cannot translate
_CORENEURON_ERROR = re.compile(r"\[NMODL\] \[error\] :: Code Incompatibility :: (.*)")


def compile_error(output: str, mod_names: list[str]) -> tuple[str | None, str]:
    """The .mod file nrnivmodl failed on (if it says) and its message, in one line: the
    translator's ``Error: … in file X.mod`` (with the offending source line when it shows
    one), else the C++ compiler's first ``error:`` in the code translated from X.mod."""
    lines = [_ANSI.sub("", line).rstrip() for line in output.splitlines()]
    stems = {Path(name).stem: name for name in mod_names}
    for k, line in enumerate(lines):
        match = _NMODL_ERROR.match(line)
        if match:
            message, mod = match.group(1).strip(), match.group(2)
            source = _source_line(lines[k + 1 : k + 8]) if " at line " in message else None
            if source:
                message += f": {source}"
            if mod is None:  # the file being translated when it failed
                translating = [
                    m.group(1)
                    for m in (re.match(r"Translating (\S+\.mod)", t) for t in lines[:k])
                    if m
                ]
                mod = translating[-1] if translating else None
            return (Path(mod).name if mod else None), message
    for line in lines:
        match = _CXX_ERROR.search(line)
        if match:
            stem, number, message = match.group(2), match.group(3), match.group(4).strip()
            mod = stems.get(stem)
            where = f" (line {number} of the C++ translated from it)" if mod else ""
            return mod, f"error: {message}{where}"
    targets = [m.group(1) for m in map(_MAKE_TARGET.search, lines) if m]
    refused = [m.group(1).strip() for m in map(_CORENEURON_ERROR.search, lines) if m]
    if refused:
        mod = stems.get(targets[0]) if targets else None
        return mod, "CoreNEURON's translator: " + "; ".join(refused)
    if targets:
        line = next(line for line in lines if _MAKE_TARGET.search(line))
        return stems.get(targets[0]), line.strip()
    tail = [line.strip() for line in lines if line.strip()][-3:]
    return None, " | ".join(tail) or "nrnivmodl failed without a message"


def _source_line(following: list[str]) -> str | None:
    """The offending source line the translator echoes after its error: the line above its
    caret (``^``). Other translators running beside it (make -j) may print between."""
    for line, below in zip(following, following[1:], strict=False):
        if below.strip() == "^" and line.strip():
            return line.strip()
    return None


def load_mechanisms(sources: MechanismSources | str | Path, coreneuron: bool = False) -> Path:
    """Compile (or find) and load the mechanisms into this process's NEURON, once."""
    from neuron import h  # noqa: PLC0415 (lazy: NEURON loads only when a model is built)

    library = compile_mechanisms(sources, coreneuron)
    if str(library) not in _loaded:
        if not h.nrn_load_dll(str(library)):
            label = sources.label if isinstance(sources, MechanismSources) else sources
            raise ModelError(f"NEURON could not load the mechanisms compiled from {label}")
        _loaded.add(str(library))
    return library


def load_problem_mechanisms(spec) -> Path | None:
    """Load the mechanisms of a problem spec (with its patches), if it has any."""
    sources = problem_sources(spec)
    return load_mechanisms(sources, for_coreneuron(spec)) if sources else None


def mechanisms_record(spec) -> dict | None:
    """What a run store records about the mechanisms: the folder as the problem names it,
    each file's SHA-256, the patches applied (file, SHA-256, the files each changes), and the
    build folder and nrnivmodl of this host (None where it has no nrnivmodl)."""

    sources = problem_sources(spec)
    if sources is None:
        return None

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    patches = []
    for given, path in zip(spec.model.patches, sources.patches, strict=True):
        text = path.read_text(encoding="latin-1")
        changes = [Path(p.path).name for p in parse_patch(text, path.name)]
        patches.append({"patch": given, "sha256": sha(path), "changes": changes})
    try:
        compiler = nrnivmodl_build()
    except ModelError:  # a host that only records (a catalog): no build here
        compiler = None
    return {
        "folder": sources.label,
        "files": {name: sha(path) for name, path in sources.files.items()},
        "patches": patches,
        "build": sources.digest(compiler, coreneuron=for_coreneuron(spec))[:16]
        if compiler
        else None,
        "neuron": neuron_version(),
        "nrnivmodl": {"path": compiler.path, "version": compiler.version} if compiler else None,
        "flags": list(mechanism_flags()),
    }
