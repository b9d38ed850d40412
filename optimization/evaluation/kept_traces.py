"""The traces of the best individual a worker process has evaluated for a run, kept where they
were simulated: the run's end takes its best individual's traces from there instead of
simulating it again (a second simulation costs seconds to minutes on a detailed model).

A run's chunks are evaluated ``keeping(token)`` (the token names the run's evaluator); an
evaluation offers its traces, kept while they are the lowest total so far. Only exact equality
of the parameter values hands them out, so a best evaluated elsewhere (another worker, a
process since lost, the session before a resume) is simulated again as before."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from neuroptimus.optimization.evaluation.problem import Problem
    from neuroptimus.optimization.simulators import Trace

_token: ContextVar[str | None] = ContextVar("kept_traces_token", default=None)
# run token → (total, parameter values, traces) of the best this process evaluated for it
_kept: dict[str, tuple[float, np.ndarray, list[Trace]]] = {}


@contextmanager
def keeping(token: str) -> Iterator[None]:
    """Evaluations inside offer their traces to the run named ``token``."""
    reset = _token.set(token)
    try:
        yield
    finally:
        _token.reset(reset)


def offer(problem: Problem, values: np.ndarray, errors: np.ndarray, traces: list[Trace]) -> None:
    """Keep ``traces`` if this scored evaluation is the run's best in this process so far."""
    token = _token.get()
    if token is None:
        return
    total = float(problem.objective.total(errors))
    kept = _kept.get(token)
    if kept is None or total < kept[0]:
        # copies: a simulator may hand out arrays it fills again on its next run
        _kept[token] = (total, np.array(values, dtype=float), copy.deepcopy(traces))


def take(token: str, values: np.ndarray) -> list[Trace] | None:
    """The run's kept traces if they are those of ``values`` (and forget the run either way)."""
    kept = _kept.pop(token, None)
    if kept is not None and np.array_equal(kept[1], np.asarray(values, dtype=float)):
        return kept[2]
    return None
