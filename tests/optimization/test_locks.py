"""The lock of the store's writer and of the NMODL compilation: flock, and where flock is
missing a lock file — run for real by contending processes (the "no flock" condition alone is
injected, through ``use_flock=False``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neuroptimus.optimization.locks import LockBusy, LockError, exclusive_lock, process_alive

ROOT = Path(__file__).resolve().parents[2]
CONTENDER = """\
import sys, time
from pathlib import Path
from neuroptimus.optimization.locks import exclusive_lock
path, log, hold_s, name = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
with exclusive_lock(path, wait=True, use_flock=sys.argv[5] == "flock"):
    with open(log, "a") as handle:
        handle.write(f"{name} acquired {time.time()!r}\\n")
    time.sleep(hold_s)
    with open(log, "a") as handle:
        handle.write(f"{name} released {time.time()!r}\\n")
"""


def _contender(path: Path, log: Path, hold_s: float, name: str, mode: str = "file"):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", CONTENDER, str(path), str(log), str(hold_s), name, mode], env=env
    )


def _wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _holds(log: Path) -> list[tuple[str, float, float]]:
    """(name, acquired, released) of each holder, in the order they acquired."""
    events: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        name, what, when = line.split()
        events.setdefault(name, {})[what] = float(when)
    return sorted(
        ((n, e["acquired"], e["released"]) for n, e in events.items()), key=lambda h: h[1]
    )


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("mode", ["file", "flock"])
def test_contending_processes_hold_the_lock_one_at_a_time(tmp_path, mode):
    """One process holds the lock; a second is refused at once (told who holds it) or waits,
    and four more waiting at once take turns."""
    path, log = tmp_path / "writer.lock", tmp_path / "log"
    first = _contender(path, log, 1.5, "first", mode)
    _wait_for(lambda: log.exists() and "first acquired" in log.read_text())
    with pytest.raises(LockBusy) as busy:
        with exclusive_lock(path, use_flock=mode == "flock"):
            pass
    assert busy.value.holder == f"pid {first.pid} on {socket.gethostname()}"
    if mode == "file":
        assert (tmp_path / "writer.lock.held").is_file()
        assert f"delete {tmp_path / 'writer.lock.held'}" in str(busy.value)
    others = [_contender(path, log, 0.2, f"other{k}", mode) for k in range(4)]
    for process in [first, *others]:
        assert process.wait(timeout=120) == 0
    holds = _holds(log)
    assert [name for name, _, _ in holds][0] == "first" and len(holds) == 5
    for (_, _, released), (_, acquired, _) in zip(holds, holds[1:]):  # noqa: B905
        assert released <= acquired
    assert not (tmp_path / "writer.lock.held").exists()  # released, not left behind
    with exclusive_lock(path, use_flock=mode == "flock"):  # free again
        pass


def test_lock_file_of_a_killed_holder_on_this_host_is_taken_over(tmp_path):
    path, log = tmp_path / "writer.lock", tmp_path / "log"
    holder = _contender(path, log, 60, "killed")
    _wait_for(lambda: log.exists() and "killed acquired" in log.read_text())
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    held = tmp_path / "writer.lock.held"
    assert f"pid {holder.pid} on" in held.read_text()  # left behind by the kill
    with exclusive_lock(path, use_flock=False):
        assert f"pid {os.getpid()} on" in held.read_text()
    assert not held.exists()


def test_dead_holders_left_behind_are_taken_over_by_one_contender_at_a_time(tmp_path):
    """Contenders that all find a dead holder's file at once do not each take it over: they
    still take turns."""
    path, log = tmp_path / "writer.lock", tmp_path / "log"
    held = tmp_path / "writer.lock.held"
    held.write_text(f"pid {_dead_pid()} on {socket.gethostname()}\nstarted 1\n")
    contenders = [_contender(path, log, 0.3, f"c{k}") for k in range(4)]
    for process in contenders:
        assert process.wait(timeout=120) == 0
    holds = _holds(log)
    assert len(holds) == 4
    for (_, _, released), (_, acquired, _) in zip(holds, holds[1:]):  # noqa: B905
        assert released <= acquired


def test_a_reused_pid_does_not_keep_a_dead_holders_lock(tmp_path):
    """The holder's pid now belongs to another process (here: this one), started at another
    time: the lock file is stale."""
    held = tmp_path / "writer.lock.held"
    held.write_text(f"pid {os.getpid()} on {socket.gethostname()}\nstarted 1\n")
    with exclusive_lock(tmp_path / "writer.lock", use_flock=False):
        assert "started 1\n" not in held.read_text()


def test_holder_on_another_host_is_named_and_never_taken_over(tmp_path):
    held = tmp_path / "writer.lock.held"
    held.write_text("pid 4242 on elsewhere.example\nstarted 99\n")
    with pytest.raises(LockBusy, match=f"pid 4242 on elsewhere.example; .*delete {held}"):
        with exclusive_lock(tmp_path / "writer.lock", use_flock=False):
            pass
    with pytest.raises(LockError, match="still held by pid 4242 on elsewhere.example after"):
        with exclusive_lock(tmp_path / "writer.lock", wait=True, timeout_s=0.5, use_flock=False):
            pass
    assert held.read_text().startswith("pid 4242 on elsewhere.example")


@pytest.mark.parametrize("use_flock", [False, True])
def test_a_lock_that_cannot_be_made_is_refused_clearly(tmp_path, use_flock):
    with pytest.raises(LockError, match="cannot create the lock file"):
        with exclusive_lock(tmp_path / "missing" / "writer.lock", use_flock=use_flock):
            pass


def test_an_ended_process_not_yet_reaped_is_not_alive():
    """A zombie (an orphan in a container without an init stays one) holds nothing."""
    child = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not process_alive(child.pid)
    child.wait()
    assert process_alive(os.getpid())
