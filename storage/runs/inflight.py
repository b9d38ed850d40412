"""Evaluations of the generations not committed yet, streamed beside the run store.

A generation's rows enter the Zarr arrays together with its statistics and checkpoint; until
then every result is appended here as it arrives (one file per generation under ``inflight/``),
so that the resume of a killed run takes them instead of simulating them again. The resumed
algorithm asks the same points (it restarts from its checkpoint), so a result is found by its
generation and the exact bytes of its parameter vector. The Zarr arrays and the committed
generations are never touched from here.

Results are buffered and written by a background thread at most every ``flush_s`` seconds (or
at ``flush_rows`` rows): a fast model pays a dictionary insert per result on its critical path.

Record: magic (4 bytes), payload length (4, little-endian), CRC-32 of the payload (4), payload
(pickle of ``(generation, values (m×d float64), BatchResult)``). A reader stops at the first
short or corrupt record (a write cut by the kill); the writer cuts the file there first.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np

from neuroptimus.optimization import pickles
from neuroptimus.optimization.evaluation.individual import BatchResult

_HEADER = struct.Struct("<4sII")
_MAGIC = b"NOIF"
_NAME = re.compile(r"g(\d{8})\.bin")
FLUSH_S = 0.25
FLUSH_ROWS = 256


def key(values: np.ndarray) -> bytes:
    """The exact bytes of one parameter vector (real units)."""
    return np.ascontiguousarray(values, dtype=np.float64).tobytes()


def read_records(path: Path) -> tuple[list[tuple[int, np.ndarray, BatchResult]], int]:
    """The whole records at the start of ``path`` and their length in bytes (a torn or
    corrupt record and everything after it are left out)."""
    data = path.read_bytes()
    records, offset = [], 0
    while offset + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, offset)
        payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
        if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            break
        try:
            records.append(pickles.loads(payload))
        except Exception:  # a record that checks out but does not load: treated as torn
            break
        offset += _HEADER.size + length
    return records, offset


def _encode(generation: int, values: np.ndarray, result: BatchResult) -> bytes:
    payload = pickle.dumps((generation, values, result), protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload


class InflightLog:
    """Streamed results of generations ``first_generation`` on: written behind, looked up by
    ``(generation, parameter bytes)``."""

    def __init__(
        self,
        folder: Path,
        first_generation: int,
        flush_s: float | None = None,
        flush_rows: int | None = None,
    ) -> None:
        self.folder = folder
        self.flush_s = FLUSH_S if flush_s is None else flush_s
        self.flush_rows = FLUSH_ROWS if flush_rows is None else flush_rows
        self._floor = first_generation  # generations below it are committed: forgotten
        # (generation, parameter bytes) → (a batch's result, the row in it)
        self._known: dict[tuple[int, bytes], tuple[BatchResult, int]] = {}
        self._buffer: list[tuple[int, np.ndarray, BatchResult]] = []
        self._buffered_rows = 0
        self._lock = threading.Condition()  # the buffer, the known results, the floor
        self._files = threading.Lock()  # writes and deletions of the files
        self._thread: threading.Thread | None = None
        self._closing = False
        self._failed: BaseException | None = None
        self.seconds = 0.0  # spent writing, in the background
        self.loaded = 0  # results found on disk when opened
        self._load()

    def _path(self, generation: int) -> Path:
        return self.folder / f"g{generation:08d}.bin"

    def _generations(self) -> dict[int, Path]:
        if not self.folder.is_dir():
            return {}
        found = (_NAME.fullmatch(p.name) for p in self.folder.iterdir())
        return {int(m.group(1)): self.folder / m.group(0) for m in found if m}

    def _load(self) -> None:
        for generation, path in sorted(self._generations().items()):
            if generation < self._floor:
                path.unlink(missing_ok=True)  # committed before the kill: obsolete
                continue
            records, length = read_records(path)
            if length < path.stat().st_size:
                os.truncate(path, length)  # a torn last record: later appends go after it
            for record in records:
                self._remember(*record)
                self.loaded += len(record[1])

    def _remember(self, generation: int, values: np.ndarray, result: BatchResult) -> None:
        for row, vector in enumerate(values):
            self._known[generation, key(vector)] = (result, row)

    # -- the run's side ---------------------------------------------------------------------
    def add(self, generation: int, values: np.ndarray, result: BatchResult) -> None:
        """Keep the results of ``values`` (real units); written to disk shortly."""
        if self._failed is not None:
            raise self._failed
        values = np.array(values, dtype=np.float64)
        with self._lock:
            if generation < self._floor:
                return
            self._remember(generation, values, result)
            self._buffer.append((generation, values, result))
            self._buffered_rows += len(values)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="inflight-writer", daemon=True
                )
                self._thread.start()
            if self._buffered_rows >= self.flush_rows:  # else the writer's next round
                self._lock.notify_all()

    def lookup(self, generation: int, values: np.ndarray) -> list[BatchResult | None]:
        """For each row of ``values``: its streamed one-row result, or None."""
        found: list[BatchResult | None] = []
        with self._lock:
            if not self._known:  # an uninterrupted run: nothing to look for
                return [None] * len(values)
            hits = [self._known.get((generation, key(vector))) for vector in values]
        for hit in hits:
            found.append(None if hit is None else hit[0].take(slice(hit[1], hit[1] + 1)))
        return found

    def commit(self, generations: int) -> None:
        """Generations below ``generations`` are committed to the store: forget their
        results and delete their files (after the checkpoint that covers them)."""
        with self._lock:
            self._floor = max(self._floor, generations)
            self._known = {k: v for k, v in self._known.items() if k[0] >= self._floor}
            self._buffer = [r for r in self._buffer if r[0] >= self._floor]
            self._buffered_rows = sum(len(r[1]) for r in self._buffer)
        with self._files:
            for generation, path in self._generations().items():
                if generation < generations:
                    path.unlink(missing_ok=True)
            if self.folder.is_dir() and not any(self.folder.iterdir()):
                self.folder.rmdir()

    def flush(self) -> None:
        """Write what is buffered now (in this thread)."""
        with self._lock:
            batch, self._buffer, self._buffered_rows = self._buffer, [], 0
        self._write(batch)
        if self._failed is not None:
            raise self._failed

    def close(self) -> None:
        """Write what is buffered and stop the writer thread."""
        with self._lock:
            self._closing = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._thread = None
        self.flush()

    # -- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        """Every ``flush_s`` (sooner at ``flush_rows`` rows), write what arrived meanwhile:
        one write per batch, and no wake-up call on the run's path."""
        while True:
            with self._lock:
                self._lock.wait_for(
                    lambda: self._buffered_rows >= self.flush_rows or self._closing,
                    timeout=self.flush_s,
                )
                if self._closing:
                    return  # close() writes the rest
                batch, self._buffer, self._buffered_rows = self._buffer, [], 0
            try:
                self._write(batch)
            except BaseException as error:  # raised to the run at its next add or flush
                self._failed = error
                return

    def _write(self, batch: list[tuple[int, np.ndarray, BatchResult]]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        by_generation: dict[int, list[tuple[np.ndarray, BatchResult]]] = {}
        for generation, values, result in batch:
            by_generation.setdefault(generation, []).append((values, result))
        with self._files:
            for generation, parts in by_generation.items():
                if generation < self._floor:
                    continue  # committed meanwhile
                values = np.concatenate([v for v, _ in parts])
                record = _encode(generation, values, BatchResult.concatenate([r for _, r in parts]))
                self.folder.mkdir(exist_ok=True)
                # No fsync: what was written survives a kill of this process, and a record
                # an OS crash leaves half on disk fails its CRC and is evaluated again.
                with open(self._path(generation), "ab") as handle:  # one record per batch
                    handle.write(record)
        self.seconds += time.perf_counter() - started
