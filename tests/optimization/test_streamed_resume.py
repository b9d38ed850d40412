"""Results streamed into the store as they arrive are taken, not evaluated again, when a run
stopped in the middle of a generation is resumed — for a batch algorithm and for a serial one
with several ask/tell rounds per generation; a torn last record costs only its own rows.

The run is stopped in this process (an exception out of the evaluator, the store left as it
was, a new store object opened on its folder); ``tests/flows/test_streaming_resume.py`` does
it with ``kill -9`` through the command line.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_runner import _evaluate, _problem_with

from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.storage.runs.create import create_run_store
from neuroptimus.storage.runs.inflight import read_records
from neuroptimus.storage.runs.run_store import RunStore


class Killed(BaseException):
    """The process dies: nothing after it runs."""


class Streaming:
    """An evaluator that hands over each individual's result as it is computed, records every
    point it evaluates, and dies before its ``kill_at``-th evaluation; ``flush`` (called after
    every second result) writes the streamed results out, a record of one or two rows."""

    streams = True

    def __init__(self, kill_at: int | None = None, flush=None) -> None:
        self.kill_at, self.flush = kill_at, flush
        self.evaluated: list[bytes] = []

    def __call__(self, values, on_result=None):
        parts = []
        for i, row in enumerate(values):
            if len(self.evaluated) == self.kill_at:
                raise Killed
            self.evaluated.append(row.tobytes())
            part = _evaluate(row[None])
            if on_result is not None:
                on_result(np.array([i]), part)
            if self.flush and len(self.evaluated) % 2 == 0:
                self.flush()
            parts.append(part)
        return BatchResult.concatenate(parts)


CASES = [
    ("cmaes", 6, {}, 15),  # the middle of generation 2 (of 6 points each)
    ("pygmo-de", 6, {"islands": 2}, 21),  # the second round of generation 1 (12, then 3 × 2)
    ("cma-lq", 6, {"popsize": 12}, 15),  # generation 2: batches of 6 of 12 candidates each
    ("optuna-tpe", 6, {}, 15),  # its state: the sampler and a journal of the told batches
]


def _problem(algorithm, population, settings):
    return _problem_with(algorithm, population, 6, settings)


@pytest.mark.parametrize("torn", [False, True])
@pytest.mark.parametrize(("algorithm", "population", "settings", "kill_at"), CASES)
def test_streamed_results_are_taken_on_resume(
    tmp_path, algorithm, population, settings, kill_at, torn
):
    reference = create_run_store(_problem(algorithm, population, settings), tmp_path / "ref.zarr")
    run_to_end(OptimizationRun(_problem(algorithm, population, settings), reference), Streaming())

    path = tmp_path / "run.zarr"
    store = create_run_store(_problem(algorithm, population, settings), path)
    run = OptimizationRun(_problem(algorithm, population, settings), store)
    killed = Streaming(kill_at, flush=store._inflight.flush)
    with pytest.raises(Killed):
        run_to_end(run, killed)
    store._inflight.close()  # what the writer thread had written before the kill
    run.algorithm.close()
    committed = store.checkpoint()
    inflight = sorted((path / "inflight").iterdir())
    records = [r for p in inflight for r in read_records(p)[0]]
    streamed = {row.tobytes() for _, values, _ in records for row in values}
    assert streamed and records[-1][0] == committed.generation  # killed mid-generation
    assert len(streamed) == kill_at - committed.evaluations
    lost = 0
    if torn:  # the kill came while the last record was written
        last = inflight[-1]
        with open(last, "r+b") as handle:
            handle.truncate(last.stat().st_size - 3)
        lost = len(records[-1][1])

    resumed_store = RunStore.open(path, mode="r+")
    resumed = OptimizationRun(_problem(algorithm, population, settings), resumed_store)
    assert resumed.generation == committed.generation
    again = Streaming()
    run_to_end(resumed, again)

    rows = reference.evaluations()
    assert len(killed.evaluated) + len(again.evaluated) == len(rows["total"]) + lost
    repeated = streamed & set(again.evaluated)
    assert len(repeated) == lost  # only the torn record's rows are evaluated again
    assert resumed.reused == len(streamed) - lost
    ours = resumed_store.evaluations()
    for name in ("parameters", "errors", "total", "generation", "status"):
        assert ours[name].tobytes() == rows[name].tobytes(), name
    for name in ("best", "cumulative_best", "evaluations", "failed", "median"):
        assert np.array_equal(resumed_store.generations()[name], reference.generations()[name])
    assert not (path / "inflight").exists()  # every generation committed: nothing left over


def test_progress_is_reported_with_each_result(tmp_path):
    """The progress bar's feed: the evaluations done and the best total, per result."""
    problem = _problem("cmaes", 6, {})
    store = create_run_store(problem, tmp_path / "run.zarr")
    run = OptimizationRun(problem, store)
    seen = []
    run.on_results = lambda done, best: seen.append((done, best))
    run_to_end(run, Streaming())
    totals = store.evaluations()["total"]
    assert [done for done, _ in seen] == list(range(1, len(totals) + 1)) and len(totals) == 36
    assert [best for _, best in seen] == list(np.minimum.accumulate(totals))
