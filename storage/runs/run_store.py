"""RunStore: one Zarr group per run, the truth on disk.

Layout::

    evaluations/{parameters (n×d), errors (n×k), total, generation, status, seconds,
                 worker, message}
    generations/{evaluations, best, cumulative_best, median, mean, worst, failed, seconds,
                 time, algorithm_seconds}  and, where fronts are kept (``pareto_fronts``),
                 {front_size, hypervolume, hypervolume_error, hypervolume_method}
    fronts/{row, entered, left}   membership intervals of the non-dominated front
    best/{parameters, errors, total, trace, time}   target/{trace, time}
    checkpoint.pkl   (algorithm state after the last committed generation)
    journal.bin      (append-only records of that state, e.g. told batches;
                     see neuroptimus.storage.runs.journal)
    inflight/        results of the generations not committed yet, streamed as they arrive
                     (see neuroptimus.storage.runs.inflight); deleted as their generations are
                     committed

Every result is streamed to ``inflight/`` when it arrives; the generation's rows, statistics
and checkpoint are committed together once it is done. A resume takes the streamed results of
the generation it runs again instead of evaluating their points a second time.

Rows are written once per generation at the offset of that generation, so a retried or resumed
generation overwrites its own rows and never duplicates them. Arrays grow in large steps:
the ``committed_*`` attributes say how many rows and generations a reader may trust while a
writer is appending (and the checkpoint is the writer's truth); a finished run's arrays are
cut to those counts. Fronts and hypervolumes are kept for multi-objective algorithms (or on
request); see ``neuroptimus.storage.runs.fronts`` and ``neuroptimus.storage.runs.hypervolume``.

This module creates, opens and writes a store; what readers call is in ``store_reading``
(``RunStoreReading``, which ``RunStore`` inherits).
"""

from __future__ import annotations

import functools
import math
import os
import pickle
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from neuroptimus.optimization.errors import NeuroptimusError
from neuroptimus.optimization.evaluation.individual import STATUSES, BatchResult
from neuroptimus.optimization.locks import LockBusy, LockError, exclusive_lock
from neuroptimus.optimization.loop.runner import Checkpoint
from neuroptimus.storage.runs import algorithm_rows
from neuroptimus.storage.runs import hypervolume as hv
from neuroptimus.storage.runs import journal as journals
from neuroptimus.storage.runs.columns import write_all
from neuroptimus.storage.runs.generation_writer import GenerationWriter, create_arrays
from neuroptimus.storage.runs.inflight import InflightLog
from neuroptimus.storage.runs.store_reading import RunStoreReading

_BEHIND_S = 0.03  # a background write waits this long before it starts

warnings.filterwarnings("ignore", message=".*StringDType.*")
warnings.filterwarnings("ignore", category=UserWarning, module="zarr.*")


# beside a store unpacked from a catalog: where it came from (``neuroptimus resume`` refuses it)
FROM_CATALOG = "from-catalog.json"


class StoreError(NeuroptimusError, RuntimeError):
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


class RunStore(RunStoreReading):
    """Append-only store of every evaluated individual of one run."""

    def __init__(self, path: Path, group: zarr.Group) -> None:
        self.path = path
        self.group = group
        self._writer: GenerationWriter | None = None
        self._retired: dict[str, float] = {}  # the figures of a writer dropped by ``_trim``
        # seconds in write_generation and commit as the caller sees them ("critical"), and
        # spent writing rows and checkpoints (in the background with ``write_behind``)
        # and in stream/streamed (on the critical path: results handed over, looked up)
        self.seconds = {"critical": 0.0, "write": 0.0, "commit": 0.0, "stream": 0.0}
        # Writes of a generation go out in a background thread while the next one is
        # evaluated; one thread keeps their order (rows, then the checkpoint that covers them)
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._broken: BaseException | None = None
        self._journal_bytes: int | None = None  # the committed journal's length, once known
        self._inflight: InflightLog | None = None  # results of uncommitted generations
        # Off by default (a notebook or test sees every write done on return); the optimize
        # flow turns it on.
        self.write_behind = False

    def _writing(self) -> GenerationWriter:
        """The writer, built from the committed state on first use."""
        if self._writer is None:
            attrs = self.group.attrs
            self._writer = GenerationWriter(
                self.group, int(attrs["committed_generations"]), int(attrs["committed_evaluations"])
            )
        return self._writer

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
        # what the run keeps fronts for is decided by its creator
        # (neuroptimus.storage.runs.create: the algorithm's facts and the problem's option); a
        # bare store keeps them
        fronts = bool(attributes.get("pareto_fronts", True))
        create_arrays(group, len(parameter_names), len(component_names), fronts)
        k = len(component_names)
        group.attrs.update(
            {
                "weights": [1.0] * k,  # of the error components (total = errors @ weights)
                "penalty": 100.0,  # the error of a failed evaluation, in every component
                **attributes,
                "parameter_names": list(parameter_names),
                "component_names": list(component_names),
                "status_names": list(STATUSES),
                "pareto_fronts": fronts,
                "hypervolume_methods": list(hv.METHODS),
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
        flock, see neuroptimus.optimization.locks: a lock file, taken over when its holder died on
        this host)."""
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

    # -- writing --------------------------------------------------------------------------
    @_writes
    def write_generation(
        self,
        generation: int,
        offset: int,
        points: np.ndarray,
        result: BatchResult,
        seconds: float,
        algorithm_seconds: float = math.nan,
    ) -> None:
        """Write one generation's rows at ``offset`` (overwriting anything from there on), its
        statistics and, where kept, its front (its hypervolume follows later). ``seconds`` is
        the wall time of its evaluations, ``algorithm_seconds`` the algorithm's own (ask and
        tell).

        With ``write_behind`` the writes (and the commit's) go out in a background thread
        (``flush`` waits for them) while the caller goes on to the next generation; a kill
        before the checkpoint that covers them is written loses them, as it would lose a
        generation being evaluated, and the resume rolls back to the previous one."""
        started = time.perf_counter()
        self.flush()  # the previous generation's (long done, normally): one in flight at most
        # Written after a pause: the next generation is asked and sent to the workers first,
        # and this write's Python would take the interpreter lock from exactly that (1 % of
        # UC1's wall time). At most a twentieth of the generation: a short one never waits.
        pause_s = min(_BEHIND_S, seconds / 20)
        self._in_background(
            "write", self._write, generation, offset, points, result, seconds, algorithm_seconds,
            pause_s=pause_s,
        )  # fmt: skip
        self.seconds["critical"] += time.perf_counter() - started

    def _write(self, *generation: Any) -> None:
        write_all(self._writing().prepare(*generation))

    def _in_background(self, *call: Any, pause_s: float = 0.0) -> None:
        if not self.write_behind:
            self._guarded(*call)
            return
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="run-store")
        self._pending.append(self._executor.submit(self._after_pause, pause_s, *call))

    def _after_pause(self, pause_s: float, *call: Any) -> None:
        time.sleep(pause_s)
        self._guarded(*call)

    def _guarded(self, *call: Any) -> None:
        """Nothing is written after a failed write (a checkpoint must not cover lost rows)."""
        if self._broken is not None:
            raise self._broken
        try:
            self._timed(*call)
        except BaseException as error:
            self._broken = error
            raise

    def _timed(self, kind: str, action: Callable, *args: Any) -> None:
        started = time.perf_counter()
        action(*args)
        self.seconds[kind] += time.perf_counter() - started

    def _streaming(self) -> InflightLog:
        if self._inflight is None:
            generations = int(self.group.attrs["committed_generations"])
            self._inflight = InflightLog(self.path / "inflight", generations)
        return self._inflight

    @_writes
    def stream(self, generation: int, values: np.ndarray, result: BatchResult) -> None:
        """Keep results of generation ``generation`` as they arrive (``values`` in real
        units), written behind in ``inflight/`` until the generation is committed."""
        started = time.perf_counter()
        self._streaming().add(generation, values, result)
        self.seconds["stream"] += time.perf_counter() - started

    def streamed(self, generation: int, values: np.ndarray) -> list[BatchResult | None]:
        """For each row of ``values``: the result streamed for it in ``generation`` (by
        this process, or before a kill), or None."""
        started = time.perf_counter()
        found = self._streaming().lookup(generation, values)
        self.seconds["stream"] += time.perf_counter() - started
        return found

    @_writes
    def flush(self) -> None:
        """Wait for the writes in flight; one that failed raises here."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()
        if self._broken is not None:  # and stays failed: nothing more is written
            raise self._broken

    def profile(self) -> dict[str, float]:
        """Seconds this process spent writing generations and their fronts (see
        ``GenerationWriter.profile``), and in commits."""
        figures = self._writer.profile() if self._writer else self._retired
        if self._inflight is not None:  # streaming results, in the background
            figures = {**figures, "stream_write_seconds": self._inflight.seconds}
        return {**figures, **{f"{kind}_seconds": value for kind, value in self.seconds.items()}}

    @_writes
    def commit(self, checkpoint: Checkpoint, journal: Sequence[Any] = ()) -> None:
        """Make the generation durable, after its rows (in the background, see
        ``write_generation``): the journal's new records, then the checkpoint (the truth,
        holding the journal's committed length), then reader hints."""
        started = time.perf_counter()
        self._in_background("commit", self._commit, checkpoint, list(journal))
        self.seconds["critical"] += time.perf_counter() - started

    def _commit(self, checkpoint: Checkpoint, journal: list[Any]) -> None:
        if self._journal_bytes is None:  # not checkpoint(): it would wait for this write
            previous = self._read_checkpoint()
            self._journal_bytes = previous.journal_bytes if previous else 0
        at = self._journal_bytes
        checkpoint.journal_bytes = (
            journals.append(self.path / "journal.bin", journal, at) if journal else at
        )
        self._journal_bytes = checkpoint.journal_bytes
        path = self.path / "checkpoint.pkl"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            pickle.dump(checkpoint, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        self.group.update_attributes(  # one metadata write
            {
                "committed_generations": checkpoint.generation,
                "committed_evaluations": checkpoint.evaluations,
            }
        )
        if self._inflight is not None:  # the streamed rows are in the store now
            self._inflight.commit(checkpoint.generation)

    @_writes
    def rollback(self, checkpoint: Checkpoint | None) -> None:
        """Forget what was written after the checkpoint (a generation cut short by a crash):
        readers never saw it; the writer starts again from the checkpoint's state, and
        hypervolumes left pending by the stopped run are computed again."""
        self.flush()
        generations = checkpoint.generation if checkpoint else 0
        rows = checkpoint.evaluations if checkpoint else 0
        self._journal_bytes = checkpoint.journal_bytes if checkpoint else 0
        journals.truncate(self.path / "journal.bin", self._journal_bytes)
        # streamed results outlive a rollback: the generation asked again reuses them
        if self._inflight is None:
            self._inflight = InflightLog(self.path / "inflight", generations)
        else:
            self._inflight.commit(generations)
        self.group.update_attributes(
            {"committed_generations": generations, "committed_evaluations": rows}
        )
        if self._writer is not None:
            self._writer.close()
        self._writer = GenerationWriter(self.group, generations, rows)
        self._writer.rollback_writes()

    @_writes
    def write_arrays(self, group: str, arrays: dict[str, np.ndarray]) -> None:
        """Replace small arrays such as ``best/*`` or ``target/*``."""
        self.flush()
        parent = self.group.require_group(group)
        for name, values in arrays.items():
            values = np.asarray(values)
            parent.create_array(name, shape=values.shape, dtype=values.dtype, overwrite=True)
            parent[name][...] = values

    @_writes
    def write_rows(self, group: str, first: int, arrays: dict[str, np.ndarray]) -> None:
        """Rows of an algorithm's own group (see neuroptimus.storage.runs.algorithm_rows)."""
        self.flush()
        algorithm_rows.write_rows(self.group, group, first, arrays)

    @_writes
    def set_attributes(self, **values: Any) -> None:
        """Update attributes; setting ``finished`` first waits (boundedly) for the last
        hypervolumes, and afterwards cuts the arrays to the committed counts."""
        self.flush()
        finishing = values.get("finished") is not None and self._writer is not None
        if finishing:
            self._writer.finish()
        self.group.update_attributes(values)
        if values.get("finished") is not None and self._inflight is not None:
            self._inflight.close()  # whatever is still in flight is committed or lost
            self._inflight.commit(int(self.group.attrs["committed_generations"]))
        if finishing:
            self._trim()

    def _trim(self) -> None:
        """Arrays cut to what is committed, so plain Zarr readers see no unused slots."""
        rows, generations = self.committed_evaluations, self.committed_generations
        for array in self.group["evaluations"].array_values():
            array.resize((rows,) + array.shape[1:])
        for array in self.group["generations"].array_values():
            array.resize((generations,))
        if "fronts" in self.group:
            fronts = self.group["fronts"]
            used = int(np.count_nonzero(fronts["row"][:] >= 0))
            for array in fronts.array_values():
                array.resize((used,))
        self._retired = self._writer.profile()
        self._writer = None  # grown again from the committed state if the run goes on

    def close(self) -> None:
        """Wait for the writes in flight and stop the hypervolume helper (a run that stops
        without finishing: an error of the run is already on its way, so a failed write is
        not raised over it)."""
        try:
            self.flush()
        except StoreError:
            pass
        if self._writer is not None:
            self._writer.close()
        if self._inflight is not None:
            try:
                self._inflight.close()
            except OSError:
                pass
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None


def check_writable(path: Path) -> None:
    """Fail before any evaluation if the store cannot be written (permissions, full disk)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        # one probe per process: runs started at once in one folder each write their own
        probe = path / f".write-test-{uuid.uuid4().hex}"
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 65536)
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as error:
        raise _write_error(path, error) from None


def store_run_id(store: RunStore) -> str:
    """A store's ``run_id``. A store made before stores had one is given a random one now,
    kept in the store (so pushing it again finds the same catalog entry); an id derived from
    what the store recorded could be guessed by whoever knows the run."""
    found = store.attrs.get("run_id")
    if found:
        return str(found)
    run_id = str(uuid.uuid4())
    RunStore.open(store.path, mode="r+").set_attributes(run_id=run_id)
    return run_id
