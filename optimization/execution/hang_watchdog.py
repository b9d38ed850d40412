"""The hang watchdog: a simulation stuck in C code holds the GIL, so no Python-level timeout
in the worker can stop it. Each worker announces the running evaluation's deadline in a small
shared-memory slot; its nanny (another process) reads the slot and kills the worker past the
deadline, after recording the individual on the scheduler so that it is not run again but
stored with the ``timeout`` status."""

from __future__ import annotations

import hashlib
import mmap
import os
import signal
import struct
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from distributed import NannyPlugin, get_worker
from tornado.ioloop import PeriodicCallback

from neuroptimus.optimization.evaluation import individual as evaluation
from neuroptimus.optimization.evaluation.individual import CRASHED, TIMEOUT
from neuroptimus.optimization.evaluation.problem import Problem

# deadline and start (time.monotonic; deadline 0 = idle), the individual's fingerprint and
# the pid of the worker process that wrote them (a slot left by a dead worker is stale)
SLOT = struct.Struct("<dd16sq")
# after it: the worker's resident memory (bytes) as the evaluation started (``worker_deaths``
# compares it with what the nanny sees later)
MEMORY = struct.Struct("<q")
SLOT_SIZE = SLOT.size + MEMORY.size
_DEADLINE, _START, _IDLE = struct.Struct("<d"), struct.Struct("<d16s"), bytes(8)
HUNG = "neuroptimus-hung"  # scheduler metadata: fingerprint → seconds the evaluation ran


def fingerprint(key: str, values: np.ndarray) -> str:
    """Names one individual of one problem (the same vector always gets the same name)."""
    digest = hashlib.blake2b(np.ascontiguousarray(values, dtype="f8").tobytes(), digest_size=8)
    digest.update(key.encode())
    return digest.hexdigest()


def slot_path(nanny_address: str, pid: int | str) -> Path:
    """The slot of worker process ``pid`` of this nanny: one file per process, so that a
    replacement never overwrites what its dead predecessor was running before the nanny has
    read it (``worker_deaths``)."""
    name = hashlib.sha1(nanny_address.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"neuroptimus-watch-{name}-{pid}"


def open_slot(path: Path, create: bool = True) -> mmap.mmap | None:
    """The slot file mapped into memory (the worker creates it, its nanny only reads it)."""
    if not create and (not path.exists() or path.stat().st_size < SLOT_SIZE):
        return None
    with open(path, "a+b" if create else "r+b") as handle:
        if create:
            handle.truncate(SLOT_SIZE)
        return mmap.mmap(handle.fileno(), SLOT_SIZE)


class HangWatchdog(NannyPlugin):
    """In each worker's nanny (its own process): kills the worker once the evaluation it runs
    is ``grace_s`` past its deadline (a simulation stuck in C code holds the GIL, so nothing in
    the worker itself can stop it), after recording the individual on the scheduler."""

    name = "neuroptimus-hang-watchdog"
    idempotent = True

    def __init__(self, grace_s: float, interval_s: float = 0.5) -> None:
        self.grace_s = grace_s
        self.interval_s = interval_s

    def setup(self, nanny) -> None:
        self._slot: tuple[int, mmap.mmap] | None = None  # the current worker's pid and slot
        self._callback = PeriodicCallback(lambda: self._check(nanny), self.interval_s * 1000)
        self._callback.start()

    def teardown(self, nanny) -> None:
        self._callback.stop()
        pattern = slot_path(nanny.address, "*")
        for path in pattern.parent.glob(pattern.name):
            path.unlink(missing_ok=True)

    async def _check(self, nanny) -> None:
        if nanny.pid is None:
            return  # no worker process at the moment
        if self._slot is None or self._slot[0] != nanny.pid:
            slot = open_slot(slot_path(nanny.address, nanny.pid), create=False)
            if slot is None:
                return  # no evaluation yet
            self._slot = (nanny.pid, slot)
        slot = self._slot[1]
        deadline, started, name, pid = SLOT.unpack_from(slot)
        now = time.monotonic()
        if not deadline or now < deadline + self.grace_s or pid != nanny.pid:
            return
        if SLOT.unpack_from(slot) != (deadline, started, name, pid):
            return  # the worker moved on meanwhile
        SLOT.pack_into(slot, 0, 0.0, 0.0, b"", 0)
        try:  # record first, so the scheduler knows the culprit before it sees the loss
            await nanny.scheduler.set_metadata(keys=[HUNG, name.decode()], value=now - started)
        finally:
            os.kill(pid, signal.SIGKILL)  # the nanny then starts a fresh worker process


_slot: mmap.mmap | bool | None = None  # this worker's slot; False without a nanny
_process = None  # psutil's view of this process, for its memory


def _resident_memory() -> int:
    global _process
    if _process is None:
        _process = psutil.Process()
    return _process.memory_info().rss


def watched(key: str, hung: dict[str, float], crashed: dict[str, tuple[str, float]] | None = None):
    """evaluate_one, announced in this worker's slot for the nanny's watchdog; individuals
    known to hang (fingerprint → seconds) or to crash their process (fingerprint → message,
    seconds) are not run again but get the timeout or crashed status."""
    crashed = crashed or {}
    global _slot
    if _slot is None:
        nanny = getattr(get_worker(), "nanny", None)
        _slot = open_slot(slot_path(nanny, os.getpid())) if nanny else False
        if _slot:  # idle, and this process's
            SLOT.pack_into(_slot, 0, 0.0, 0.0, b"", os.getpid())
    slot = _slot or None

    def outcome(problem: Problem, values: np.ndarray):
        name = fingerprint(key, values)
        if name in hung:
            message = (
                f"the simulation hung past its time limit "
                f"({problem.spec.evaluation.timeout_s:g} s) and its worker process was killed"
            )
            penalty = np.full(len(problem.component_names), problem.spec.evaluation.penalty)
            return penalty, TIMEOUT, message, hung[name]
        if name in crashed:
            penalty = np.full(len(problem.component_names), problem.spec.evaluation.penalty)
            return penalty, CRASHED, *crashed[name]
        if slot is None:
            return evaluation.evaluate_one(problem, values)
        MEMORY.pack_into(slot, SLOT.size, _resident_memory())
        started = time.monotonic()
        slot[8:32] = _START.pack(started, name.encode())
        slot[0:8] = _DEADLINE.pack(started + problem.spec.evaluation.timeout_s)
        try:
            return evaluation.evaluate_one(problem, values)
        finally:
            slot[0:8] = _IDLE

    return outcome
