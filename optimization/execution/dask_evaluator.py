"""Maps a population onto a Dask cluster: the problem is installed once per worker, each
generation travels as a few chunks of parameter vectors, and a chunk lost with its worker is
run again one individual per task (less the individuals it had finished), so that an
individual that kills its worker process is found, confirmed in a fresh process and stored as
crashed (``crash_blame`` says when), and the generation goes on. A worker hands each result
over to the client as soon as it exists (``handover``), so the death of a worker or of its
batch job loses only the evaluations it was running. Each chunk's results are handed to the
caller as they arrive (streamed into the store); a chunk carries at most a few seconds of
simulation, so a killed run loses little more than the evaluations in flight. A worker whose
model an evaluation ruined (a user function that deletes a NEURON section) retires and is
replaced (``retirement``): what it had not evaluated runs again elsewhere, and nobody is
blamed."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import Client, Future, KilledWorker, as_completed

from neuroptimus.optimization.errors import InfrastructureError
from neuroptimus.optimization.evaluation import individual as evaluation
from neuroptimus.optimization.evaluation.individual import CRASHED, FAILED, BatchResult
from neuroptimus.optimization.evaluation.problem import Problem
from neuroptimus.optimization.execution import crash_blame, handover, retirement
from neuroptimus.optimization.execution.cluster import (
    ClusterConfig,
    client_config,
    expected_workers,
)
from neuroptimus.optimization.execution.hang_watchdog import (
    HUNG,
    HangWatchdog,
    fingerprint,
)
from neuroptimus.optimization.execution.liveness import watch_liveness
from neuroptimus.optimization.execution.walltime import WalltimeDrain
from neuroptimus.optimization.execution.worker_deaths import (
    DEATHS,
    Death,
    DeathRecorder,
    death_key,
    death_message,
)
from neuroptimus.optimization.execution.worker_tasks import (
    _evaluate_chunk,
    _evaluate_fresh,
    _simulate,
    _take_kept,
    install_problem,
)
from neuroptimus.optimization.simulators import Trace

log = logging.getLogger(__name__)

# -- on the client ------------------------------------------------------------------------

# The scheduler's time per task ("about 1 ms", distributed's documentation; 1 ms measured by
# `neuroptimus benchmark orchestration` on a small, busy machine).
_SCHEDULER_TASK_S = 0.001


# The most simulation time a task carries once the last generation says how long an
# individual takes: its results reach the store when the task ends, so slow models get short
# tasks (down to one individual) and a kill of the run loses at most this much work per worker.
_STREAM_TASK_S = 2.0


# How long a lost task waits for the dead worker's nanny to say what killed it (the nanny
# looks every 0.25 s; a loaded machine can delay it by seconds).
_DEATH_REPORT_S = 10.0


class WorkersLost(InfrastructureError, RuntimeError):
    """Tasks were lost with their workers again and again, with no individual to blame: an
    infrastructure failure (the one kind a retry of the generation may cure)."""


class SchedulerLost(InfrastructureError, RuntimeError):
    """The Dask scheduler cancelled the generation's tasks: the connection to it was lost,
    or the cluster was closed under the run. Waiting would never end; a retry may cure it."""


@dataclass
class _Task:
    """One task of a generation: chunk ``chunk`` whole, or its row ``row`` alone (in a fresh
    process when ``suspect`` is set), or its rows ``rows`` (those a retired worker left)."""

    chunk: int
    row: int | None = None
    rows: tuple[int, ...] | None = None
    losses: int = 0
    lost_with: list[str] = field(default_factory=list)  # death_keys of the workers that died
    # deaths while it ran (alone or in a fresh process): what killed, seconds, which process
    causes: list[tuple[str, float, str]] = field(default_factory=list)
    suspect: Death | None = None  # a death run alone that crash_blame suspects it of


class DaskEvaluator:
    """Evaluates a batch of parameter vectors on a Dask cluster, a few chunks per worker.

    A chunk whose worker dies is run again one individual per task. An individual whose worker
    then dies again while evaluating it (its nanny says so, see ``worker_deaths``) of a cause
    it can have (``crash_blame``) is evaluated once more, in a fresh process: if that dies too
    it has killed them, and is stored with the ``crashed`` status, the penalty and the causes,
    and not run again; if not, its result there is its result. Deaths that blame nobody (an
    outside SIGKILL or SIGTERM, a lost node) only make the individual run again. So a worker
    lost for an outside reason costs nothing but the repeated work. An individual whose worker
    dies while evaluating it more than ``resubmissions`` times, with no evidence against it, is
    stored as ``failed`` with the causes; other tasks lost that often with no individual to
    blame fail the call, and the Prefect task retries it; ``resubmissions: 0`` fails it at the
    first loss.
    """

    streams = True  # __call__ takes on_result (see neuroptimus.optimization.loop.runner.Evaluator)

    def __init__(
        self,
        client: Client,
        problem: Problem,
        chunks_per_worker: int | None = None,
        config: ClusterConfig | None = None,
    ) -> None:
        config = config or client_config(client)
        self.client = client
        self.problem = problem
        self.chunks_per_worker = chunks_per_worker or config.chunks_per_worker
        self.min_task_s = config.min_task_s
        self.resubmissions = config.resubmissions
        self.hang_grace_s = config.hang_grace_s
        self._seconds: float | None = None  # per individual, in the last generation
        self.expected_workers = expected_workers(config)
        self._hung: dict[str, float] = {}
        self._crashed: dict[str, tuple[str, float]] = {}  # fingerprint → message, seconds
        self._inbox = handover.Inbox(client)  # results handed over by the workers
        client.register_plugin(HangWatchdog(config.hang_grace_s))
        # the scheduler must not take a hung worker for lost before the watchdog kills it
        watch_liveness(client, problem.spec.evaluation.timeout_s, config.hang_grace_s)
        client.register_plugin(DeathRecorder())
        install_problem(client, problem)
        timing = config.walltime_schedule()
        if timing is not None:  # queue workers stop taking evaluations before the walltime
            client.register_plugin(WalltimeDrain(timing[0]))

    def _chunks(self, n: int) -> int:
        """Tasks for ``n`` individuals: ``chunks_per_worker`` per worker, fewer when the last
        generation says they would carry less than ``min_task_s`` of simulation each, or less
        than 10 ms per worker (the scheduler spends about 1 ms on a task, one task after
        another, so with W workers a task must last 10·W ms for it to stay under a tenth
        busy). Down to one task per worker, and below that only when the scheduler would take
        longer than the simulations: √(n·t / 1 ms) tasks make a generation shortest then. More
        tasks when each would carry over ``_STREAM_TASK_S`` of simulation (results stream in
        per task), unless that would keep the scheduler busy."""
        workers = max(len(self.client.nthreads()), self.expected_workers)
        chunks = workers * self.chunks_per_worker
        if self._seconds is not None and self.min_task_s > 0:
            work = n * self._seconds
            least = max(self.min_task_s, _SCHEDULER_TASK_S * 10 * workers)
            floor = min(workers, math.ceil(math.sqrt(work / _SCHEDULER_TASK_S)))
            chunks = max(floor, min(chunks, math.ceil(work / least)))
            chunks = max(chunks, math.ceil(work / max(_STREAM_TASK_S, least)))
        return max(1, min(n, chunks))

    def _submit_fresh(self, values: np.ndarray) -> Future:
        """One task that evaluates ``values`` in a fresh process (``_evaluate_fresh``)."""
        identity, grace = self.problem.identity, self.hang_grace_s
        return self.client.submit(_evaluate_fresh, identity, values, grace, pure=False)

    def _submit(self, pieces: list[np.ndarray]) -> list[Future]:
        """One task per piece (in one message), with the individuals known to hang or crash."""
        names = [[fingerprint(self.problem.key, row) for row in piece] for piece in pieces]
        hung = [{n: self._hung[n] for n in group if n in self._hung} for group in names]
        crashed = [{n: self._crashed[n] for n in group if n in self._crashed} for group in names]
        keys = [self.problem.identity] * len(pieces)
        inbox = [self._inbox.token] * len(pieces)
        return self.client.map(_evaluate_chunk, keys, pieces, hung, crashed, inbox, pure=False)

    def _blame(self, task: _Task, name: str, deaths: dict[str, Death | None]) -> Death | None:
        """The death of a worker that individual ``name`` (run alone by ``task``) killed, as its
        nanny reported it: among all the workers the task was lost with, since a report can
        come after the evaluator stopped waiting for it. ``deaths`` caches the reports."""
        for key in task.lost_with:
            # the newest loss is waited for once; the earlier ones only looked up again
            patience = 0.0 if key in deaths else _DEATH_REPORT_S
            deadline = time.monotonic() + patience
            while (death := deaths.get(key)) is None:
                death = self.client.get_metadata([DEATHS, key], default=None)
                deaths[key] = death
                if death is not None or time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
            if death is not None and death["running"] == name:
                return death
        return None

    def __call__(
        self,
        points: np.ndarray,
        on_result: Callable[[np.ndarray, BatchResult], None] | None = None,
    ) -> BatchResult:
        """The results of ``points`` in their order; ``on_result(rows, result)`` gets each
        task's results (``rows``: their indices in ``points``) as soon as it ends."""
        if len(points) == 0:
            raise ValueError("empty batch")
        chunks = np.array_split(points, self._chunks(len(points)))
        starts = np.cumsum([0] + [len(chunk) for chunk in chunks])
        done: dict[tuple[int, int | None], BatchResult] = {}
        tasks: dict[str, tuple[_Task, Future]] = {}
        # this client's loop: by default as_completed takes the newest client's, and when that
        # client closes (another run on the same cluster ends) its futures are never seen done
        running = as_completed(loop=self.client.loop)

        def finished(task: _Task, result: BatchResult) -> None:
            if task.rows is not None:  # some rows of a chunk: kept one by one
                for i, row in enumerate(task.rows):
                    finished(_Task(task.chunk, row), result.take(slice(i, i + 1)))
                return
            done[task.chunk, task.row] = result
            if on_result is not None:
                first = starts[task.chunk] + (task.row or 0)
                on_result(np.arange(first, first + len(result.total)), result)

        deaths: dict[str, Death | None] = {}  # by death_key, this generation

        def submit(pieces: list[_Task]) -> None:
            for task in [t for t in pieces if t.suspect is not None]:
                future = self._submit_fresh(chunks[task.chunk][task.row])
                tasks[future.key] = (task, future)
                running.add(future)
            pieces = [t for t in pieces if t.suspect is None]
            if not pieces:
                return
            rows = [chunks[t.chunk][rows_of(t)] for t in pieces]
            for task, future in zip(pieces, self._submit(rows), strict=True):
                tasks[future.key] = (task, future)
                running.add(future)

        def rows_of(task: _Task) -> list[int]:
            """The rows of its chunk that ``task`` evaluates."""
            if task.row is not None:
                return [task.row]
            return list(range(len(chunks[task.chunk]))) if task.rows is None else list(task.rows)

        def size(task: _Task) -> int:
            return len(rows_of(task))

        def kept_rows(task: _Task, parts: dict[int, BatchResult]) -> dict[int, BatchResult]:
            """The results of ``parts`` (first row in the task → result) by row of the chunk."""
            rows = rows_of(task)
            return {rows[i]: result for i, result in handover.rows_of(parts).items()}

        def lost(task: _Task, future: Future, kept: dict[int, BatchResult]) -> None:
            """A task that did not finish: its worker died (or the model cannot be built).
            ``kept``: the results its rows handed over before (first row → result)."""
            if future.status == "cancelled":  # not by this evaluator: it has stopped waiting
                raise SchedulerLost(
                    f"the Dask scheduler at {self.client.scheduler.address} cancelled a task "
                    f"of this generation (the client is {self.client.status}): the connection "
                    "to it was lost or its cluster was closed while the run used it"
                )
            error = future.exception() if future.status == "error" else None
            if error is not None and not isinstance(error, KilledWorker):
                raise error  # the model cannot be built, … : not a lost worker
            dead = getattr(error, "last_worker", None)  # the scheduler's WorkerState
            key = None
            if getattr(dead, "nanny", None) and getattr(dead, "pid", None):
                key = death_key(dead.nanny, dead.pid)
            retired = self._inbox.retired(key) if key else None
            if retired is not None:
                replaced(task, future.key, retired, kept)
                return
            task.losses += 1
            self._hung.update(self.client.get_metadata([HUNG], default={}))
            if task.row is None:
                if task.losses > self.resubmissions:
                    raise WorkersLost(
                        f"a chunk of {size(task)} individuals was lost with its worker "
                        f"{task.losses} times"
                    ) from error
                ended = kept_rows(task, kept)  # those are not run again
                for row, result in ended.items():
                    finished(_Task(task.chunk, row), result)
                # run alone, each other individual either ends or shows it kills its worker
                submit([_Task(task.chunk, row) for row in rows_of(task) if row not in ended])
                return
            if task.suspect is not None:  # the worker running its fresh process died
                if task.losses > self.resubmissions:
                    raise WorkersLost(
                        f"the evaluation of an individual in a fresh process was lost with "
                        f"its worker {task.losses} times"
                    ) from error
                submit([task])
                return
            name = fingerprint(self.problem.key, chunks[task.chunk][task.row])
            if key is not None:
                task.lost_with.append(key)
            death = None if name in self._hung else self._blame(task, name, deaths)
            if death is not None:  # it was running when its worker died
                task.lost_with.clear()  # that death is accounted for
                cause = death_message(death["exitcode"])
                task.causes.append((cause, death["seconds"] or 0.0, death["worker"]))
                if crash_blame.suspicion(death) is not None:
                    task.suspect = death  # confirmed (or not) in a fresh process
                    submit([task])
                    return
            again(task, error)

        def replaced(
            task: _Task, task_key: str, retired: handover.Retired, kept: dict[int, BatchResult]
        ) -> None:
            """A task (``task_key``) lost with a worker process that retired (``retirement``):
            the rows it evaluated are kept, the others run again as they were, and that
            counts as no loss."""
            own = retired.task == task_key  # the task that ruined it, else one it held besides
            ended = kept_rows(task, {0: retired.result} if own else kept)
            for row, result in ended.items():
                finished(_Task(task.chunk, row), result)
            left = [row for row in rows_of(task) if row not in ended]
            if own:
                log.warning(retirement.retired_message(retired, len(left)))
            if not left:
                return
            if task.row is not None:  # alone (or in a fresh process), as it was
                submit([task])
                return
            whole = len(left) == len(chunks[task.chunk])
            submit([_Task(task.chunk, rows=None if whole else tuple(left), losses=task.losses)])

        def again(task: _Task, error: BaseException | None) -> None:
            """Run alone again an individual whose loss blamed nobody, unless that happened
            too often: then it is stored as failed if its worker died while evaluating it
            each time, and otherwise the generation fails."""
            if task.losses <= self.resubmissions:
                submit([task])
            elif len(task.causes) >= task.losses:
                message = crash_blame.unblamed_message([cause for cause, _, _ in task.causes])
                _, seconds, worker = task.causes[-1]
                finished(task, evaluation.penalized(self.problem, FAILED, message, seconds, worker))
            else:
                raise WorkersLost(
                    f"an individual run alone was lost with its worker {task.losses} "
                    "times, and no nanny reported it evaluating it at the time"
                ) from error

        def judge(task: _Task, fresh: dict[str, Any]) -> None:
            """The verdict on an individual suspected of a worker's death (``task.suspect``)
            from its evaluation in a fresh process."""
            suspect, run, result = task.suspect, fresh["run"], fresh["result"]
            task.suspect = None
            name = fingerprint(self.problem.key, chunks[task.chunk][task.row])
            if result is not None:  # not the culprit: that is its result
                if run["hung"]:  # not run again: it would hang its worker
                    self._hung[name] = float(result.seconds[0])
                finished(task, result)
                return
            confirmed = crash_blame.confirmation(run)
            if confirmed is None:  # its fresh process died of something else
                task.losses += 1
                cause = f"in a fresh process: {death_message(run['exitcode'])}"
                task.causes.append((cause, run["seconds"], fresh["worker"]))
                again(task, None)
                return
            message = crash_blame.crash_message(crash_blame.suspicion(suspect), confirmed)
            seconds = suspect["seconds"]
            self._crashed[name] = (message, seconds)
            worker = suspect["worker"]  # the worker process it killed alone
            finished(task, evaluation.penalized(self.problem, CRASHED, message, seconds, worker))

        submit([_Task(i) for i in range(len(chunks))])
        try:
            # A task's results reach the inbox before the news that it ended (see handover):
            # whether its worker is still alive or not, they are taken from there. Only those
            # whose hand-over went missing are fetched from the workers, a batch in one call
            # (not as_completed(with_results=True): its fetch of a result lost with a worker
            # that died meanwhile can fail silently and leave it waiting).
            for batch in running.batches():
                parts = {future.key: self._inbox.take(future.key) for future in batch}
                handed = {}
                for future in batch:
                    whole = handover.whole(parts[future.key], size(tasks[future.key][0]))
                    if whole is not None:
                        handed[future.key] = whole
                fetched = self._fetch(
                    [f for f in batch if f.key not in handed and f.status == "finished"]
                )
                for future in batch:
                    task, _ = tasks.pop(future.key)
                    if future.key in handed:
                        finished(task, handed[future.key])
                    elif future.key in fetched and task.suspect is not None:
                        judge(task, fetched[future.key])
                    elif future.key in fetched:
                        finished(task, fetched[future.key])
                    else:
                        lost(task, future, parts[future.key])
            result = self._collect(chunks, done)
            self._seconds = float(result.seconds.mean())
            return result
        except BaseException:
            # a retry starts afresh; free the workers meanwhile
            self.client.cancel([future for _, future in tasks.values()])
            raise
        finally:
            self._inbox.clear()  # hand-overs of tasks cancelled or lost meanwhile

    def _fetch(self, finished: list[Future]) -> dict[str, Any]:
        """Results of finished tasks by key, fetched in one call. A result held by a worker
        that dies before the fetch is lost with it: then each is fetched alone, and the lost
        ones are left out (the caller counts them as lost with their worker)."""
        if not finished:
            return {}
        try:
            values = self.client.gather(finished)
            return {future.key: value for future, value in zip(finished, values, strict=True)}
        except Exception:
            fetched = {}
            for future in finished:
                try:
                    fetched[future.key] = future.result()
                except Exception:
                    pass  # lost(): a KilledWorker is a loss, anything else is raised there
            return fetched

    def _collect(
        self, chunks: list[np.ndarray], done: dict[tuple[int, int | None], BatchResult]
    ) -> BatchResult:
        """The generation's results in the order of its individuals."""
        parts = []
        for i, chunk in enumerate(chunks):
            for piece in [(i, None)] if (i, None) in done else [(i, j) for j in range(len(chunk))]:
                parts.append(done[piece])
        return BatchResult.concatenate(parts)

    def simulate(self, values: np.ndarray) -> list[Trace]:
        """Traces of one individual, simulated on a worker."""
        return self.client.submit(_simulate, self.problem.identity, values, pure=False).result()

    def best_traces(self, values: np.ndarray) -> tuple[list[Trace], bool]:
        """Traces of the run's best individual ``values`` and whether they were kept from its
        evaluation (``kept_traces``); simulated again when the worker process that evaluated
        it is gone or it was evaluated before a resume. Either way the workers forget them."""
        try:
            found = self.client.run(_take_kept, self._inbox.token, values, on_error="ignore")
        except Exception as error:  # a worker that cannot answer costs one simulation, no more
            log.info("the best individual's kept traces could not be fetched: %s", error)
            found = {}
        for traces in found.values():
            if traces is not None:
                return traces, True
        return self.simulate(values), False
