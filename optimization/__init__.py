"""Neuroptimus library: problem specs, simulators, cost functions, algorithms, evaluation.

Usable without any server::

    from neuroptimus.optimization import load_problem, build_problem, evaluate_batch

The names below load on first use, so that importing a light module of the package (such as
``neuroptimus.optimization.locks``, which the command line needs before it starts Prefect's
server) does not import NumPy, pydantic and the simulators first.
"""

import importlib

_HOMES = {
    "BatchResult": "neuroptimus.optimization.evaluation.individual",
    "evaluate_batch": "neuroptimus.optimization.evaluation.individual",
    "evaluate_one": "neuroptimus.optimization.evaluation.individual",
    "Problem": "neuroptimus.optimization.evaluation.problem",
    "build_problem": "neuroptimus.optimization.evaluation.problem",
    "ProblemSpec": "neuroptimus.optimization.problem.spec",
    "SpecError": "neuroptimus.optimization.problem.spec_base",
    "load_problem": "neuroptimus.optimization.problem.problem_file",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


__all__ = sorted(_HOMES)
