"""Exclusive locks that work on shared file systems, or refuse clearly: never silently nothing.

``flock`` where the file system has it (the lock dies with its process, even after
``kill -9``). Where it has not (Lustre mounted without ``flock``, NFS without a lock daemon)
a lock file naming its holder, made atomically the way open(2) recommends for NFS (a unique
file linked to the lock's name), and removed on release. A holder killed on this host is seen
to be dead and its file taken over; one on another host cannot be checked from here, so its
file is named in the message for a person to delete.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from neuroptimus.optimization.errors import InfrastructureError, NeuroptimusError, UserError

# flock's answers on file systems without it (ENOLCK: NFS without lockd; ENOSYS: Lustre's
# "noflock"; the others: FUSE and friends)
_NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


class LockError(NeuroptimusError, RuntimeError):
    """The lock cannot be taken here (or not within the time allowed)."""


class LockBusy(LockError, UserError):
    """Another process holds the lock; ``holder`` names it (``pid P on HOST``)."""

    def __init__(self, path: Path, holder: str, hint: str = "") -> None:
        super().__init__(f"{path} is held by {holder}{hint}")
        self.holder, self.hint = holder, hint


class LockTimeout(LockError, InfrastructureError):
    """Another process still held the lock when the time allowed for waiting ran out."""

    def __init__(self, path: Path, holder: str, timeout_s: float, hint: str = "") -> None:
        super().__init__(f"{path} is still held by {holder} after {timeout_s:g} s{hint}")
        self.path, self.holder, self.hint = path, holder, hint


def flock_wanted() -> bool:
    """False when ``NEUROPTIMUS_LOCKS=file``: lock files even where flock answers, for file
    systems whose flock holds only within one node (Lustre mounted with ``localflock``)."""
    return os.environ.get("NEUROPTIMUS_LOCKS", "").strip().lower() != "file"


@contextmanager
def exclusive_lock(
    path: Path, wait: bool = False, timeout_s: float = 600.0, use_flock: bool | None = None
) -> Iterator[None]:
    """Hold the lock named ``path`` for the ``with`` block. Busy: raise LockBusy at once, or
    with ``wait`` wait for it (held past ``timeout_s``: LockTimeout naming the holder).
    ``use_flock=False`` acts as on a file system without flock (default: flock_wanted())."""
    if use_flock is None:
        use_flock = flock_wanted()
    if use_flock:
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise LockError(f"{path}: cannot create the lock file: {error}") from None
        try:
            locked = _flock(descriptor, path, wait, timeout_s)
        except BaseException:
            os.close(descriptor)
            raise
        if locked:
            try:  # naming the holder is a courtesy (a full disk may refuse it)
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, holder_token().encode(), 0)
            except OSError:
                pass
            try:
                yield
            finally:
                os.close(descriptor)  # closing releases the lock
            return
        os.close(descriptor)  # no flock on this file system
    with _lock_file(Path(f"{path}.held"), wait, timeout_s):
        yield


def _flock(descriptor: int, path: Path, wait: bool, timeout_s: float) -> bool:
    """Take the flock (polling while ``wait``, so that the wait can end); False where the
    file system has no flock."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if wait and time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            holder = os.pread(descriptor, 200, 0).decode(errors="replace").strip()
            holder = _first_line(holder) or "another process"
            if wait:
                raise LockTimeout(path, holder, timeout_s) from None
            raise LockBusy(path, holder) from None
        except OSError as error:
            if error.errno not in _NO_FLOCK:
                raise LockError(f"{path}: cannot lock it: {error}") from None
            return False


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (None: no such process, or no
    /proc here): [0] the state, [19] the start time."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), to tell a reused pid apart."""
    fields = _stat(pid)
    return fields[19] if fields else None


def holder_token() -> str:
    """This process, as a lock file names its holder (``holder_gone`` reads it back)."""
    pid = os.getpid()
    return f"pid {pid} on {socket.gethostname()}\nstarted {_start_time(pid)}\n"


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (someone else's counts as alive; a
    zombie — ended, not yet reaped, as orphans are in containers without an init — does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat(pid)
    return fields is None or fields[0] != "Z"  # no /proc here: it exists


def holder_gone(holder: str) -> bool:
    """Whether ``holder`` (a lock file's text) is a process of this host that has ended."""
    match = re.match(r"pid (\d+) on (\S+)", holder)
    if not match or match.group(2) != socket.gethostname():
        return False
    pid = int(match.group(1))
    if not process_alive(pid):
        return True
    started = re.search(r"started (\d+)", holder)
    return bool(started) and _start_time(pid) not in (None, started.group(1))


@contextmanager
def _this_host(held: Path) -> Iterator[None]:
    """Serializes this host's processes around one lock file (so that two of them never both
    take over a dead holder's file): a flock on a local temporary file."""
    name = hashlib.sha256(str(held.absolute()).encode()).hexdigest()[:16]
    local = Path(tempfile.gettempdir()) / f"neuroptimus-lock-{name}"
    descriptor = os.open(local, os.O_RDONLY | os.O_CREAT, 0o666)  # any user's processes
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _try_create(held: Path, token: str) -> str | None:
    """Create the lock file holding ``token``: None, or the holder's text if it exists.
    A unique file is written first and linked to the lock's name, which is atomic also over
    NFS: the lock file never exists without its holder's name."""
    unique = held.with_name(f"{held.name}.{uuid.uuid4().hex}")
    try:
        unique.write_text(token)
        try:
            os.link(unique, held)
        except FileExistsError:
            pass
        except OSError as error:
            if os.stat(unique).st_nlink != 2:  # NFS may report an error for a link it made
                raise LockError(f"{held}: cannot create the lock file: {error}") from None
        linked = os.stat(unique).st_nlink == 2
    except OSError as error:
        raise LockError(f"{held}: cannot create the lock file: {error}") from None
    finally:
        unique.unlink(missing_ok=True)
    if linked:
        return None
    try:
        return held.read_text()
    except FileNotFoundError:
        return ""  # released meanwhile: try again


@contextmanager
def _lock_file(held: Path, wait: bool, timeout_s: float) -> Iterator[None]:
    token = holder_token()
    deadline = time.monotonic() + timeout_s
    while True:
        with _this_host(held):
            holder = _try_create(held, token)
            if holder and holder_gone(holder):
                held.unlink(missing_ok=True)  # its holder was killed: take it over
                holder = _try_create(held, token)
        if holder is None:
            break
        name = _first_line(holder) or "another process"
        hint = f"; if it no longer runs, delete {held}"
        if not wait:
            raise LockBusy(held, name, hint)
        if time.monotonic() > deadline:
            raise LockTimeout(held, name, timeout_s, hint)
        time.sleep(0.2)
    try:
        yield
    finally:
        try:
            if held.read_text() == token:
                held.unlink()
        except FileNotFoundError:
            pass
