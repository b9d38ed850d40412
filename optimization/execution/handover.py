"""Results handed from a worker to the client the moment they exist, so that a worker that
dies after finishing an evaluation (its batch job cancelled, its node lost) loses only what
was still running.

Without this, a task's result waits in the worker's memory until the client fetches it, and
dies with the worker when its job ends first. Here the task sends its results as a Dask event
(plain msgpack data: numbers as float64/int8 bytes, texts as JSON) in a request to the
scheduler, and goes on only once the scheduler has answered: so the event is there ahead of
the message that says the task finished, and the scheduler has passed it on to each client
that subscribed ahead of telling it so. When the evaluator sees a task end (or lost), its
results are already in the client's inbox: nothing is fetched from the worker, and the
hand-over costs one round trip to the scheduler per part.

A chunk of several individuals hands its rows over as they end, once a second at most (see
``evaluation.evaluate_batch``): a long evaluation is handed over on its own when it ends.

A worker process that retires (``retirement``) sends its task's results so far with a notice
of why, in one request the scheduler answers before the process exits: so they reach the
client before the news that the worker is gone.
"""

from __future__ import annotations

import json
import threading
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from distributed import Client, get_worker
from distributed.utils import sync

from neuroptimus.optimization.evaluation.individual import BatchResult

TOPIC = "neuroptimus-results"
HAND_OVER_S = 1.0  # results of shorter evaluations are gathered into one event per second
_ACKNOWLEDGED_S = 60.0  # the longest a hand-over waits for the scheduler's answer

# Each evaluator's inbox by its token; one subscription per client routes every event here.
_inboxes: weakref.WeakValueDictionary[str, Inbox] = weakref.WeakValueDictionary()
_subscribed: weakref.WeakSet[Client] = weakref.WeakSet()


def encode(
    inbox: str,
    task: str,
    first: int,
    result: BatchResult,
    retired: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The event of ``result``, rows ``first``… of task ``task``, for inbox ``inbox``;
    ``retired``: the notice of a retiring worker (``Retired``: worker, label, reason)."""
    rows, components = np.shape(result.errors)
    event = {
        "inbox": inbox,
        "task": task,
        "first": int(first),
        "rows": int(rows),
        "components": int(components),
        "errors": np.ascontiguousarray(result.errors, dtype="<f8").tobytes(),
        "total": np.ascontiguousarray(result.total, dtype="<f8").tobytes(),
        "status": np.ascontiguousarray(result.status, dtype=np.int8).tobytes(),
        "seconds": np.ascontiguousarray(result.seconds, dtype="<f8").tobytes(),
        "messages": json.dumps(list(result.message)),
        "labels": json.dumps(list(result.worker)),  # not "worker": the scheduler sets that
    }
    if retired is not None:
        event["retired"] = json.dumps(dict(retired))
    return event


def decode(message: Any) -> tuple[str, str, int, BatchResult] | None:
    """``(inbox, task, first row, result)`` of an event, or None if it is not one of ours."""
    try:
        rows, components = int(message["rows"]), int(message["components"])
        messages, labels = json.loads(message["messages"]), json.loads(message["labels"])

        def floats(name: str, count: int) -> np.ndarray:
            values = np.frombuffer(message[name], dtype="<f8")
            if len(values) != count:
                raise ValueError(name)
            return values.astype(np.float64)  # a writable copy

        result = BatchResult(
            errors=floats("errors", rows * components).reshape(rows, components),
            total=floats("total", rows),
            status=np.frombuffer(message["status"], dtype=np.int8).copy(),
            message=[str(m) for m in messages],
            seconds=floats("seconds", rows),
            worker=[str(w) for w in labels],
        )
        if not len(result.status) == len(result.message) == len(result.worker) == rows:
            raise ValueError("rows")
        return str(message["inbox"]), str(message["task"]), int(message["first"]), result
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Retired:
    """A worker process that retired on purpose (``retirement``), as its notice says."""

    task: str  # the task it was running
    result: BatchResult  # that task's rows it evaluated, from the first
    worker: str  # worker_deaths.death_key of the process
    label: str  # the process, as results name it (evaluation.worker_label)
    reason: str  # what ruined its model


def retired_notice(message: Any, task: str, result: BatchResult) -> Retired | None:
    """The retirement an event (decoded as ``task``, ``result``) announces, or None."""
    try:
        notice = json.loads(message["retired"])
        return Retired(task, result, *(str(notice[k]) for k in ("worker", "label", "reason")))
    except (KeyError, TypeError, ValueError):
        return None


def hand_over(inbox: str):
    """On a worker, in a task: the function that sends ``(first, result)`` of this task to
    ``inbox`` and returns once the scheduler has it.

    Not through ``Worker.log_event``: from a task's thread that only queues the event for the
    worker's event loop, and the next evaluation (NEURON holds the GIL while it simulates)
    could keep the loop from sending it until that evaluation ended too, so a worker killed
    in between lost a finished result."""
    worker = get_worker()
    task = str(worker.get_current_task())

    def send(first: int, result: BatchResult) -> None:
        event = encode(inbox, task, first, result)
        try:
            sync(worker.loop, worker.scheduler.log_event, topic=TOPIC, msg=event,
                 callback_timeout=_ACKNOWLEDGED_S)  # fmt: skip
        except Exception:  # noqa: BLE001 - the scheduler slow or gone: the stream may still carry it
            worker.log_event(TOPIC, event)  # a duplicate is harmless: parts are keyed by row

    return send


class Inbox:
    """The results handed over to one evaluator: by task key, its parts by first row."""

    def __init__(self, client: Client) -> None:
        self.token = uuid.uuid4().hex
        self._parts: dict[str, dict[int, BatchResult]] = {}
        self._retired: dict[str, Retired] = {}  # by the retired process's death_key
        self._lock = threading.Lock()  # filled on the client's event loop, read by the run
        _inboxes[self.token] = self
        if client not in _subscribed:
            client.subscribe_topic(TOPIC, _route)
            _subscribed.add(client)

    def put(self, task: str, first: int, result: BatchResult) -> None:
        """Keep a part; the first one to arrive stays (the scheduler runs a task again when
        the worker holding its result dies before the client took it: the same results)."""
        with self._lock:
            self._parts.setdefault(task, {}).setdefault(first, result)

    def take(self, task: str) -> dict[int, BatchResult]:
        """The parts of ``task`` handed over so far (forgotten here): first row → result."""
        with self._lock:
            return self._parts.pop(str(task), {})

    def retire(self, retired: Retired) -> None:
        with self._lock:
            self._retired.setdefault(retired.worker, retired)

    def retired(self, worker: str) -> Retired | None:
        """The retirement of the process ``worker`` (a death_key), if it announced one."""
        with self._lock:
            return self._retired.get(worker)

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._retired.clear()


def _route(event: tuple[float, Any]) -> None:
    decoded = decode(event[1])
    if decoded is None:
        return
    inbox = _inboxes.get(decoded[0])
    if inbox is None:
        return  # its evaluator is gone
    retired = retired_notice(event[1], decoded[1], decoded[3])
    if retired is not None:
        inbox.retire(retired)  # its results are the evaluator's to take from there
    else:
        inbox.put(*decoded[1:])


def whole(parts: dict[int, BatchResult], rows: int) -> BatchResult | None:
    """The result of all ``rows`` rows of a task from its parts, or None if some are
    missing."""
    ordered, expected = [], 0
    for first in sorted(parts):
        if first != expected:
            return None
        ordered.append(parts[first])
        expected += len(parts[first].total)
    return BatchResult.concatenate(ordered) if expected == rows and ordered else None


def rows_of(parts: dict[int, BatchResult]) -> dict[int, BatchResult]:
    """Each row the parts hold, alone: row → its one-row result."""
    return {
        first + i: part.take(slice(i, i + 1))
        for first, part in parts.items()
        for i in range(len(part.total))
    }
