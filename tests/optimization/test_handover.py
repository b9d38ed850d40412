"""The event a worker hands its results over in: plain data, read back bit for bit, and
anything else ignored (the evaluator then fetches the task's result from the worker)."""

from __future__ import annotations

import numpy as np

from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.execution.handover import (
    decode,
    encode,
    retired_notice,
    rows_of,
    whole,
)


def _result(rows: int, start: float = 0.0) -> BatchResult:
    errors = np.array([[start + i, -0.0, 5e-324, 1 / 3] for i in range(rows)])
    return BatchResult(
        errors=errors,
        total=errors.sum(axis=1),
        status=np.array([0, 3][:rows] + [1] * max(0, rows - 2), dtype=np.int8),
        message=["", "timed out after 3 s: «ünïcode»", "x"][:rows],
        seconds=np.linspace(0.1, 0.2, rows),
        worker=[f"node:{100 + i}/slurm-7" for i in range(rows)],
    )


def test_a_result_comes_back_bit_for_bit():
    result = _result(3)
    inbox, task, first, back = decode(encode("inbox", "task-1", 4, result))
    assert (inbox, task, first) == ("inbox", "task-1", 4)
    for name in ("errors", "total", "seconds", "status"):
        mine, theirs = getattr(result, name), getattr(back, name)
        assert mine.dtype == theirs.dtype and mine.tobytes() == theirs.tobytes(), name
    assert back.message == result.message and back.worker == result.worker
    back.total[0] = 1.0  # writable, like any result


def test_messages_that_are_not_results_are_ignored():
    message = encode("inbox", "task-1", 0, _result(2))
    assert decode({"text": "another topic's event"}) is None
    assert decode("not a mapping") is None
    assert decode({**message, "total": message["total"][:-8]}) is None  # a row short
    assert decode({**message, "labels": '["only one"]'}) is None
    assert decode({**message, "messages": "not json"}) is None


def test_parts_make_a_whole_only_when_every_row_is_there():
    parts = {0: _result(2), 2: _result(1, 10.0)}
    assert whole(parts, 3).total.tolist() == [*_result(2).total, *_result(1, 10.0).total]
    assert whole({0: _result(2)}, 3) is None
    assert whole({2: _result(1)}, 3) is None
    assert sorted(rows_of(parts)) == [0, 1, 2]
    assert rows_of(parts)[2].total.tolist() == _result(1, 10.0).total.tolist()


def test_a_retirement_notice_comes_with_the_results():
    notice = {"worker": "tcp://nanny:1/42", "label": "node:42", "reason": "deleted section dend"}
    event = encode("inbox", "task-1", 0, _result(2), notice)
    inbox, task, first, result = decode(event)
    retired = retired_notice(event, task, result)
    assert (retired.task, retired.worker, retired.label) == ("task-1", *list(notice.values())[:2])
    assert retired.reason == "deleted section dend" and retired.result is result
    assert retired_notice(encode("inbox", "task-1", 0, _result(2)), task, result) is None
