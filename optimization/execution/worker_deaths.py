"""How a worker process died, and running what: its nanny (the process that started it) sees
the exit code, and the evaluation slot the worker shares with it (``hang_watchdog``) names the
individual it was evaluating. The nanny records both on the scheduler under its own address and
the process id (what the scheduler knows of every worker it loses), so that the evaluator can
tell an individual that kills its process (a segfault or an abort in a mechanism, the
out-of-memory killer) from a worker lost for another reason (``crash_blame`` says when a death
counts against an individual). For deaths by memory, the nanny also records how much memory
the process held when the evaluation started and when it last looked, and whether it ended
the process itself past Dask's memory limit."""

from __future__ import annotations

import signal
import time
from typing import TypedDict

import psutil
from distributed import NannyPlugin
from tornado.ioloop import PeriodicCallback

from neuroptimus.optimization.evaluation.individual import worker_label
from neuroptimus.optimization.execution.hang_watchdog import MEMORY, SLOT, open_slot, slot_path

DEATHS = "neuroptimus-deaths"  # scheduler metadata: death_key → Death
# The exit status of a worker process that retired on purpose (``retirement``): no death.
RETIRED = 75  # EX_TEMPFAIL of sysexits.h: "not really an error"


def death_key(nanny_address: str, pid: int) -> str:
    """Where the death of process ``pid`` of the nanny at ``nanny_address`` is recorded. Not
    the worker's address: a nanny learns that only after the scheduler has registered the
    worker (and may have given it a task), and it is the replacement's soon after a death."""
    return f"{nanny_address}/{pid}"


class Death(TypedDict):
    exitcode: int  # as multiprocessing gives it: -N for signal N
    running: str | None  # fingerprint of the individual being evaluated, if any
    seconds: float | None  # how long that evaluation had run
    worker: str  # host:pid of the dead process (and its batch job)
    memory_start: int | None  # bytes resident as that evaluation started
    memory_last: int | None  # bytes resident at the nanny's last look during it
    memory_limit: int | None  # Dask's memory limit of the worker, else the machine's memory
    memory_terminated: bool  # its nanny terminated it past that limit


def death_message(exitcode: int | None) -> str:
    """What killed a worker process, in words: ``worker process killed by signal 11
    (SIGSEGV)``."""
    if exitcode is None:
        return "worker process lost (no exit status reported)"
    if exitcode == RETIRED:
        return "worker process retired: an evaluation ruined its model"
    if exitcode >= 0:
        return f"worker process exited with status {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = "unknown signal"
    message = f"worker process killed by signal {-exitcode} ({name})"
    if -exitcode == signal.SIGKILL:
        message += ": the out-of-memory killer, or a kill from outside"
    elif -exitcode == signal.SIGTERM:
        message += ": its nanny past Dask's memory limit, or a stop from outside"
    return message


def manager(nanny):
    """The nanny's memory manager (None in versions of distributed without one)."""
    return getattr(nanny, "memory_manager", None)


def memory_limit(nanny) -> int | None:
    """The worker's memory limit: Dask's, else the memory of the machine."""

    return getattr(manager(nanny), "memory_limit", None) or psutil.virtual_memory().total


class DeathRecorder(NannyPlugin):
    """In each worker's nanny: records on the scheduler how its worker process ended and which
    individual it was evaluating then.

    Distributed has no hook for a worker's exit, so the plugin looks at the nanny's worker
    process every ``interval_s``: a new process needs seconds to start, which is more than
    enough to see it before it can run (and die of) anything; each process has its own slot,
    so a late look still finds what the dead one was running, and files it under the dead
    process's id. While the process evaluates, each look also notes its resident memory."""

    name = "neuroptimus-death-recorder"
    idempotent = True

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s

    def setup(self, nanny) -> None:
        # distributed's AsyncProcess of the worker (which keeps the exit code)
        self._watched: object | None = None
        self._recorded: object | None = None
        # the watched process's slot (pid, mapping) and memory at the last look during an
        # evaluation: (pid, the evaluation's start, bytes)
        self._slot: tuple[int, object] | None = None
        self._memory: tuple[int, float, int] | None = None
        self._callback = PeriodicCallback(lambda: self._check(nanny), self.interval_s * 1000)
        self._callback.start()

    def teardown(self, nanny) -> None:
        self._callback.stop()

    async def _check(self, nanny) -> None:
        if self._watched is not None and self._watched.exitcode is not None:
            process, self._watched = self._watched, None
            self._recorded = process
            await self._record(nanny, process)
        worker = getattr(nanny, "process", None)
        process = getattr(worker, "process", None)
        if self._watched is None and process is not None and process is not self._recorded:
            self._watched = process
        if self._watched is not None:
            self._note_memory(nanny, self._watched.pid)

    def _note_memory(self, nanny, pid: int) -> None:
        """The watched process's resident memory, if it is evaluating."""

        if self._slot is None or self._slot[0] != pid:
            if self._slot is not None:
                self._slot[1].close()
            slot = open_slot(slot_path(nanny.address, pid), create=False)
            if slot is None:
                return  # no evaluation yet
            self._slot = (pid, slot)
        deadline, started, _, owner = SLOT.unpack_from(self._slot[1])
        if not deadline or owner != pid:
            return
        try:
            self._memory = (pid, started, psutil.Process(pid).memory_info().rss)
        except (psutil.Error, OSError):
            pass  # it has just ended

    async def _record(self, nanny, process) -> None:
        running, seconds, memory_start, memory_last = None, None, None, None
        path = slot_path(nanny.address, process.pid)
        slot = open_slot(path, create=False)
        if slot is not None:
            deadline, started, name, pid = SLOT.unpack_from(slot)
            (memory_start,) = MEMORY.unpack_from(slot, SLOT.size)
            slot.close()
            if deadline and pid == process.pid:  # its evaluation had not ended
                running, seconds = name.decode(), time.monotonic() - started
                if self._memory is not None and self._memory[:2] == (pid, started):
                    memory_last = self._memory[2]
        if self._slot is not None and self._slot[0] == process.pid:
            self._slot[1].close()
            self._slot = None
        path.unlink(missing_ok=True)  # the process is gone: its slot too
        if process.exitcode in (0, RETIRED):
            return  # it ended cleanly, or retired (it told the evaluator why itself)
        # distributed's nanny notes the last process it terminated past its memory limit
        terminated = getattr(manager(nanny), "_last_terminated_pid", None) == process.pid
        death = Death(
            exitcode=process.exitcode,
            running=running,
            seconds=seconds,
            worker=worker_label(process.pid),
            memory_start=(memory_start or None) if running else None,
            memory_last=memory_last,
            memory_limit=memory_limit(nanny),
            memory_terminated=terminated,
        )
        key = death_key(nanny.address, process.pid)
        await nanny.scheduler.set_metadata(keys=[DEATHS, key], value=dict(death))
