"""Maps a population onto a Dask cluster: the problem is installed once per worker, each
generation travels as a few chunks of parameter vectors, and chunks lost with their worker are
submitted again."""

from __future__ import annotations

import math
import os

import numpy as np
from distributed import Client, KilledWorker, WorkerPlugin, as_completed

from optimization import evaluation
from optimization.cluster import ClusterConfig, client_config, expected_workers
from optimization.evaluation import BatchResult
from optimization.hang_watchdog import HUNG, HangWatchdog, fingerprint, watched
from optimization.problem import Problem
from optimization.simulators import Trace

# -- on the workers -----------------------------------------------------------------------

# Problems installed on this worker process by ProblemPlugin, by key.
_problems: dict[str, Problem] = {}


class ProblemPlugin(WorkerPlugin):
    """Installs the problem on every worker (also ones that join later) and builds its model
    once, so tasks carry only parameter vectors."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.name = f"neuroptimus-problem-{problem.key}"

    def setup(self, worker) -> None:
        _problems[self.problem.key] = self.problem
        evaluation.simulator_for(self.problem)


def installed_problem(key: str) -> Problem:
    """The problem ProblemPlugin installed on this worker under ``key``."""
    return _problems[key]


def _job_label() -> str:
    """This worker's host:pid, with the batch job it runs in."""
    for variable, system in (
        ("SLURM_JOB_ID", "slurm"), ("PBS_JOBID", "pbs"), ("LSB_JOBID", "lsf"), ("JOB_ID", "sge")
    ):  # fmt: skip
        if os.environ.get(variable):
            return f"{evaluation.worker_name()}/{system}-{os.environ[variable]}"
    return evaluation.worker_name()


def _evaluate_chunk(key: str, points: np.ndarray, hung: dict[str, float]) -> BatchResult:
    result = evaluation.evaluate_batch(_problems[key], points, watched(key, hung))
    result.worker = [_job_label()] * len(result.worker)
    return result


def _simulate(key: str, values: np.ndarray) -> list[Trace]:
    return evaluation.simulate_traces(_problems[key], values)


# -- on the client ------------------------------------------------------------------------

# The scheduler's time per task ("about 1 ms", distributed's documentation; 1 ms measured by
# `neuroptimus benchmark orchestration` on a small, busy machine).
_SCHEDULER_TASK_S = 0.001


class DaskEvaluator:
    """Evaluates a batch of parameter vectors on a Dask cluster, a few chunks per worker.

    A chunk whose worker dies is submitted again (``resubmissions`` times), with the
    individuals the watchdog caught hanging marked, so the generation goes on; only a cluster
    that keeps losing workers fails the call (and the Prefect task retries it).
    """

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
        self._seconds: float | None = None  # per individual, in the last generation
        self.expected_workers = expected_workers(config)
        self._hung: dict[str, float] = {}
        client.register_plugin(HangWatchdog(config.hang_grace_s))
        client.register_plugin(ProblemPlugin(problem))

    def _chunks(self, n: int) -> int:
        """Tasks for ``n`` individuals: ``chunks_per_worker`` per worker, fewer when the last
        generation says they would carry less than ``min_task_s`` of simulation each, or less
        than 10 ms per worker (the scheduler spends about 1 ms on a task, one task after
        another, so with W workers a task must last 10·W ms for it to stay under a tenth
        busy). Down to one task per worker, and below that only when the scheduler would take
        longer than the simulations: √(n·t / 1 ms) tasks make a generation shortest then."""
        workers = max(len(self.client.nthreads()), self.expected_workers)
        chunks = workers * self.chunks_per_worker
        if self._seconds is not None and self.min_task_s > 0:
            work = n * self._seconds
            least = max(self.min_task_s, _SCHEDULER_TASK_S * 10 * workers)
            floor = min(workers, math.ceil(math.sqrt(work / _SCHEDULER_TASK_S)))
            chunks = max(floor, min(chunks, math.ceil(work / least)))
        return max(1, min(n, chunks))

    def _known_hung(self, chunk: np.ndarray) -> dict[str, float]:
        if not self._hung:
            return {}
        names = (fingerprint(self.problem.key, row) for row in chunk)
        return {name: self._hung[name] for name in names if name in self._hung}

    def _submit(self, chunk: np.ndarray):
        hung = self._known_hung(chunk)
        return self.client.submit(_evaluate_chunk, self.problem.key, chunk, hung, pure=False)

    def __call__(self, points: np.ndarray) -> BatchResult:
        if len(points) == 0:
            raise ValueError("empty batch")
        chunks = np.array_split(points, self._chunks(len(points)))
        futures = self.client.map(  # one message for all the chunks
            _evaluate_chunk,
            [self.problem.key] * len(chunks),
            chunks,
            [self._known_hung(chunk) for chunk in chunks],
            pure=False,
        )
        chunk_of = {future.key: i for i, future in enumerate(futures)}
        losses = [0] * len(chunks)
        running = as_completed(futures)
        try:
            for future in running:
                i = chunk_of.pop(future.key)
                if future.status == "finished":
                    continue
                error = future.exception() if future.status == "error" else None
                if error is not None and not isinstance(error, KilledWorker):
                    raise error  # the model cannot be built, … : not a lost worker
                losses[i] += 1
                if losses[i] > self.resubmissions:
                    raise RuntimeError(
                        f"a chunk of {len(chunks[i])} individuals was lost with its worker "
                        f"{losses[i]} times"
                    ) from error
                self._hung.update(self.client.get_metadata([HUNG], default={}))
                futures[i] = self._submit(chunks[i])
                chunk_of[futures[i].key] = i
                running.add(futures[i])
            result = BatchResult.concatenate(self.client.gather(futures))
            self._seconds = float(result.seconds.mean())
            return result
        except BaseException:
            self.client.cancel(futures)  # a retry starts afresh; free the workers meanwhile
            raise

    def simulate(self, values: np.ndarray) -> list[Trace]:
        """Traces of one individual, simulated on a worker."""
        return self.client.submit(_simulate, self.problem.key, values, pure=False).result()
