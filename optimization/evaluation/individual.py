"""Evaluate individuals: simulate, score, and never raise for a bad individual."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from neuroptimus.optimization.evaluation import kept_traces
from neuroptimus.optimization.evaluation.problem import Problem, model_key
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators import (
    ModelError,
    SimulationTimeout,
    Simulator,
    Trace,
    VectorError,
    create_simulator,
)

# Stored as codes into this tuple: new statuses go at the end, so stored codes keep meaning.
STATUSES = ("ok", "failed", "nan", "timeout", "crashed")
OK, FAILED, NAN, TIMEOUT, CRASHED = range(len(STATUSES))

# One model per process (NEURON keeps global state): the simulator built here is reused by
# every evaluation this process runs.
_simulator: tuple[str, Simulator] | None = None


def worker_name(pid: int | None = None) -> str:
    """host:pid of this process (or of process ``pid`` on this host)."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def worker_label(pid: int | None = None) -> str:
    """worker_name, with the batch job the process runs in."""
    for variable, system in (
        ("SLURM_JOB_ID", "slurm"), ("PBS_JOBID", "pbs"), ("LSB_JOBID", "lsf"), ("JOB_ID", "sge")
    ):  # fmt: skip
        if os.environ.get(variable):
            return f"{worker_name(pid)}/{system}-{os.environ[variable]}"
    return worker_name(pid)


def simulator_for(problem: Problem) -> Simulator:
    """This process's simulator for ``problem``, built on first use."""
    return hosted_simulator(problem.spec, problem.key)


def hosted_simulator(spec: ProblemSpec, key: str | None = None) -> Simulator:
    """This process's simulator for the model of ``spec`` (``key``: its model key), built
    and set up on first use — by the run's preflight or by the first evaluation."""
    global _simulator
    key = key or model_key(spec.model_dump(mode="json"))
    if _simulator is None:
        simulator = create_simulator(spec)
        simulator.setup()
        _simulator = (key, simulator)
    elif _simulator[0] != key:
        raise ModelError(
            "this process already hosts another NEURON model; run each problem in its own "
            "worker processes"
        )
    return _simulator[1]


def ruin() -> str | None:
    """Why this process's model can be run no more (``Simulator.ruined``), or None."""
    return _simulator[1].ruined if _simulator is not None else None


class ProcessRuined(ModelError):
    """An evaluation ruined this process's model (``Simulator.ruined``) with individuals of
    its batch left. ``result``: the rows evaluated, the one that ruined it (failed) last."""

    def __init__(self, message: str, result: BatchResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class BatchResult:
    """Per-individual outcome of a batch, as arrays ready for the run store."""

    errors: np.ndarray  # (n, k) unweighted components (penalty where failed)
    total: np.ndarray  # (n,)
    status: np.ndarray  # (n,) int8 codes into STATUSES
    message: list[str]
    seconds: np.ndarray  # (n,) wall time of simulation + scoring
    worker: list[str]

    def take(self, rows: slice | np.ndarray) -> BatchResult:
        """The results of ``rows`` (a slice or integer indices)."""
        picked = np.arange(len(self.total))[rows]
        return BatchResult(
            errors=self.errors[picked],
            total=self.total[picked],
            status=self.status[picked],
            message=[self.message[i] for i in picked],
            seconds=self.seconds[picked],
            worker=[self.worker[i] for i in picked],
        )

    @classmethod
    def concatenate(cls, parts: list[BatchResult]) -> BatchResult:
        return cls(
            errors=np.concatenate([p.errors for p in parts]),
            total=np.concatenate([p.total for p in parts]),
            status=np.concatenate([p.status for p in parts]),
            message=[m for p in parts for m in p.message],
            seconds=np.concatenate([p.seconds for p in parts]),
            worker=[w for p in parts for w in p.worker],
        )


def penalized(
    problem: Problem, status: int, message: str, seconds: float, worker: str
) -> BatchResult:
    """The result of one individual that has no errors of its own (it crashed its process)."""
    penalty = problem.spec.evaluation.penalty
    return BatchResult(
        errors=np.full((1, len(problem.component_names)), penalty),
        total=np.array([penalty]),
        status=np.array([status], dtype=np.int8),
        message=[message],
        seconds=np.array([seconds]),
        worker=[worker],
    )


def evaluate_one(problem: Problem, values: np.ndarray) -> tuple[np.ndarray, int, str, float]:
    """(errors, status, message, seconds) of one parameter vector in real units."""
    k = len(problem.component_names)
    penalty = problem.spec.evaluation.penalty
    started = time.monotonic()
    deadline = started + problem.spec.evaluation.timeout_s
    status, message = OK, ""
    try:
        traces = simulator_for(problem).run(problem.space.as_dict(values), deadline)
        if not all(np.isfinite(t.values).all() for t in traces):
            status, message = NAN, "the recording contains NaN or infinite values"
        else:
            errors = problem.objective.errors(traces)
            if not np.isfinite(errors).all():
                status, message = NAN, "a cost function returned NaN or inf"
    except SimulationTimeout as error:
        status, message = TIMEOUT, str(error)
    except VectorError as error:  # this vector's values cannot be applied
        status, message = FAILED, str(error)
    except ModelError:
        raise  # the model cannot be built at all: not this individual's fault
    except Exception as error:  # a crashing simulation is a recorded status, not a failure
        status, message = FAILED, f"{type(error).__name__}: {error}"
    if status != OK:
        errors = np.full(k, penalty)
    else:  # outside the try: keeping them never turns a result into a failure
        kept_traces.offer(problem, values, errors, traces)
    return errors, status, message, time.monotonic() - started


Outcome = tuple[np.ndarray, int, str, float]


def evaluate_batch(
    problem: Problem,
    points: np.ndarray,
    evaluate: Callable[[Problem, np.ndarray], Outcome] | None = None,
    on_part: Callable[[int, BatchResult], None] | None = None,
    part_s: float = 1.0,
) -> BatchResult:
    """Evaluate the rows of ``points`` (real units) one after another in this process;
    ``evaluate`` replaces ``evaluate_one`` (a cluster wraps it to watch for hung runs).
    ``on_part(first, result)`` gets the results of the rows from ``first`` on as they end: the
    rows since the last part once ``part_s`` has passed since it (so an evaluation that lasts
    that long is handed over alone, at once), and the rest at the end.

    An evaluation that ruins this process's model (a user function that deletes a NEURON
    section; that individual fails) ends the batch: ProcessRuined (a ModelError) names it and
    says how many individuals need a fresh process, and holds the results so far. A Dask
    worker then hands them over and retires (``retirement``); in a single process, as in
    ``neuroptimus evaluate``, it ends the call (a ruin by the last row ends the next one)."""
    points = np.atleast_2d(points)
    evaluate = evaluate or evaluate_one
    outcomes: list[Outcome] = []
    first, last = 0, time.monotonic()
    for row in points:
        outcomes.append(evaluate(problem, row))
        reason = ruin()
        if reason is not None and len(outcomes) < len(points):
            left = len(points) - len(outcomes)
            raise ProcessRuined(
                f"{reason} while evaluating individual {len(outcomes)} of {len(points)} (it "
                f"failed), and NEURON cannot rebuild it in this process: the {left} left need "
                "a fresh process",
                _batch_result(problem, outcomes),
            )
        if on_part is not None and len(outcomes) < len(points):
            if time.monotonic() - last >= part_s:
                on_part(first, _batch_result(problem, outcomes[first:]))
                first, last = len(outcomes), time.monotonic()
    result = _batch_result(problem, outcomes)
    if on_part is not None:
        on_part(first, result if first == 0 else result.take(slice(first, None)))
    return result


def _batch_result(problem: Problem, outcomes: list[Outcome]) -> BatchResult:
    errors = np.array([o[0] for o in outcomes]).reshape(len(outcomes), -1)
    # Row by row: a matrix product's rounding depends on how many rows it gets, and the
    # chunking of a generation changes with the workers (lost, replaced, adaptive).
    totals = np.array([problem.objective.total(row) for row in errors], dtype=float)
    status = np.array([o[1] for o in outcomes], dtype=np.int8)
    penalty = problem.spec.evaluation.penalty
    totals = np.where(status == OK, totals, penalty)
    name = worker_name()
    return BatchResult(
        errors=errors,
        total=totals,
        status=status,
        message=[o[2] for o in outcomes],
        seconds=np.array([o[3] for o in outcomes]),
        worker=[name] * len(outcomes),
    )


def simulate_traces(problem: Problem, values: np.ndarray) -> list[Trace]:
    """The recorded traces of one individual (for reports), in this process."""
    return simulator_for(problem).run(problem.space.as_dict(values))
