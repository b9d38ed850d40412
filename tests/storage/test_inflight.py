"""The in-flight log of streamed results: read back bit for bit, torn or corrupt tails ignored
(and cut, so later appends are read), committed generations forgotten and deleted."""

from __future__ import annotations

import time

import numpy as np

from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.storage.runs.inflight import InflightLog, read_records


def _result(values: np.ndarray) -> BatchResult:
    n = len(values)
    errors = np.sin(values * 7.1)[:, [0, 1, 0]]
    status = np.zeros(n, np.int8)
    status[-1] = 3  # a timeout among them: statuses and messages come back too
    return BatchResult(errors, errors.sum(axis=1) / 3, status, [f"m{i}" for i in range(n)],
                       values[:, 0] * 2, ["host:1"] * n)  # fmt: skip


def _same(a: BatchResult, b: BatchResult) -> None:
    assert a.errors.tobytes() == b.errors.tobytes()
    assert a.total.tobytes() == b.total.tobytes()
    assert a.status.tobytes() == b.status.tobytes()
    assert (a.message, a.worker) == (b.message, b.worker)
    assert a.seconds.tobytes() == b.seconds.tobytes()


def _batches(seed: int, count: int, rows: int = 2) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random((rows, 2)) / 3 for _ in range(count)]


def _write(folder, generation: int, batches: list[np.ndarray]) -> None:
    log = InflightLog(folder, 0)
    for values in batches:
        log.add(generation, values, _result(values))
        log.flush()  # one record per batch
    log.close()


def test_streamed_results_come_back_bit_for_bit(tmp_path):
    folder = tmp_path / "inflight"
    batches = _batches(1, 3)
    _write(folder, 4, batches)
    log = InflightLog(folder, 4)
    assert log.loaded == 6
    for values in batches:
        found = log.lookup(4, values)
        expected = _result(values)
        for row, part in enumerate(found):
            _same(part, expected.take(slice(row, row + 1)))
        assert log.lookup(5, values) == [None, None]  # another generation: not the same point
    one_ulp_away = np.nextafter(batches[0], 1.0)  # found by the exact bytes only
    assert log.lookup(4, one_ulp_away) == [None, None]


def test_a_torn_last_record_is_ignored_and_cut_before_the_next_append(tmp_path):
    folder = tmp_path / "inflight"
    batches = _batches(2, 3)
    _write(folder, 0, batches)
    path = folder / "g00000000.bin"
    whole = path.stat().st_size
    records, length = read_records(path)
    assert len(records) == 3 and length == whole
    with open(path, "r+b") as handle:  # the kill came while the last record was written
        handle.truncate(whole - 5)

    log = InflightLog(folder, 0)
    assert log.loaded == 4
    assert None not in log.lookup(0, batches[1])
    assert log.lookup(0, batches[2]) == [None, None]  # evaluated again on resume
    cut = path.stat().st_size
    assert cut == read_records(path)[1] < whole - 5  # the torn bytes are gone
    later = _batches(3, 1)[0]
    log.add(0, later, _result(later))
    log.close()
    assert [len(r[1]) for r in read_records(path)[0]] == [2, 2, 2]
    assert None not in InflightLog(folder, 0).lookup(0, later)


def test_a_corrupt_record_ends_what_is_trusted(tmp_path):
    folder = tmp_path / "inflight"
    batches = _batches(4, 3)
    _write(folder, 0, batches)
    path = folder / "g00000000.bin"
    data = bytearray(path.read_bytes())
    second = read_records(path)[1] // 3 + 40  # inside the second record's payload (same sizes)
    data[second] ^= 0xFF
    path.write_bytes(bytes(data))
    log = InflightLog(folder, 0)
    assert log.loaded == 2
    assert None not in log.lookup(0, batches[0])
    assert log.lookup(0, batches[1]) == log.lookup(0, batches[2]) == [None, None]


def test_committed_generations_are_forgotten_and_their_files_deleted(tmp_path):
    folder = tmp_path / "inflight"
    first, second = _batches(5, 2)
    log = InflightLog(folder, 0)
    log.add(0, first, _result(first))
    log.add(1, second, _result(second))
    log.flush()
    assert sorted(p.name for p in folder.iterdir()) == ["g00000000.bin", "g00000001.bin"]
    log.commit(1)
    assert log.lookup(0, first) == [None, None]
    assert None not in log.lookup(1, second)
    assert [p.name for p in folder.iterdir()] == ["g00000001.bin"]
    log.add(0, first, _result(first))  # a late result of a committed generation: dropped
    log.close()
    assert [p.name for p in folder.iterdir()] == ["g00000001.bin"]
    # opened after a kill between the checkpoint and the deletion: obsolete files go
    reopened = InflightLog(folder, 2)
    assert reopened.loaded == 0 and not any(folder.iterdir())
    reopened.commit(2)
    assert not folder.exists()


def test_results_are_written_behind_in_batches(tmp_path):
    """Without a flush, the writer thread writes what arrived within ``flush_s`` together."""
    folder = tmp_path / "inflight"
    log = InflightLog(folder, 0, flush_s=1.0, flush_rows=1000)
    path = folder / "g00000000.bin"
    for batch in range(3):  # the writer thread wakes up again for each burst of results
        for values in _batches(6 + batch, 20, rows=1):
            log.add(0, values, _result(values))
        if batch == 0:
            assert not folder.exists()  # nothing written on the caller's path
        deadline = time.monotonic() + 30
        while _rows(path) < 20 * (batch + 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        written = read_records(path)[0]  # by the writer thread, without a flush or close
        assert _rows(path) == 20 * (batch + 1) and len(written) < 5 * (batch + 1)
    log.close()
    assert InflightLog(folder, 0).loaded == 60


def _rows(path) -> int:
    return sum(len(r[1]) for r in read_records(path)[0]) if path.exists() else 0
