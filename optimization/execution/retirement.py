"""A Dask worker process whose model an evaluation ruined retires, so that the individuals
after it get the results a fresh process gives them.

A user function that deletes a NEURON section fails its individual and ruins the model of the
process (``Simulator.ruined``): NEURON cannot rebuild the section there, and hoc files cannot
be loaded again. The worker then hands the results of its task so far (the ruining
individual's last) over to the client with a notice of why, and exits with the status
``worker_deaths.RETIRED``; its nanny starts a fresh process, which builds the model anew. The
evaluator (``dask_evaluator``) keeps those results, evaluates the rest of the task, and any
other task lost with that process, again elsewhere, without counting that as a loss or
blaming anyone, and logs one line of why the worker was replaced.

The results and the notice travel in one request to the scheduler, which it answers before the
process exits: it passes them on to the client before it tells the client that the worker is
gone (``handover``)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from distributed import get_worker
from distributed.utils import sync

from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.execution import handover
from neuroptimus.optimization.execution.worker_deaths import RETIRED, death_key
from neuroptimus.optimization.simulators import ModelError

_NOTICE_S = 60.0  # the longest the scheduler may take to answer the notice


def retire(inbox: str, result: BatchResult, reason: str) -> NoReturn:
    """In a task of a worker whose model is ruined (``reason``): hand ``result``, the task's
    rows evaluated so far, over to ``inbox`` with the notice, and end this process."""
    worker = get_worker()
    if not getattr(worker, "nanny", None):
        raise ModelError(
            f"{reason}, and NEURON cannot rebuild it in this process: this Dask worker has no "
            "nanny to start a fresh one, so start the workers with nannies"
        )
    task = str(worker.get_current_task())
    notice = {
        "worker": death_key(worker.nanny, os.getpid()),
        "label": result.worker[-1],
        "reason": reason,
    }
    event = handover.encode(inbox, task, 0, result, notice)
    try:
        sync(
            worker.loop,
            worker.scheduler.log_event,
            topic=handover.TOPIC,
            msg=event,
            callback_timeout=_NOTICE_S,
        )
    finally:  # unannounced (the scheduler gone?), the task is lost as with any death
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(RETIRED)


def retired_message(retired: handover.Retired, left: int) -> str:
    """The log line of a retirement: which process, why, and what runs again."""
    return (
        f"worker process {retired.label} was replaced by a fresh one: {retired.reason} while "
        f"evaluating an individual (stored as failed), which NEURON cannot rebuild in that "
        f"process; the {left} individual(s) of its task it had not evaluated, and any task "
        "it held, are evaluated again elsewhere"
    )
