"""When an individual is blamed for the death of a worker process (stored as ``crashed``).

A worker process can die while it evaluates an individual for reasons that have nothing to do
with that individual: a ``scancel``, preemption, a lost node, the end of its batch job, a
slow memory leak of earlier evaluations ended by its nanny, or state left over from the
individual it ran before. So one death is never enough. An individual is blamed only when

1. its worker process died while evaluating it *alone* (the chunk it came in was lost
   before, see ``dask_evaluator``), of a cause a model can have (below), and
2. run once more alone, in a fresh process that has evaluated nothing else
   (``fresh_process``), it kills that process too, of such a cause.

Causes a model can have (messages show the memory growth for deaths by memory):

- SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL: raised by the process itself (a bad mechanism,
  a failed assertion, a division by zero); nothing outside sends them in practice.
- Running out of memory, with evidence that this evaluation used it up. The kernel's
  out-of-memory killer sends SIGKILL and Dask's nanny past its memory limit sends SIGTERM:
  the same signals as a ``kill`` from outside, so the exit code alone proves nothing. A
  SIGKILL or SIGTERM counts only if the nanny itself terminated the process past Dask's
  memory limit (it says so), or if the process grew, during this evaluation, by at least
  ``GROWTH_EVIDENCE`` of its memory limit (the nanny's limit, else the machine's memory):
  an individual that allocates that much is the likely culprit of an out-of-memory kill,
  and an outside kill that comes just then is unlikely. The growth is measured by the nanny
  every quarter second (a faster leak can go unseen: then nobody is blamed) and, in the fresh
  process, as its peak.

Anything else blames nobody: a SIGKILL or SIGTERM without that evidence, a worker lost with no
exit status (its node or its nanny died too), an exit with a status. Those individuals are
evaluated again, a bounded number of times (``ClusterConfig.resubmissions``); one whose worker
dies again and again while evaluating it, without evidence, is then stored as ``failed`` with
the causes of the deaths in its message (never left out), and losses with no individual
running at all fail the generation as before (``WorkersLost``: Prefect's retry).

A fresh process that ends normally clears the individual: its result there is its result.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

from dask.utils import format_bytes

from neuroptimus.optimization.execution.worker_deaths import death_message

# Signals a process raises itself (a model's fault), unlike SIGKILL and SIGTERM.
MODEL_SIGNALS = frozenset(
    {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}
)
OUTSIDE_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM})
# Growth during one evaluation, as a share of the memory limit, that makes a SIGKILL or
# SIGTERM the individual's: far beyond what a model needs to simulate (UC1: under 1 MB).
GROWTH_EVIDENCE = 0.5


def memory_growth(start: int | None, last: int | None, limit: int | None) -> str | None:
    """``its memory grew from 200.00 MiB to 1.86 GiB (limit 1.86 GiB) while evaluating it``, or
    None when not known."""
    if not start or not last:
        return None
    limit_text = f" (limit {format_bytes(limit)})" if limit else ""
    grew = f"from {format_bytes(start)} to {format_bytes(last)}"
    return f"its memory grew {grew}{limit_text} while evaluating it"


def _grew_enough(start: int | None, last: int | None, limit: int | None) -> bool:
    return bool(start and last and limit) and last - start >= GROWTH_EVIDENCE * limit


def _signal(exitcode: int | None) -> int | None:
    return -exitcode if exitcode is not None and exitcode < 0 else None


def suspicion(death: Mapping[str, Any]) -> str | None:
    """Why the worker death ``death`` (``worker_deaths.Death``) may be the doing of the
    individual it was evaluating, in words; None when nothing says so."""
    code = death.get("exitcode")
    number = _signal(code)
    start, last, limit = (death.get(k) for k in ("memory_start", "memory_last", "memory_limit"))
    growth = memory_growth(start, last, limit)
    if number in MODEL_SIGNALS:
        return death_message(code)
    if number in OUTSIDE_SIGNALS and death.get("memory_terminated"):
        name = signal.Signals(number).name
        message = f"worker process terminated by its nanny past Dask's memory limit ({name})"
    elif number in OUTSIDE_SIGNALS and _grew_enough(start, last, limit):
        name = signal.Signals(number).name
        message = f"worker process killed by signal {number} ({name}): out of memory, most likely"
    else:
        return None
    return f"{message}; {growth}" if growth else message


def confirmation(run: Mapping[str, Any]) -> str | None:
    """How the fresh process (``fresh_process.FreshRun`` as a mapping) died of a cause the
    individual can have, in words; None when it did not."""
    code = run.get("exitcode")
    number = _signal(code)
    start, peak, limit = (run.get(k) for k in ("memory_start", "memory_peak", "memory_limit"))
    growth = memory_growth(start, peak, limit)
    if number in MODEL_SIGNALS and not run.get("memory_killed"):
        return f"killed by signal {number} ({signal.Signals(number).name})"
    if run.get("memory_killed"):
        message = "killed past the worker's memory limit"
    elif number in OUTSIDE_SIGNALS and _grew_enough(start, peak, limit):
        message = f"killed by signal {number} ({signal.Signals(number).name}): out of memory"
    else:
        return None
    return f"{message}; {growth}" if growth else message


def crash_message(suspected: str, confirmed: str) -> str:
    """The message of an individual blamed for both deaths."""
    return (
        f"evaluated alone: {suspected}; evaluated again in a fresh process, that process was "
        f"{confirmed}"
    )


def unblamed_message(causes: list[str]) -> str:
    """The message of an individual stored as failed after its worker died again and again
    while evaluating it, with no evidence that it caused that."""
    distinct = list(dict.fromkeys(causes))
    return (
        f"not evaluated: its worker process died {len(causes)} times while evaluating it "
        f"({'; '.join(distinct)}), with no evidence that the individual caused that (see "
        "crash blame: a signal a model can raise, or its own memory growth)"
    )
