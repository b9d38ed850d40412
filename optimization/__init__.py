"""Neuroptimus library: problem specs, simulators, cost functions, algorithms, evaluation.

Usable without any server::

    from optimization import load_problem, build_problem, evaluate_batch
"""

from optimization.evaluation import BatchResult, evaluate_batch, evaluate_one
from optimization.problem import Problem, build_problem
from optimization.spec import ProblemSpec, SpecError, load_problem

__all__ = [
    "BatchResult",
    "Problem",
    "ProblemSpec",
    "SpecError",
    "build_problem",
    "evaluate_batch",
    "evaluate_one",
    "load_problem",
]
