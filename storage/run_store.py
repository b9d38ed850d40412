"""RunStore: one Zarr group per run, the truth on disk.

Layout::

    evaluations/{parameters (n×d), errors (n×k), total, generation, status, seconds,
                 worker, message}
    generations/{evaluations, best, cumulative_best, median, mean, worst, failed, seconds,
                 front_size, hypervolume}
    fronts/{row, generation}   rows of the non-dominated front of all evaluations so far
    best/{parameters, errors, total, trace, time}   target/{trace, time}
    checkpoint.pkl   (algorithm state after the last committed generation)
    journal.bin      (append-only records of that state, e.g. told batches; see storage.journal)

Rows are written once per generation at the offset of that generation, so a retried or resumed
generation overwrites its own rows and never duplicates them. ``committed_*`` attributes say
how much a reader may trust while a writer is appending; the checkpoint is the writer's truth.
"""

from __future__ import annotations

import functools
import os
import pickle
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from optimization.evaluation import OK, STATUSES, BatchResult
from optimization.locks import LockBusy, LockError, exclusive_lock
from optimization.pareto import hypervolume, non_dominated
from optimization.runner import Checkpoint
from storage import journal as journals

_ROW_CHUNK = 4096
_GENERATION_FIELDS = ("best", "cumulative_best", "median", "mean", "worst")
warnings.filterwarnings("ignore", message=".*StringDType.*")
warnings.filterwarnings("ignore", category=UserWarning, module="zarr.*")


class StoreError(RuntimeError):
    """The store is missing, unwritable or not a Neuroptimus run."""


def _write_error(path: Path, error: OSError) -> StoreError:
    return StoreError(f"cannot write the run store at {path}: {error.strerror or error}")


def _writes(method: Callable) -> Callable:
    """A disk error while writing (full disk, lost permissions) becomes a StoreError naming
    the store; what was committed before stays readable (see ``commit``)."""

    @functools.wraps(method)
    def writing(self: RunStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OSError as error:
            raise _write_error(self.path, error) from error

    return writing


class RunStore:
    """Append-only store of every evaluated individual of one run."""

    def __init__(self, path: Path, group: zarr.Group) -> None:
        self.path = path
        self.group = group
        self._arrays: dict[str, zarr.Array] = {}

    def _array(self, path: str) -> zarr.Array:
        """A member array of the row-wise groups, opened once: a group lookup reads the
        array's metadata from disk, and a resize updates the open handle in place."""
        if path not in self._arrays:
            self._arrays[path] = self.group[path]
        return self._arrays[path]

    def _set_length(self, path: str, length: int) -> zarr.Array:
        array = self._array(path)
        if array.shape[0] != length:  # a resize rewrites the metadata file
            array.resize((length,) + array.shape[1:])
        return array

    # -- creation and opening -------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        parameter_names: list[str],
        component_names: list[str],
        attributes: dict[str, Any],
    ) -> RunStore:
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise StoreError(f"{path} already exists; choose a new --store or resume it")
        check_writable(path)
        group = zarr.open_group(path, mode="w")
        d, k = len(parameter_names), len(component_names)
        evaluations = group.create_group("evaluations")
        for name, shape, dtype in [
            ("parameters", (0, d), "f8"),
            ("errors", (0, k), "f8"),
            ("total", (0,), "f8"),
            ("generation", (0,), "i4"),
            ("status", (0,), "i1"),
            ("seconds", (0,), "f8"),
            ("worker", (0,), str),
            ("message", (0,), str),
        ]:
            chunks = (_ROW_CHUNK,) + shape[1:]
            evaluations.create_array(name, shape=shape, chunks=chunks, dtype=dtype)
        generations = group.create_group("generations")
        for name in ("evaluations", "failed", "front_size"):
            generations.create_array(name, shape=(0,), chunks=(1024,), dtype="i8")
        for name in (*_GENERATION_FIELDS, "seconds", "hypervolume"):
            generations.create_array(name, shape=(0,), chunks=(1024,), dtype="f8")
        fronts = group.create_group("fronts")
        fronts.create_array("row", shape=(0,), chunks=(_ROW_CHUNK,), dtype="i8")
        fronts.create_array("generation", shape=(0,), chunks=(_ROW_CHUNK,), dtype="i4")
        group.attrs.update(
            {
                "weights": [1.0] * k,  # of the error components (total = errors @ weights)
                "penalty": 100.0,  # the error of a failed evaluation, in every component
                **attributes,
                "parameter_names": list(parameter_names),
                "component_names": list(component_names),
                "status_names": list(STATUSES),
                "committed_generations": 0,
                "committed_evaluations": 0,
                "finished": None,
            }
        )
        return cls(path, group)

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> RunStore:
        """Open a run store; ``mode="r+"`` (to continue a run) first checks that the disk
        takes writes, so a full disk fails before any evaluation."""
        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise StoreError(f"{path}: no run store here (expected a Zarr group)")
        if mode != "r":
            check_writable(path)
        group = zarr.open_group(path, mode=mode)
        if "parameter_names" not in group.attrs:
            raise StoreError(f"{path}: a Zarr group, but not a Neuroptimus run store")
        return cls(path, group)

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Be the only run writing this store: a second one (a resume started while the run
        still goes on) fails at once instead of interleaving its rows. The lock dies with its
        process, so the store of a killed run can be resumed (where the file system has no
        flock, see optimization.locks: a lock file, taken over when its holder died on this
        host)."""
        with ExitStack() as stack:
            try:
                stack.enter_context(exclusive_lock(self.path / "writer.lock"))
            except LockBusy as busy:
                raise StoreError(
                    f"{self.path} is being written by another run ({busy.holder}); "
                    f"wait for it to end, or stop it before resuming{busy.hint}"
                ) from None
            except LockError as error:
                raise StoreError(f"cannot lock the run store: {error}") from None
            yield

    # -- attributes -----------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    @property
    def parameter_names(self) -> list[str]:
        return list(self.group.attrs["parameter_names"])

    @property
    def component_names(self) -> list[str]:
        return list(self.group.attrs["component_names"])

    # -- writing --------------------------------------------------------------------------
    @_writes
    def write_generation(
        self, generation: int, offset: int, points: np.ndarray, result: BatchResult, seconds: float
    ) -> None:
        """Write one generation's rows at ``offset`` (overwriting anything from there on)."""
        n = len(points)
        rows = {
            "parameters": points,
            "errors": result.errors,
            "total": result.total,
            "generation": np.full(n, generation, dtype=np.int32),
            "status": result.status,
            "seconds": result.seconds,
            "worker": np.array(result.worker, dtype=str),
            "message": np.array(result.message, dtype=str),
        }
        for name, values in rows.items():
            array = self._set_length(f"evaluations/{name}", offset + n)
            if n:
                array[offset : offset + n] = values
        previous = self._generation_column("cumulative_best", generation)
        totals = result.total
        stats = {
            "evaluations": offset + n,
            "failed": int(np.count_nonzero(result.status)),
            "best": float(totals.min()) if n else np.nan,
            "median": float(np.median(totals)) if n else np.nan,
            "mean": float(totals.mean()) if n else np.nan,
            "worst": float(totals.max()) if n else np.nan,
            "seconds": seconds,
        }
        stats["cumulative_best"] = float(np.nanmin([previous, stats["best"]]))
        front = self._update_front(generation, offset, result)
        stats["front_size"] = len(front)
        stats["hypervolume"] = self._hypervolume(front)
        for name, value in stats.items():
            self._set_length(f"generations/{name}", generation + 1)[generation] = value

    def _weighted_errors(self, rows: np.ndarray) -> np.ndarray:
        return self._array("evaluations/errors")[rows] * np.asarray(self.group.attrs["weights"])

    def _update_front(self, generation: int, offset: int, result: BatchResult) -> np.ndarray:
        """Rows of the non-dominated front (weighted error vectors of successful evaluations)
        after ``generation``: the previous front plus this generation's rows, filtered."""
        rows, generations = self._array("fronts/row")[:], self._array("fronts/generation")[:]
        kept = int(np.count_nonzero(generations < generation))
        rows, generations = rows[:kept], generations[:kept]  # a retried generation: replaced
        previous = rows[generations == generation - 1]
        new = offset + np.flatnonzero(result.status == OK)
        candidates = np.concatenate([previous, new]).astype(np.int64)
        if len(candidates):
            candidates = candidates[non_dominated(self._weighted_errors(candidates))]
        for name, values in (
            ("row", candidates),
            ("generation", np.full(len(candidates), generation)),
        ):
            array = self._set_length(f"fronts/{name}", kept + len(candidates))
            if len(candidates):
                array[kept:] = values
        return candidates

    def _hypervolume(self, front: np.ndarray) -> float:
        """Hypervolume of the front's weighted errors; the reference point is the penalty in
        every component (what a failed evaluation scores), the same for every generation."""
        if len(front) == 0:
            return 0.0
        weights = np.asarray(self.group.attrs["weights"])
        return hypervolume(self._weighted_errors(front), self.group.attrs["penalty"] * weights)

    def front(self, generation: int | None = None) -> np.ndarray:
        """Evaluation rows on the non-dominated front after ``generation`` (default: last)."""
        if generation is None:
            generation = self.committed_generations - 1
        fronts = self.group["fronts"]
        return fronts["row"][:][fronts["generation"][:] == generation]

    def _generation_column(self, name: str, before: int) -> float:
        if before == 0:
            return np.inf
        return float(self._array(f"generations/{name}")[before - 1])

    @_writes
    def commit(self, checkpoint: Checkpoint, journal: Sequence[Any] = ()) -> None:
        """Make the generation durable: the journal's new records, then the checkpoint (the
        truth, holding the journal's committed length), then reader hints."""
        previous = self.checkpoint()
        at = previous.journal_bytes if previous else 0
        checkpoint.journal_bytes = (
            journals.append(self.path / "journal.bin", journal, at) if journal else at
        )
        path = self.path / "checkpoint.pkl"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            pickle.dump(checkpoint, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        self.group.attrs.update(
            {
                "committed_generations": checkpoint.generation,
                "committed_evaluations": checkpoint.evaluations,
            }
        )

    def checkpoint(self) -> Checkpoint | None:
        path = self.path / "checkpoint.pkl"
        if not path.exists():
            return None
        with open(path, "rb") as handle:
            return pickle.load(handle)

    def journal(self, checkpoint: Checkpoint | None) -> list[Any]:
        """The journal records the checkpoint's algorithm state continues."""
        length = checkpoint.journal_bytes if checkpoint else 0
        return journals.read(self.path / "journal.bin", length)

    @_writes
    def rollback(self, checkpoint: Checkpoint | None) -> None:
        """Drop rows written after the checkpoint (a generation cut short by a crash)."""
        generations = checkpoint.generation if checkpoint else 0
        rows = checkpoint.evaluations if checkpoint else 0
        journals.truncate(self.path / "journal.bin", checkpoint.journal_bytes if checkpoint else 0)
        self._arrays.clear()  # resized below through other handles
        for array in self.group["evaluations"].array_values():
            array.resize((rows,) + array.shape[1:])
        for array in self.group["generations"].array_values():
            array.resize((generations,))
        fronts = self.group["fronts"]
        kept = int(np.count_nonzero(fronts["generation"][:] < generations))
        for array in fronts.array_values():
            array.resize((kept,))
        self.group.attrs.update(
            {"committed_generations": generations, "committed_evaluations": rows}
        )

    @_writes
    def write_arrays(self, group: str, arrays: dict[str, np.ndarray]) -> None:
        """Replace small arrays such as ``best/*`` or ``target/*``."""
        parent = self.group.require_group(group)
        for name, values in arrays.items():
            values = np.asarray(values)
            parent.create_array(name, shape=values.shape, dtype=values.dtype, overwrite=True)
            parent[name][...] = values

    @_writes
    def set_attributes(self, **values: Any) -> None:
        self.group.attrs.update(values)

    # -- reading --------------------------------------------------------------------------
    @property
    def committed_evaluations(self) -> int:
        return int(self.group.attrs["committed_evaluations"])

    @property
    def committed_generations(self) -> int:
        return int(self.group.attrs["committed_generations"])

    def evaluations(self) -> dict[str, np.ndarray]:
        """Committed rows of every evaluation array."""
        n = self.committed_evaluations
        return {name: array[:n] for name, array in self.group["evaluations"].arrays()}

    def generations(self) -> dict[str, np.ndarray]:
        g = self.committed_generations
        return {name: array[:g] for name, array in self.group["generations"].arrays()}

    def arrays(self, group: str) -> dict[str, np.ndarray]:
        if group not in self.group:
            return {}
        return {name: array[...] for name, array in self.group[group].arrays()}

    def best(self) -> dict[str, Any] | None:
        """The committed individual with the lowest total error."""
        evaluations = self.evaluations()
        if not len(evaluations["total"]):
            return None
        index = int(np.argmin(evaluations["total"]))
        return {
            "index": index,
            "generation": int(evaluations["generation"][index]),
            "parameters": dict(
                zip(self.parameter_names, map(float, evaluations["parameters"][index]), strict=True)
            ),
            "errors": dict(
                zip(self.component_names, map(float, evaluations["errors"][index]), strict=True)
            ),
            "total": float(evaluations["total"][index]),
        }


def check_writable(path: Path) -> None:
    """Fail before any evaluation if the store cannot be written (permissions, full disk)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 65536)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as error:
        raise _write_error(path, error) from None
