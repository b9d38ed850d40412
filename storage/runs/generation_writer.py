"""The writing side of a run store: one generation's rows, statistics and front per call.

It keeps in memory what the next generation needs (the statistics columns, the front table)
so that a generation reads nothing back from disk, and sends all its writes to Zarr at once.
Hypervolumes are computed beside the run (``neuroptimus.storage.runs.hypervolume``) and written
into the statistics of their generation when they arrive — a later generation's write, or
``finish``.
"""

from __future__ import annotations

import math
import time
import weakref
from collections import Counter

import numpy as np
import zarr

from neuroptimus.optimization.evaluation.individual import OK, BatchResult
from neuroptimus.storage.runs import hypervolume as hv
from neuroptimus.storage.runs.columns import Write, chunk_writes, room, write_all
from neuroptimus.storage.runs.fronts import FrontTable, create_front_arrays

# How long finishing a run waits for the hypervolumes still being computed.
FINISH_TIMEOUT_S = 10.0
ROW_CHUNK = 4096
GENERATION_CHUNK = 1024
ROW_COLUMNS = ("parameters", "errors", "total", "generation", "status", "seconds", "worker",
               "message")  # fmt: skip
# statistics per generation: dtype and the value of a slot not written (yet)
GENERATION_COLUMNS = {
    "evaluations": ("i8", 0), "failed": ("i8", 0), "best": ("f8", math.nan),
    "cumulative_best": ("f8", math.nan), "median": ("f8", math.nan), "mean": ("f8", math.nan),
    "worst": ("f8", math.nan), "seconds": ("f8", math.nan),
    "time": ("f8", math.nan),  # when the generation was written (seconds since the epoch)
    "algorithm_seconds": ("f8", math.nan),  # the algorithm's own time: its asks and tells
}  # fmt: skip
FRONT_COLUMNS = {
    "front_size": ("i8", 0), "hypervolume": ("f8", math.nan),
    "hypervolume_error": ("f8", math.nan),  # relative: 0 exact, eps of the FPRAS
    "hypervolume_method": ("i1", hv.NONE),  # index into hypervolume.METHODS
}  # fmt: skip


def create_arrays(group: zarr.Group, d: int, k: int, fronts: bool) -> None:
    """The row-wise and per-generation arrays of a new store (empty)."""
    evaluations = group.create_group("evaluations")
    for name, tail, dtype in [
        ("parameters", (d,), "f8"), ("errors", (k,), "f8"), ("total", (), "f8"),
        ("generation", (), "i4"), ("status", (), "i1"), ("seconds", (), "f8"),
        ("worker", (), str), ("message", (), str),
    ]:  # fmt: skip
        evaluations.create_array(name, shape=(0, *tail), chunks=(ROW_CHUNK, *tail), dtype=dtype)
    generations = group.create_group("generations")
    columns = {**GENERATION_COLUMNS, **(FRONT_COLUMNS if fronts else {})}
    for name, (dtype, fill) in columns.items():
        generations.create_array(
            name, shape=(0,), chunks=(GENERATION_CHUNK,), dtype=dtype, fill_value=fill
        )
    if fronts:
        create_front_arrays(group)


class GenerationWriter:
    """Writes generations of one store; built from the committed state of the store."""

    def __init__(self, group: zarr.Group, generations: int, rows: int) -> None:
        self.group = group
        attrs = group.attrs
        self.weights = np.asarray(attrs["weights"], dtype=float)
        self.fronts = bool(attrs.get("pareto_fronts", "fronts" in group))
        self.seconds: Counter[str] = Counter()  # time spent here, by kind (see ``profile``)
        self.generations_written = 0
        self._rows = {name: group["evaluations"][name] for name in ROW_COLUMNS}
        stats = group["generations"]
        columns = {**GENERATION_COLUMNS, **(FRONT_COLUMNS if self.fronts else {})}
        self._arrays: dict[str, zarr.Array] = {}
        self._columns: dict[str, np.ndarray] = {}
        for name, (dtype, fill) in columns.items():
            if name not in stats:  # a store written by an older version
                shape = stats["evaluations"].shape
                stats.create_array(name, shape=shape, chunks=(GENERATION_CHUNK,), dtype=dtype,
                                   fill_value=fill)  # fmt: skip
            array = stats[name]
            values = np.full(array.shape[0], fill, dtype=dtype)
            values[:generations] = array[:generations]
            self._arrays[name], self._columns[name] = array, values
        self._dirty: set[int] = set()  # generations whose statistics changed since written
        self.table: FrontTable | None = None
        self.service: hv.HypervolumeService | None = None
        self._tokens: dict[int, int] = {}  # generation → the submission its result must match
        if self.fronts:
            self._load_fronts(generations, rows)

    # -- fronts ---------------------------------------------------------------------------
    def _load_fronts(self, generations: int, rows: int) -> None:
        fronts = self.group.require_group("fronts")
        row = fronts["row"][:] if "row" in fronts else np.zeros(0, np.int64)
        needed = np.unique(row[(row >= 0) & (row < rows)])
        weighted = np.zeros((rows, len(self.weights)))
        if len(needed):
            errors = self.group["evaluations"]["errors"]
            weighted[needed] = errors.get_orthogonal_selection((needed, slice(None)))
        self.table = FrontTable.load(self.group, generations, weighted * self.weights)
        if "generation" in fronts:  # the older layout: rewritten as membership intervals
            del self.group["fronts"]
            create_front_arrays(self.group)
        self._front_arrays = {n: self.group["fronts"][n] for n in ("row", "entered", "left")}
        self._on_disk = int(np.count_nonzero(row >= 0))  # entries on disk, committed or not
        settings = dict(self.group.attrs.get("hypervolume", {}))  # budgets (tests shorten them)
        self.finish_timeout_s = settings.pop("finish_timeout_s", FINISH_TIMEOUT_S)
        self.service = hv.HypervolumeService(self.group.attrs["penalty"] * self.weights, **settings)
        weakref.finalize(self, self.service.close)  # a store dropped without finishing
        # Volumes still being computed when the run stopped: computed again now.
        methods = self._columns["hypervolume_method"][:generations]
        for generation in np.flatnonzero(methods == hv.PENDING):
            self._submit(int(generation), self.table.errors[self.table.at(int(generation))])

    def _submit(self, generation: int, front: np.ndarray) -> None:
        token = self._tokens.get(generation, 0) + 1
        self._tokens[generation] = token
        self._set(generation, hypervolume=math.nan, hypervolume_error=math.nan,
                  hypervolume_method=hv.PENDING)  # fmt: skip
        self.service.submit(generation, front, token)

    def _collect(self, volumes: list[hv.Volume]) -> None:
        for volume in volumes:
            if self._tokens.get(volume.generation) != volume.token:
                continue  # a generation retried or rolled back since
            self._set(volume.generation, hypervolume=volume.value,
                      hypervolume_error=volume.error, hypervolume_method=volume.method)  # fmt: skip

    def _front_writes(self, generation: int, offset: int, result: BatchResult) -> list[Write]:
        ok = np.flatnonzero(result.status == OK)
        weighted = result.errors[ok] * self.weights
        changed = self.table.add(generation, offset, offset + ok, weighted)
        self._set(generation, front_size=len(self.table.members()))
        self._submit(generation, self.table.front_errors())
        self._collect(self.service.results())
        return self._table_writes(changed)

    def _table_writes(self, changed: np.ndarray) -> list[Write]:
        """Whole chunks holding the ``changed`` entries, and any entry on disk beyond the
        table (left by an uncommitted generation: reset to fill values)."""
        arrays = self._front_arrays
        for array in arrays.values():
            room(array, max(self.table.size, 1))
        columns = self.table.columns(arrays["row"].shape[0])
        indices = np.union1d(changed, np.arange(self.table.size, self._on_disk))
        self._on_disk = self.table.size
        writes = []
        for name, array in arrays.items():
            writes += chunk_writes(array, columns[name], indices.tolist())
        return writes

    # -- writing --------------------------------------------------------------------------
    def _set(self, generation: int, **values: float) -> None:
        for name, value in values.items():
            self._columns[name][generation] = value
        self._dirty.add(generation)

    def _room_for_generation(self, generation: int) -> None:
        needed = generation + 1
        for name, array in self._arrays.items():
            if array.shape[0] < needed:
                room(array, needed)
                grown = np.full(array.shape[0], array.fill_value, dtype=array.dtype)
                grown[: len(self._columns[name])] = self._columns[name]
                self._columns[name] = grown

    def prepare(
        self,
        generation: int,
        offset: int,
        points: np.ndarray,
        result: BatchResult,
        seconds: float,
        algorithm_seconds: float = math.nan,
    ) -> list[Write]:
        """The writes of one generation's rows (at ``offset``, overwriting from there on),
        statistics and front; the caller sends them (``columns.write_all``)."""
        started = time.perf_counter()
        n = len(points)
        rows = {
            "parameters": points, "errors": result.errors, "total": result.total,
            "generation": np.full(n, generation, dtype=np.int32), "status": result.status,
            "seconds": result.seconds, "worker": np.array(result.worker, dtype=str),
            "message": np.array(result.message, dtype=str),
        }  # fmt: skip
        writes: list[Write] = []
        for name, values in rows.items():
            array = self._rows[name]
            room(array, offset + n)
            if n:
                writes.append((array, slice(offset, offset + n), np.array(values)))
        self._room_for_generation(generation)
        previous = self._columns["cumulative_best"][generation - 1] if generation else np.inf
        totals = result.total
        best = float(totals.min()) if n else math.nan
        self._set(
            generation,
            evaluations=offset + n, failed=int(np.count_nonzero(result.status)), best=best,
            median=float(np.median(totals)) if n else math.nan,
            mean=float(totals.mean()) if n else math.nan,
            worst=float(totals.max()) if n else math.nan, seconds=seconds,
            cumulative_best=float(np.nanmin([previous, best])), time=time.time(),
            algorithm_seconds=algorithm_seconds,
        )  # fmt: skip
        if self.fronts:
            fronts_started = time.perf_counter()
            writes += self._front_writes(generation, offset, result)
            self.seconds["fronts"] += time.perf_counter() - fronts_started
        writes += self._statistics_writes()
        self.generations_written += 1
        self.seconds["prepare"] += time.perf_counter() - started
        return writes

    def _statistics_writes(self) -> list[Write]:
        writes = []
        for name, array in self._arrays.items():
            writes += chunk_writes(array, self._columns[name], self._dirty)
        self._dirty.clear()
        return writes

    def finish(self) -> None:
        """Wait for the hypervolumes still being computed (at most ``finish_timeout_s``),
        write them, and stop the helper. A volume not done by then stays ``pending`` (a
        resume of the finished run computes it)."""
        if self.service is None:
            return
        started = time.perf_counter()
        self._collect(self.service.drain(self.finish_timeout_s))
        self.service.close()
        write_all(self._statistics_writes())
        self.seconds["fronts_finish"] += time.perf_counter() - started

    def close(self) -> None:
        if self.service is not None:
            self.service.close()

    def rollback_writes(self) -> None:
        """After loading: the front table in full (entries of uncommitted generations reset)."""
        if self.fronts:
            everything = np.arange(self.table.size)
            write_all(self._table_writes(everything) + self._statistics_writes())

    def profile(self) -> dict[str, float]:
        """Seconds spent preparing generations (on the run's critical path; ``fronts`` is
        part of it), finishing fronts, and computing hypervolumes (beside the run)."""
        figures = {f"{kind}_seconds": value for kind, value in self.seconds.items()}
        figures["generations_written"] = self.generations_written
        if self.service is not None:
            figures["hypervolume_cpu_seconds"] = self.service.cpu_seconds
        return figures
