"""Run store: rows per generation, retries overwrite, rollback to the checkpoint."""

from __future__ import annotations

import os
import socket
import threading

import numpy as np
import pytest

from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.loop.runner import Checkpoint
from neuroptimus.storage.runs import hypervolume as hv
from neuroptimus.storage.runs.run_store import RunStore, StoreError, check_writable


def _result(n, k, start=0.0, failed=()):
    status = np.zeros(n, dtype=np.int8)
    status[list(failed)] = 1
    errors = np.arange(n * k, dtype=float).reshape(n, k) + start
    return BatchResult(
        errors=errors,
        total=errors.sum(axis=1),
        status=status,
        message=["boom" if s else "" for s in status],
        seconds=np.full(n, 0.01),
        worker=["host:1"] * n,
    )


def _store(tmp_path):
    return RunStore.create(
        tmp_path / "run.zarr", ["a", "b"], ["MSE"], {"seed": 1, "pareto_fronts": False}
    )


def test_generations_append_and_commit(tmp_path):
    store = _store(tmp_path)
    for generation in range(3):
        points = np.full((4, 2), generation, dtype=float)
        store.write_generation(
            generation, 4 * generation, points, _result(4, 1, 10 - generation), 0.1
        )
        store.commit(Checkpoint(generation + 1, 4 * (generation + 1), b"state", {}))
    reopened = RunStore.open(tmp_path / "run.zarr")
    rows = reopened.evaluations()
    assert rows["parameters"].shape == (12, 2)
    assert rows["generation"].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    generations = reopened.generations()
    assert generations["evaluations"].tolist() == [4, 8, 12]
    assert generations["cumulative_best"].tolist() == [10.0, 9.0, 8.0]
    assert reopened.best()["total"] == 8.0
    assert reopened.checkpoint().algorithm_state == b"state"


def test_retried_generation_overwrites_its_rows(tmp_path):
    store = _store(tmp_path)
    store.write_generation(0, 0, np.zeros((4, 2)), _result(4, 1), 0.1)
    store.commit(Checkpoint(1, 4, b"", {}))
    store.write_generation(1, 4, np.ones((4, 2)), _result(4, 1, 100), 0.1)
    store.write_generation(1, 4, np.full((4, 2), 2.0), _result(4, 1, 50, failed=[2]), 0.1)
    store.commit(Checkpoint(2, 8, b"", {}))
    rows = store.evaluations()
    assert len(rows["total"]) == 8
    assert np.all(rows["parameters"][4:] == 2.0)
    assert rows["status"].tolist() == [0] * 6 + [1, 0]
    assert rows["message"][6] == "boom"
    assert store.generations()["failed"].tolist() == [0, 1]


def test_rollback_drops_uncommitted_rows(tmp_path):
    store = _store(tmp_path)
    store.write_generation(0, 0, np.zeros((4, 2)), _result(4, 1), 0.1)
    store.commit(Checkpoint(1, 4, b"", {}))
    store.write_generation(1, 4, np.ones((4, 2)), _result(4, 1, 50), 0.1)  # crash before commit
    resumed = RunStore.open(tmp_path / "run.zarr", mode="r+")
    resumed.rollback(resumed.checkpoint())
    assert len(resumed.evaluations()["total"]) == 4 and len(resumed.generations()["best"]) == 1
    resumed.write_generation(1, 4, np.full((3, 2), 3.0), _result(3, 1, 20), 0.1)
    resumed.commit(Checkpoint(2, 7, b"", {}))
    resumed.set_attributes(finished="budget used")
    # finished: the arrays (grown in large steps while running) are cut to what is committed
    assert resumed.group["evaluations"]["total"].shape == (7,)
    assert resumed.group["generations"]["best"].shape == (2,)
    generations = resumed.generations()
    assert generations["evaluations"].tolist() == [4, 7]
    assert generations["cumulative_best"].tolist() == [0.0, 0.0]
    assert generations["best"][1] == 20.0
    assert "hypervolume" not in generations  # one component: no fronts unless asked for


def test_a_reader_sees_only_committed_generations(tmp_path):
    store = _store(tmp_path)
    store.write_generation(0, 0, np.zeros((4, 2)), _result(4, 1), 0.1)
    store.commit(Checkpoint(1, 4, b"", {}))
    store.write_generation(1, 4, np.ones((4, 2)), _result(4, 1), 0.1)
    reader = RunStore.open(tmp_path / "run.zarr")
    assert len(reader.evaluations()["total"]) == 4 and len(reader.generations()["time"]) == 1
    assert reader.group["evaluations"]["total"].shape[0] >= 8  # room made in large steps


def test_existing_store_is_not_overwritten(tmp_path):
    _store(tmp_path)
    with pytest.raises(StoreError, match="already exists"):
        _store(tmp_path)


def test_unwritable_path_fails_before_anything(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/neuroptimus-run.zarr"  # not writable even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "run.zarr")
    with pytest.raises(StoreError, match="cannot write the run store"):
        RunStore.create(target, ["a"], ["MSE"], {})


def test_open_rejects_non_stores(tmp_path):
    with pytest.raises(StoreError, match="no run store here"):
        RunStore.open(tmp_path)


def _vectors(rows, status=None):
    rows = np.asarray(rows, dtype=float)
    n = len(rows)
    status = np.zeros(n, dtype=np.int8) if status is None else np.asarray(status, dtype=np.int8)
    return BatchResult(rows, rows.sum(axis=1), status, [""] * n, np.zeros(n), ["w"] * n)


def test_front_and_hypervolume_per_generation(tmp_path):
    store = RunStore.create(
        tmp_path / "mo.zarr", ["a"], ["f", "g"],
        {"weights": [1.0, 0.5], "penalty": 4.0, "pareto_fronts": True},
    )  # fmt: skip
    # Weighted errors: (1, 1.5), (3, 0.5), (3, 1.5) dominated; the failed row is ignored.
    store.write_generation(0, 0, np.zeros((4, 1)), _vectors([[1, 3], [3, 1], [3, 3], [0, 0]],
                                                               [0, 0, 0, 1]), 0.1)  # fmt: skip
    store.commit(Checkpoint(1, 4, b"", {}))
    assert sorted(store.front(0).tolist()) == [0, 1]
    # Reference point (4, 2): boxes 3 × 0.5 and 1 × 1.5 overlap in 1 × 0.5 → 1.5 + 1.5 - 0.5.
    assert store.generations()["hypervolume"][0] == pytest.approx(2.5)
    # Generation 1 brings (2, 1) weighted as (2, 0.5), dominating row 1 = (3, 0.5).
    for _attempt in range(2):  # a retried generation replaces its own front, never adds to it
        store.write_generation(1, 4, np.zeros((2, 1)), _vectors([[2, 1], [5, 5]]), 0.1)
    store.commit(Checkpoint(2, 6, b"", {}))
    assert sorted(store.front().tolist()) == [0, 4]
    assert sorted(store.front(0).tolist()) == [0, 1]
    generations = store.generations()
    assert generations["front_size"].tolist() == [2, 2]
    assert generations["hypervolume"][1] == pytest.approx(2 * 1.5 + 1 * 1.5 - 1 * 1.0)
    store.write_generation(2, 6, np.zeros((1, 1)), _vectors([[0.5, 0.5]]), 0.1)
    assert sorted(RunStore.open(store.path).front().tolist()) == [0, 4]  # not committed yet
    store.rollback(store.checkpoint())  # crash before the commit of generation 2
    store.write_generation(2, 6, np.zeros((1, 1)), _vectors([[2.5, 1.5]]), 0.1)
    store.commit(Checkpoint(3, 7, b"", {}))
    assert sorted(store.front().tolist()) == [0, 4]  # (2.5, 0.75) weighted: dominated by row 4
    assert sorted(store.front(1).tolist()) == [0, 4]
    assert store.generations()["hypervolume_method"].tolist() == [hv.EXACT] * 3


def test_one_writer_at_a_time(tmp_path):
    first, second = _store(tmp_path), RunStore.open(tmp_path / "run.zarr", mode="r+")
    with first.writer_lock():
        holder = (tmp_path / "run.zarr" / "writer.lock").read_text()
        assert f"pid {os.getpid()} on {socket.gethostname()}" in holder
        with pytest.raises(StoreError, match=rf"being written by another run \(pid {os.getpid()}"):
            with second.writer_lock():
                pass
    with second.writer_lock():  # released on exit, also after an error inside
        pass
    with pytest.raises(RuntimeError, match="inside"):
        with first.writer_lock():
            raise RuntimeError("inside")
    with second.writer_lock():
        pass


def test_write_behind_keeps_the_order_and_stops_at_a_failed_write(tmp_path):
    """Rows, then the checkpoint that covers them, in a background thread; a write that fails
    (here: a file where the store needs a folder) is raised at the next call, and no
    checkpoint is written after it."""
    store = _store(tmp_path)
    store.write_behind = True
    store.write_generation(0, 0, np.zeros((4, 2)), _result(4, 1), 0.1)
    store.commit(Checkpoint(1, 4, b"first", {}))
    assert store.checkpoint().algorithm_state == b"first"  # reads wait for the writes
    assert RunStore.open(tmp_path / "run.zarr").committed_generations == 1
    chunks = tmp_path / "run.zarr" / "evaluations" / "total" / "c"
    for path in chunks.iterdir():
        path.unlink()
    chunks.rmdir()
    chunks.write_text("not a folder")  # writing the chunks of total now fails
    store.write_generation(1, 4, np.ones((4, 2)), _result(4, 1), 0.1)  # returns at once
    store.commit(Checkpoint(2, 8, b"second", {}))
    with pytest.raises(StoreError, match="cannot write the run store"):
        store.flush()
    with pytest.raises(StoreError):
        store.write_generation(2, 8, np.ones((4, 2)), _result(4, 1), 0.1)
    reader = RunStore.open(tmp_path / "run.zarr")
    assert reader.committed_generations == 1 and reader.checkpoint().algorithm_state == b"first"


def test_runs_starting_at_once_in_one_folder_all_pass_the_write_check(tmp_path):
    """Each check writes and removes a probe file of its own: with one shared name, a check
    removed another's probe and failed with "No such file or directory"."""
    errors: list[BaseException] = []

    def check_many() -> None:
        try:
            for _ in range(30):
                check_writable(tmp_path)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=check_many) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and list(tmp_path.iterdir()) == []
