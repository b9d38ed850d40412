"""Replacing batch jobs that ended without telling Dask (scancel, walltime, node failure).

Adaptive scaling submits a job for every one the cluster stops counting, but dask-jobqueue
counts a job until its workers leave the scheduler, and distributed does that bookkeeping only
for jobs of one worker process (dask/distributed#9102). Two cases are handled here:
- a job whose workers were seen and have all been gone for ``lost-worker-timeout``;
- a job whose workers were never seen (still queued, or cancelled before they started): it is
  lost when the batch system no longer lists it as pending or running (asked every few seconds,
  only while such jobs exist, and only for systems whose command is known).
"""

from __future__ import annotations

import asyncio
import getpass
import time

import dask
import dask.utils
from tornado.ioloop import PeriodicCallback

# A command listing the current user's pending and running job ids, one per line.
ACTIVE_JOBS_COMMANDS = {
    "SLURMJob": lambda: ["squeue", "--noheader", "--format=%i", f"--user={getpass.getuser()}"],
}


async def active_job_ids(job_class_name: str) -> set[str] | None:
    """Ids the batch system lists as pending or running; None when it cannot tell."""
    make_command = ACTIVE_JOBS_COMMANDS.get(job_class_name)
    if make_command is None:
        return None
    try:
        process = await asyncio.create_subprocess_exec(
            *make_command(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    except TimeoutError:
        process.kill()
        return None
    if process.returncode != 0:  # the controller is unreachable: assume nothing
        return None
    return {line.strip() for line in out.decode().splitlines() if line.strip()}


def watch_jobs(cluster, interval_s: float = 0.25, queue_poll_s: float = 5.0) -> None:
    """Start the periodic check on the cluster's event loop (call from that loop)."""

    last_seen: dict[str, float] = {}
    polling = {"busy": False, "last": 0.0}

    def drop(name: str) -> None:
        last_seen.pop(name, None)
        job = cluster.workers.pop(name, None)
        if job is not None:
            asyncio.ensure_future(job.close())  # scancel: harmless if the job is gone

    async def drop_unlisted(candidates: dict[str, str]) -> None:
        try:
            active = await active_job_ids(cluster.job_cls.__name__)
            if active is None:
                return
            for name, job_id in candidates.items():
                job = cluster.workers.get(name)
                # still never seen, still the same job, and the queue no longer has it
                if name not in last_seen and job is not None and job.job_id == job_id:
                    if job_id not in active:
                        drop(name)
        finally:
            polling["busy"] = False

    def check() -> None:
        if cluster.status.name in ("closing", "closed"):
            callback.stop()
            return
        timeout = dask.utils.parse_timedelta(
            dask.config.get("distributed.deploy.lost-worker-timeout")
        )
        alive = {str(w["name"]) for w in cluster.scheduler_info.get("workers", {}).values()}
        now = time.monotonic()
        for name, spec in list(cluster.worker_spec.items()):
            members = {f"{name}{suffix}" for suffix in spec.get("group", [""])}
            if members & alive:
                last_seen[name] = now
            elif name in last_seen and name in cluster.workers:
                if now - last_seen[name] > timeout:
                    drop(name)
        unseen = {
            name: job.job_id
            for name, job in cluster.workers.items()
            if name not in last_seen and getattr(job, "job_id", None)
        }
        if unseen and not polling["busy"] and now - polling["last"] >= queue_poll_s:
            polling.update(busy=True, last=now)
            asyncio.ensure_future(drop_unlisted(unseen))

    callback = PeriodicCallback(check, interval_s * 1000)
    callback.start()
