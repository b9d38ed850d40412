"""How a worker process died, and running what: its nanny (the process that started it) sees
the exit code, and the evaluation slot the worker shares with it (``hang_watchdog``) names the
individual it was evaluating. The nanny records both on the scheduler under its own address and
the process id (what the scheduler knows of every worker it loses), so that the evaluator can
tell an individual that kills its process (a segfault or an abort in a mechanism, the
out-of-memory killer) from a worker lost for another reason."""

from __future__ import annotations

import signal
import time
from typing import TypedDict

from distributed import NannyPlugin

from optimization.evaluation import worker_label
from optimization.hang_watchdog import SLOT, open_slot, slot_path

DEATHS = "neuroptimus-deaths"  # scheduler metadata: death_key → Death


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


def death_message(exitcode: int | None) -> str:
    """What killed a worker process, in words: ``worker process killed by signal 11
    (SIGSEGV)``."""
    if exitcode is None:
        return "worker process lost (no exit status reported)"
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


class DeathRecorder(NannyPlugin):
    """In each worker's nanny: records on the scheduler how its worker process ended and which
    individual it was evaluating then.

    Distributed has no hook for a worker's exit, so the plugin looks at the nanny's worker
    process every ``interval_s``: a new process needs seconds to start, which is more than
    enough to see it before it can run (and die of) anything; each process has its own slot,
    so a late look still finds what the dead one was running, and files it under the dead
    process's id."""

    name = "neuroptimus-death-recorder"
    idempotent = True

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s

    def setup(self, nanny) -> None:
        from tornado.ioloop import PeriodicCallback

        # distributed's AsyncProcess of the worker (which keeps the exit code)
        self._watched: object | None = None
        self._recorded: object | None = None
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

    async def _record(self, nanny, process) -> None:
        running, seconds = None, None
        path = slot_path(nanny.address, process.pid)
        slot = open_slot(path, create=False)
        if slot is not None:
            deadline, started, name, pid = SLOT.unpack_from(slot)
            slot.close()
            if deadline and pid == process.pid:  # its evaluation had not ended
                running, seconds = name.decode(), time.monotonic() - started
        path.unlink(missing_ok=True)  # the process is gone: its slot too
        if process.exitcode == 0:
            return  # it ended cleanly
        death = Death(
            exitcode=process.exitcode,
            running=running,
            seconds=seconds,
            worker=worker_label(process.pid),
        )
        key = death_key(nanny.address, process.pid)
        await nanny.scheduler.set_metadata(keys=[DEATHS, key], value=dict(death))
