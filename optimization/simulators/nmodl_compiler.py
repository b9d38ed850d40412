"""The nrnivmodl that compiles the mechanisms, and the NEURON build it belongs to.

A build is known by what ``nrniv --version`` answers for the nrniv beside that nrnivmodl
(every NEURON installation ships the two together; a pip install's are both wrappers of one
package): the release and the commit it was built from. A nrnivmodl without an nrniv beside it
(a site's wrapper script) is known by its own content instead. The answer is kept per file
(path, inode, size, modification time), so asking again costs two ``stat`` calls.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from neuroptimus.optimization.simulators.base import ModelError

_VERSION = re.compile(r"VERSION\s+(\S+)")


@dataclass(frozen=True)
class NrnivmodlBuild:
    """``command``: the nrnivmodl to run (a venv's link kept as it is), ``path``: that file
    resolved, ``version``: its build's version line (or its content's digest)."""

    command: str
    path: str
    version: str

    @property
    def release(self) -> str:
        """The release number (``9.0.2``), ``unknown`` when the build did not say."""
        match = _VERSION.search(self.version)
        return match.group(1) if match else "unknown"


def nrnivmodl() -> str:
    """nrnivmodl named by ``NEUROPTIMUS_NRNIVMODL`` (another NEURON build), else the one of
    this interpreter's environment (its bin folder: found also when a batch job or a worker
    did not activate it), else the one on PATH."""
    chosen = os.environ.get("NEUROPTIMUS_NRNIVMODL")
    if chosen:
        return chosen
    beside = Path(sys.executable).parent / "nrnivmodl"  # not resolved: a venv links python
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nrnivmodl")
    if found:
        return found
    raise ModelError(
        f"nrnivmodl not found beside {sys.executable} nor on PATH: install NEURON in this "
        "environment (pip install neuron) to compile the mechanisms"
    )


def nrnivmodl_build(command: str | None = None) -> NrnivmodlBuild:
    """The build of ``command`` (default: ``nrnivmodl()``), asked once per file version."""
    command = command or nrnivmodl()
    found = shutil.which(command)  # a bare name on PATH, or a path to an executable file
    if found is None:
        raise ModelError(
            f"nrnivmodl {command} is not an executable file: point NEUROPTIMUS_NRNIVMODL at "
            "the nrnivmodl of a NEURON installation"
        )
    resolved = os.path.realpath(found)
    nrniv = Path(found).with_name("nrniv")
    if not _executable(nrniv):  # a link to nrnivmodl: its build's bin folder
        nrniv = Path(resolved).with_name("nrniv")
    return _identify(found, resolved, _stamp(found), str(nrniv), _stamp(nrniv))


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _stamp(path: str | Path) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=32)
def _identify(
    command: str, resolved: str, stamp: tuple | None, nrniv: str, nrniv_stamp: tuple | None
) -> NrnivmodlBuild:
    """(The stamps are part of the cache's key only: a file replaced is asked again.)"""
    version = _nrniv_version(nrniv) if nrniv_stamp is not None else None
    if version is None:
        content = hashlib.sha256(Path(resolved).read_bytes()).hexdigest()
        version = f"no nrniv beside it; content sha256:{content}"
    return NrnivmodlBuild(command, resolved, version)


def _nrniv_version(nrniv: str) -> str | None:
    """The line of ``nrniv --version`` naming the version; None if it does not say."""
    try:
        result = subprocess.run(
            [nrniv, "--version"], capture_output=True, text=True, errors="replace",
            timeout=120, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (result.stdout + "\n" + result.stderr).splitlines()
    found = [line.strip() for line in lines if _VERSION.search(line)]
    return found[0] if result.returncode == 0 and found else None
