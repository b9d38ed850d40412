"""Workers on a batch queue leave before their job's walltime instead of being killed inside an
evaluation.

From ``walltime − evaluation_margin`` a worker starts no new evaluation (``WalltimeDrain``,
a worker plugin: it pauses the worker, so the scheduler sends it nothing more) and leaves as
soon as the one it runs has ended; the job ends with its last worker and adaptive scaling
submits a replacement. Should an evaluation outlast the margin, Dask's own worker lifetime
(``--lifetime``, a little before the walltime) retires the worker anyway: its task goes back
to the scheduler as an orderly departure and runs on another worker, whereas a worker killed by
the batch system looks like a crash (its individual is evaluated again, see ``crash_blame``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import dask.utils
import psutil
from distributed import WorkerPlugin
from distributed.core import Status

from neuroptimus.optimization.errors import UserError

# Default margin: the longest evaluation a worker still starts before its walltime (a tenth
# of the walltime when that is shorter, so that short debug queues keep most of their time).
DEFAULT_MARGIN_S = 300.0
# How long a drained worker still holds results the client has not fetched (a worker that
# leaves with the only copy of a result makes the scheduler compute it again).
RESULT_WAIT_S = 30.0
# Dask's lifetime (the hard stop) comes this long before the walltime, at most half the margin:
# time for the worker to hand its task back and close before the batch system kills it.
STOP_SLACK_S = 60.0


class WalltimeError(UserError, ValueError):
    """A walltime or margin that cannot work."""


def walltime_seconds(walltime: str | int | float, cluster_class: str = "") -> float:
    """A job's walltime in seconds: ``[D-]HH:MM:SS``, ``MM:SS`` or minutes (SLURM), ``HH:MM``
    (LSF), or a number of seconds."""
    if isinstance(walltime, int | float):
        return float(walltime)
    text = str(walltime).strip()
    days, _, clock = text.rpartition("-") if "-" in text else ("0", "", text)
    try:
        parts = [float(p) for p in clock.split(":")]
        day_s = float(days) * 86400
    except ValueError:
        raise WalltimeError(f"walltime {walltime!r}: expected [D-]HH:MM:SS") from None
    if len(parts) == 1:  # minutes (SLURM's -t 30)
        hours, minutes, seconds = 0.0, parts[0], 0.0
    elif len(parts) == 2:  # LSF's -W is HH:MM, SLURM's MM:SS
        if cluster_class.endswith("LSFCluster"):
            hours, minutes, seconds = parts[0], parts[1], 0.0
        else:
            hours, minutes, seconds = 0.0, parts[0], parts[1]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        raise WalltimeError(f"walltime {walltime!r}: expected [D-]HH:MM:SS")
    return day_s + hours * 3600 + minutes * 60 + seconds


def _has_lifetime(extra_args: Any) -> bool:
    return any(str(a).split("=")[0] == "--lifetime" for a in extra_args or [])


def schedule(
    options: dict[str, Any], evaluation_margin: str | float | None, cluster_class: str = ""
) -> tuple[float, float] | None:
    """``(drain_after_s, lifetime_s)`` for a job of these options, counted from the worker's
    start: when it stops starting evaluations and when Dask retires it. None without a
    walltime, or when ``worker_extra_args`` already sets ``--lifetime`` (the user's choice)."""
    walltime = options.get("walltime")
    if walltime is None or _has_lifetime(options.get("worker_extra_args")):
        return None
    wall_s = walltime_seconds(walltime, cluster_class)
    if evaluation_margin is None:
        margin_s = min(DEFAULT_MARGIN_S, wall_s / 10)
    else:
        try:
            margin_s = dask.utils.parse_timedelta(evaluation_margin, default="seconds")
        except (ValueError, TypeError, KeyError):
            raise WalltimeError(
                f"evaluation_margin: {evaluation_margin} is not a duration "
                "(e.g. '30 minutes', '1h', or seconds)"
            ) from None
    if margin_s <= 0:
        raise WalltimeError(f"evaluation_margin: {evaluation_margin} is not a positive duration")
    if margin_s >= wall_s:
        raise WalltimeError(
            f"evaluation_margin: {evaluation_margin} leaves no time to evaluate in a walltime "
            f"of {walltime}; make it shorter than the walltime (or the walltime longer)"
        )
    return wall_s - margin_s, wall_s - min(STOP_SLACK_S, margin_s / 2)


def lifetime_args(lifetime_s: float) -> list[str]:
    """Dask worker arguments of the hard stop. No stagger: a job is replaced only once all
    its workers are gone, so staggering them would only idle its cores sooner; no restart: a
    restarted worker would die with the job."""
    return ["--lifetime", f"{int(lifetime_s)}s", "--no-lifetime-restart"]


class WalltimeDrain(WorkerPlugin):
    """On each worker: from ``drain_after_s`` after the worker process started, start no new
    evaluation and leave once the running one has ended."""

    name = "neuroptimus-walltime-drain"

    def __init__(self, drain_after_s: float, poll_s: float = 0.5) -> None:
        self.drain_after_s = drain_after_s
        self.poll_s = poll_s

    def setup(self, worker) -> None:
        # the job started just before its worker processes: count from the process's start
        started = psutil.Process().create_time()
        delay = max(0.0, started + self.drain_after_s - time.time())
        self._handle = worker.loop.call_later(
            delay, lambda: asyncio.ensure_future(self._drain(worker))
        )

    def teardown(self, worker) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            worker.loop.remove_timeout(handle)

    async def _drain(self, worker) -> None:
        if worker.status not in (Status.running, Status.paused):
            return
        # A paused worker starts nothing new and the scheduler sends it nothing; the memory
        # monitor must not resume it.
        worker.memory_manager.memory_pause_fraction = False
        worker.status = Status.paused
        idle_since = None
        while worker.status == Status.paused:
            if worker.state.executing:
                idle_since = None
            else:
                idle_since = idle_since or time.monotonic()
                if not worker.data or time.monotonic() - idle_since > RESULT_WAIT_S:
                    break
            await asyncio.sleep(self.poll_s)
        if worker.status == Status.paused:  # not already retired by Dask's lifetime
            await worker.close_gracefully(restart=False, reason="job walltime near")
