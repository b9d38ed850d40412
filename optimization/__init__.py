"""Neuroptimus library: problem specs, simulators, cost functions, algorithms, evaluation.

Usable without any server::

    from optimization import load_problem, build_problem, evaluate_batch

The names below load on first use, so that importing a light module of the package (such as
``optimization.locks``, which the command line needs before it starts Prefect's server) does
not import NumPy, pydantic and the simulators first.
"""

import importlib

_HOMES = {
    "BatchResult": "optimization.evaluation",
    "evaluate_batch": "optimization.evaluation",
    "evaluate_one": "optimization.evaluation",
    "Problem": "optimization.problem",
    "build_problem": "optimization.problem",
    "ProblemSpec": "optimization.spec",
    "SpecError": "optimization.spec",
    "load_problem": "optimization.spec",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'optimization' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


__all__ = sorted(_HOMES)
