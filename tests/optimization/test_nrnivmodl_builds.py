"""Which nrnivmodl compiled a build is part of its cache key (another NEURON build, named by
``NEUROPTIMUS_NRNIVMODL``, compiles into another folder), and so are the compiler flags
(``NEUROPTIMUS_MECHANISM_FLAGS``); its version is asked once per file,
and a worker waiting for another's compile stops after ``NEUROPTIMUS_NRNIVMODL_WAIT`` seconds
with one line naming the lock and its holder. Real nrnivmodl compiles; the other builds are
executable shell scripts beside the real one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mechanism_models import LEAK_MOD

from neuroptimus.optimization.simulators import ModelError
from neuroptimus.optimization.simulators.mechanisms import MechanismSources, compile_mechanisms
from neuroptimus.optimization.simulators.nmodl_compiler import nrnivmodl, nrnivmodl_build

ROOT = Path(__file__).resolve().parents[2]
REAL = nrnivmodl()


@pytest.fixture
def mods(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("NEUROPTIMUS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROPTIMUS_NRNIVMODL", raising=False)
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "leak.mod").write_text(LEAK_MOD)
    return folder


def _script(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def _other_build(folder: Path, version: str, asked: Path) -> Path:
    """A NEURON bin folder whose nrnivmodl runs the real one and whose nrniv reports
    ``version`` (and notes each time it is asked)."""
    _script(folder / "nrniv", f'echo asked >> "{asked}"\necho "NEURON -- VERSION {version}"')
    return _script(folder / "nrnivmodl", f'exec "{REAL}" "$@"')


def test_another_nrnivmodl_build_compiles_into_another_folder(mods, tmp_path, monkeypatch):
    ours = compile_mechanisms(mods)
    asked = tmp_path / "asked"
    other = _other_build(tmp_path / "other" / "bin", "8.2.6 HEAD (abc1234) 2024-07-01", asked)
    monkeypatch.setenv("NEUROPTIMUS_NRNIVMODL", str(other))
    theirs = compile_mechanisms(mods)
    assert theirs.is_file() and ours.is_file()
    assert theirs.parents[1] != ours.parents[1]  # two build folders of the cache
    build = nrnivmodl_build()
    assert (build.path, build.release) == (str(other.resolve()), "8.2.6")
    # asked once: the answer is kept while the files stay as they are
    sources = MechanismSources.of(mods)
    assert sources.digest()[:16] == sources.digest()[:16] == theirs.parents[1].name
    assert asked.read_text().split() == ["asked"]
    # the same path, another build installed there: another key
    key = sources.digest()
    _other_build(tmp_path / "other" / "bin", "8.2.7 HEAD (def5678) 2025-01-01", asked)
    os.utime(tmp_path / "other" / "bin" / "nrniv", ns=(0, 10**18))  # replaced, whatever the clock
    assert nrnivmodl_build().release == "8.2.7" and sources.digest() != key
    assert asked.read_text().split() == ["asked", "asked"]


HOLDER = """\
import sys
from neuroptimus.optimization.simulators.mechanisms import compile_mechanisms
compile_mechanisms(sys.argv[1])
"""


@pytest.mark.parametrize("locks", ["flock", "file"])
def test_waiting_for_a_hung_compile_ends_in_one_line_naming_its_holder(
    mods, tmp_path, monkeypatch, locks
):
    started = tmp_path / "started"
    hung = _script(tmp_path / "hung" / "nrnivmodl", f'touch "{started}"\nexec sleep 600')
    monkeypatch.setenv("NEUROPTIMUS_NRNIVMODL", str(hung))
    monkeypatch.setenv("NEUROPTIMUS_LOCKS", locks)
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    holder = subprocess.Popen(  # its own session: killed below with its nrnivmodl
        [sys.executable, "-c", HOLDER, str(mods)], env=env, start_new_session=True
    )
    try:
        while not started.exists():
            assert holder.poll() is None, "the holder ended before its nrnivmodl started"
            time.sleep(0.1)
        monkeypatch.setenv("NEUROPTIMUS_NRNIVMODL_WAIT", "1")
        with pytest.raises(ModelError) as error:
            compile_mechanisms(mods)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    build = tmp_path / "cache" / "mechanisms" / MechanismSources.of(mods).digest()[:16]
    lock = build / (".lock" if locks == "flock" else ".lock.held")
    hint = f"; if it no longer runs, delete {lock}" if locks == "file" else ""
    assert str(error.value) == (
        f"cannot compile the mechanisms of {mods}: pid {holder.pid} on {socket.gethostname()} "
        f"still holds {lock} after 1 s, compiling them: stop it if its nrnivmodl hangs{hint} "
        "(NEUROPTIMUS_NRNIVMODL_WAIT sets the wait)"
    )


def test_a_wrong_nrnivmodl_or_wait_is_one_line(mods, tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROPTIMUS_NRNIVMODL_WAIT", "soon")
    with pytest.raises(ModelError) as error:
        compile_mechanisms(mods)
    assert str(error.value) == (
        "NEUROPTIMUS_NRNIVMODL_WAIT='soon': give the seconds to wait, a number above 0"
    )
    missing = tmp_path / "nowhere" / "nrnivmodl"
    monkeypatch.setenv("NEUROPTIMUS_NRNIVMODL", str(missing))
    with pytest.raises(ModelError) as error:
        compile_mechanisms(mods)
    assert str(error.value) == (
        f"nrnivmodl {missing} is not an executable file: point NEUROPTIMUS_NRNIVMODL at the "
        "nrnivmodl of a NEURON installation"
    )


def test_the_compiler_flags_reach_nrnivmodl_and_are_part_of_the_key(mods, tmp_path, monkeypatch):
    """Tuned by default (each compile line gets them through -incflags), NEURON's own build
    with NEUROPTIMUS_MECHANISM_FLAGS=default, any flags given: three builds, three folders."""
    called = tmp_path / "called"
    wrapper = _script(tmp_path / "wrapped" / "nrnivmodl",
                      f'echo "$@" >> "{called}"\nexec "{REAL}" "$@"')  # fmt: skip
    (wrapper.parent / "nrniv").symlink_to(Path(REAL).parent / "nrniv")
    monkeypatch.setenv("NEUROPTIMUS_NRNIVMODL", str(wrapper))
    monkeypatch.delenv("NEUROPTIMUS_MECHANISM_FLAGS", raising=False)
    tuned = compile_mechanisms(mods)
    monkeypatch.setenv("NEUROPTIMUS_MECHANISM_FLAGS", "default")
    plain = compile_mechanisms(mods)
    monkeypatch.setenv("NEUROPTIMUS_MECHANISM_FLAGS", "-O1 -g")
    debug = compile_mechanisms(mods)
    assert len({tuned.parents[1], plain.parents[1], debug.parents[1]}) == 3
    assert called.read_text().splitlines() == [
        "-incflags -O3 -march=native -ffp-contract=off", "", "-incflags -O1 -g"
    ]  # fmt: skip
    monkeypatch.delenv("NEUROPTIMUS_MECHANISM_FLAGS")
    assert compile_mechanisms(mods) == tuned  # cached: nrnivmodl not called again
    assert len(called.read_text().splitlines()) == 3
