"""Dask's liveness rules set against the evaluations' own limits.

- A simulation stuck in C code holds the GIL, so its worker stops sending heartbeats. The
  scheduler restarts a worker silent for ``distributed.scheduler.worker-ttl`` (Dask: 5
  minutes), and a restart during an evaluation looks like a crash; the hang watchdog must act
  first, ``timeout_s + hang_grace_s`` after the evaluation's start. So every evaluator raises
  the scheduler's TTL above that (``watch_liveness``). TCP's own timeouts
  (``distributed.comm.timeouts``) stay: the kernel of a hung process still answers, they
  only notice a node that is gone.
- Dask pauses a worker at 80 % of its memory limit; a NEURON worker's memory is its model,
  which no spilling frees, so a paused worker would idle for good and a generation whose
  workers are all paused would wait silently. Our workers neither spill nor pause
  (``MEMORY``); on other clusters each pause is reported (``PauseReporter``).
- A cluster given by ``address`` was started with settings of its own: ``check_cluster``
  sets what it can and says in one line what differs.
"""

from __future__ import annotations

import logging
from typing import Any

from distributed import Client, WorkerPlugin
from distributed.core import Status
from tornado.ioloop import PeriodicCallback

log = logging.getLogger(__name__)

# Beyond timeout_s + hang_grace_s: the watchdog's look (every 0.5 s) and kill on a busy node,
# and the heartbeat interval (up to 5 s) that may have passed before the evaluation started.
TTL_SLACK_S = 60.0

# The memory settings of the workers of every cluster Neuroptimus starts: nothing is spilled
# to disk (results are handed over as they exist: a worker holds almost no data) and nothing
# pauses; the nanny restarts a worker past 95 % of its memory limit (the share of the
# machine's memory, or of the job's ``memory``), before the kernel's or the batch system's
# out-of-memory killer acts, and an individual that does it again alone is stored crashed.
MEMORY = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
    "distributed.worker.memory.terminate": 0.95,
}

PAUSED = "neuroptimus-paused"  # event topic: a worker paused or resumed


def worker_ttl_s(timeout_s: float, grace_s: float) -> float:
    """The least worker TTL under which the hang watchdog stops a hung evaluation first."""
    return timeout_s + grace_s + TTL_SLACK_S


def watch_liveness(client: Client, timeout_s: float, grace_s: float) -> None:
    """Raise the scheduler's worker TTL to ``worker_ttl_s`` (never lower it: other runs may
    share the scheduler; a TTL switched off stays off), and report the workers paused for
    their memory."""
    needed = worker_ttl_s(timeout_s, grace_s)

    # defined here, so that it travels by value: a scheduler of one's own may not have
    # this project installed
    def raise_ttl(dask_scheduler, seconds=needed):
        if dask_scheduler.worker_ttl and dask_scheduler.worker_ttl < seconds:
            dask_scheduler.worker_ttl = seconds

    try:
        client.run_on_scheduler(raise_ttl)
    except Exception as error:  # noqa: BLE001 - a scheduler that runs no client functions
        log.warning(
            "cannot raise the worker TTL of the scheduler at %s to %g s (%s): a simulation "
            "hung in C code for longer than the TTL is taken for a lost worker",
            client.scheduler.address, needed, error,
        )  # fmt: skip
    report_pauses(client)


def check_cluster(client: Client, address: str) -> str | None:
    """On a cluster given by ``address``: set the scheduler's allowed failures to 0 (a task
    that kills its worker then fails at once, and the evaluator finds the individual to
    blame), and log one line of what differs from the clusters Neuroptimus starts; that line,
    or None when nothing differs."""

    def inspect(dask_scheduler):  # by value, as in watch_liveness
        allowed = dask_scheduler.allowed_failures
        dask_scheduler.allowed_failures = 0
        workers = list(dask_scheduler.workers.values())
        return {
            "allowed_failures": allowed,
            "workers": len(workers),
            "without_nanny": sum(1 for w in workers if not w.nanny),
            "paused": sum(1 for w in workers if w.status.name == "paused"),
        }

    try:
        found = client.run_on_scheduler(inspect)
    except Exception as error:  # noqa: BLE001 - a scheduler that runs no client functions
        line = (
            f"cluster at {address}: cannot read its settings ({error}); with Dask's defaults "
            "a task that kills its worker is tried on 4 workers before it fails"
        )
        log.warning(line)
        return line
    line = _differences(address, found)
    if line is not None:
        log.warning(line)
    return line


def _differences(address: str, found: dict[str, Any]) -> str | None:
    parts = []
    allowed, workers = found["allowed_failures"], found["workers"]
    if allowed:
        parts.append(
            f"allowed-failures was {allowed}, now 0 while its scheduler runs (a task that "
            f"kills its worker fails at once, so that the individual to blame is found, "
            f"instead of being tried on {allowed + 1} workers)"
        )
    if found["without_nanny"]:
        parts.append(
            f"{_of(found['without_nanny'], workers)} no nanny (there a simulation hung in C "
            "code is not stopped, and one that kills its worker is not singled out: the generation "
            "fails after `resubmissions` losses)"
        )
    if found["paused"]:
        parts.append(
            f"{_of(found['paused'], workers, 'is', 'are')} paused, past Dask's memory pause "
            "threshold (a paused worker takes no evaluations; each pause is reported)"
        )
    if not parts:
        return None
    return f"cluster at {address}: " + "; ".join(parts)


def _of(count: int, total: int, one: str = "has", many: str = "have") -> str:
    return f"{count} of {total} worker{'s' if total != 1 else ''} {one if count == 1 else many}"


class PauseReporter(WorkerPlugin):
    """On each worker: tells the client when Dask's memory monitor pauses the worker or lets
    it go on (not the walltime drain's pause, which switches the memory pause off)."""

    name = "neuroptimus-pause-reporter"
    idempotent = True

    def __init__(self, interval_s: float = 1.0) -> None:
        self.interval_s = interval_s

    def setup(self, worker) -> None:
        self._paused = False
        # the first check after one interval: by then the client's subscription, sent just
        # before this plugin over another connection, has reached the scheduler
        self._callback = PeriodicCallback(lambda: self._check(worker), self.interval_s * 1000)
        self._callback.start()

    def teardown(self, worker) -> None:
        self._callback.stop()

    def _check(self, worker) -> None:
        manager = worker.memory_manager
        paused = worker.status == Status.paused and manager.memory_pause_fraction is not False
        if paused == self._paused:
            return
        self._paused = paused
        worker.log_event(
            PAUSED,
            {
                "paused": paused,
                "memory": int(worker.monitor.get_process_memory()),
                "limit": int(manager.memory_limit or 0),
                "threshold": float(manager.memory_pause_fraction or 0),
            },
        )


def _pause_logger(reported: set[str]):
    """The handler of one client's pause events; ``reported``: the workers whose pause it
    logged as a warning (again: as info). Per client, since a later cluster's worker may
    get an address an earlier one had."""

    def on_pause(event: tuple[float, Any]) -> None:
        message = event[1]
        worker = message.get("worker", "?")
        if not message.get("paused"):
            log.info("worker %s goes on: its memory fell below Dask's pause threshold", worker)
            return
        level = logging.INFO if worker in reported else logging.WARNING
        reported.add(worker)
        log.log(
            level,
            "worker %s paused: its process uses %.0f MB, past Dask's pause threshold of %.0f %% "
            "of its memory limit (%.0f MB); it takes no evaluations until its memory falls "
            "below that, and a generation whose workers are all paused waits "
            "(distributed.worker.memory.pause)",
            worker, message["memory"] / 1e6, message["threshold"] * 100, message["limit"] / 1e6,
        )  # fmt: skip

    return on_pause


def report_pauses(client: Client) -> None:
    """Log a line when a worker of ``client``'s cluster is paused for its memory; also for
    a worker paused before (the scheduler keeps the events; an earlier client's plugin does not
    start again on a cluster given by address)."""
    reported: set[str] = set()
    on_pause = _pause_logger(reported)
    client.subscribe_topic(PAUSED, on_pause)
    client.register_plugin(PauseReporter())
    latest = {event[1].get("worker"): event for event in client.get_events(PAUSED)}
    present = client.scheduler_info().get("workers", {})
    for worker, event in latest.items():
        if event[1].get("paused") and worker in present and worker not in reported:
            on_pause(event)
