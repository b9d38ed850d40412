"""The worker side of the Dask evaluator (``dask_evaluator``): the problem installed once per
worker process (``ProblemPlugin``), and the tasks the evaluator submits — a chunk of
individuals, whose results are handed over to the client as each ends; one individual in a
fresh process (``crash_blame``'s confirmation); one individual's traces. Dask names a task after
its function, so these keep their names (tests and logs read them)."""

from __future__ import annotations

from typing import Any

import dask
import numpy as np
from distributed import Client, WorkerPlugin, get_worker

from neuroptimus.optimization.evaluation import individual as evaluation
from neuroptimus.optimization.evaluation import kept_traces
from neuroptimus.optimization.evaluation.individual import TIMEOUT, BatchResult
from neuroptimus.optimization.evaluation.problem import Problem
from neuroptimus.optimization.execution import handover, retirement
from neuroptimus.optimization.execution.fresh_process import evaluate_fresh
from neuroptimus.optimization.execution.hang_watchdog import watched
from neuroptimus.optimization.simulators import Trace

# Problems installed on this worker process by ProblemPlugin, by identity (problems that share
# a model share its simulator, but each keeps its own objective).
_problems: dict[str, Problem] = {}


class ProblemPlugin(WorkerPlugin):
    """Installs the problem on every worker (also ones that join later) and builds its model
    once, so tasks carry only parameter vectors."""

    idempotent = True  # its name says which problem: registered again, it is already there

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.name = f"neuroptimus-problem-{problem.identity}"

    def setup(self, worker) -> None:
        _problems[self.problem.identity] = self.problem
        evaluation.simulator_for(self.problem)


def install_problem(client: Client, problem: Problem) -> None:
    """Install ``problem`` on every worker of ``client``'s cluster and build its model there
    (and on workers that join later); returns when every worker has it."""
    client.register_plugin(ProblemPlugin(problem))


def installed_problem(identity: str) -> Problem:
    """The problem ProblemPlugin installed on this worker (``Problem.identity``)."""
    return _problems[identity]


def _evaluate_chunk(
    identity: str,
    points: np.ndarray,
    hung: dict[str, float],
    crashed: dict[str, tuple[str, float]],
    inbox: str,
) -> BatchResult:
    """The chunk's results, each also handed over to the client's ``inbox`` as it ends (so
    the death of this worker cannot take it along). An evaluation that ruins this process's
    model ends the chunk and the process (``retirement``)."""
    problem = _problems[identity]
    label, send = evaluation.worker_label(), handover.hand_over(inbox)

    def on_part(first: int, result: BatchResult) -> None:
        if evaluation.ruin() is not None:
            return  # retire() hands these rows over with its notice
        result.worker = [label] * len(result.worker)
        send(first, result)

    try:
        with kept_traces.keeping(inbox):  # the run's best's traces stay here (``_take_kept``)
            result = evaluation.evaluate_batch(
                problem, points, watched(problem.key, hung, crashed), on_part, handover.HAND_OVER_S
            )
    except evaluation.ProcessRuined as ruined:  # the rows so far; the rest needs a new process
        result = ruined.result
    result.worker = [label] * len(result.worker)
    reason = evaluation.ruin()
    if reason is not None:
        retirement.retire(inbox, result, reason)
    return result  # fetched only if its hand-over went missing


def _evaluate_fresh(identity: str, values: np.ndarray, grace_s: float) -> dict[str, Any]:
    """``values`` evaluated in a fresh process (``crash_blame``'s confirmation): ``run``, how
    that process ended (``FreshRun`` as a dict), ``worker``, its name, and ``result``, the
    individual's result if it has one (it ended, or hung past its time limit)."""
    problem = _problems[identity]
    manager = getattr(get_worker(), "memory_manager", None)
    limit = getattr(manager, "memory_limit", None)
    fraction = dask.config.get("distributed.worker.memory.terminate", False)
    limit = int(limit * fraction) if limit and fraction else None  # where its nanny would end it
    run = evaluate_fresh(problem, values, grace_s, limit)
    outcome = run.outcome
    if outcome is None and run.hung:
        timeout_s = problem.spec.evaluation.timeout_s
        message = (
            f"the simulation hung past its time limit ({timeout_s:g} s) in a fresh process, "
            "which was killed"
        )
        penalty = np.full(len(problem.component_names), problem.spec.evaluation.penalty)
        outcome = (penalty, TIMEOUT, message, run.seconds)
    result, worker = None, evaluation.worker_label(run.pid)
    if outcome is not None:  # scored as any evaluation is
        result = evaluation.evaluate_batch(problem, values[None, :], lambda *_: outcome)
        result.worker = [worker]
    run.outcome = None
    return {"run": run.as_dict(), "worker": worker, "result": result}


def _simulate(identity: str, values: np.ndarray) -> list[Trace]:
    return evaluation.simulate_traces(_problems[identity], values)


def _take_kept(token: str, values: np.ndarray) -> list[Trace] | None:
    """The traces this process kept for the run ``token`` if they are those of ``values``."""
    return kept_traces.take(token, values)
