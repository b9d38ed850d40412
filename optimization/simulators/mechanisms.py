"""Compile NMODL folders once per machine and load them once per process."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

from optimization.locks import LockError, exclusive_lock
from optimization.simulators.base import ModelError

_loaded: set[str] = set()


def cache_root() -> Path:
    return Path(os.environ.get("NEUROPTIMUS_CACHE", Path.home() / ".cache" / "neuroptimus"))


def compile_mechanisms(folder: Path) -> Path:
    """Compile the .mod files of ``folder`` with nrnivmodl (cached by content); return the
    compiled library. Concurrent workers wait on a file lock instead of compiling twice."""
    mod_files = sorted(folder.glob("*.mod"))
    if not mod_files:
        raise ModelError(f"{folder}: no .mod files to compile")
    digest = hashlib.sha256()
    for mod in mod_files:
        digest.update(mod.name.encode() + b"\0" + mod.read_bytes())
    build = cache_root() / "mechanisms" / digest.hexdigest()[:16]
    build.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(build / ".lock", wait=True):
            return _library(build) or _compile(folder, mod_files, build)
    except LockError as error:
        raise ModelError(f"cannot compile the mechanisms of {folder}: {error}") from None


def _library(build: Path) -> Path | None:
    """What nrnivmodl made in ``build``: ARCH/libnrnmech.so since NEURON 9, ARCH/.libs/ before
    (.dylib on macOS)."""
    arch = build / platform.machine()
    for folder in (arch, arch / ".libs"):
        for suffix in (".so", ".dylib"):
            if (folder / f"libnrnmech{suffix}").is_file():
                return folder / f"libnrnmech{suffix}"
    return None


def _compile(folder: Path, mod_files: list[Path], build: Path) -> Path:
    for mod in mod_files:
        shutil.copy(mod, build / mod.name)
    result = subprocess.run(["nrnivmodl"], cwd=build, capture_output=True, text=True, check=False)
    library = _library(build)
    if result.returncode != 0 or library is None:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise ModelError(f"nrnivmodl failed on {folder}: {' | '.join(tail)}")
    return library


def load_mechanisms(folder: Path) -> None:
    from neuron import h

    library = compile_mechanisms(folder)
    if str(library) not in _loaded:
        if not h.nrn_load_dll(str(library)):
            raise ModelError(f"NEURON could not load the mechanisms compiled from {folder}")
        _loaded.add(str(library))
