"""Benchmark: do serial and local algorithms use their evaluation budget?

Each algorithm that runs as islands or restarts by itself (Nelder-Mead, L-BFGS-B, Praxis, DE …)
gets the same budget on two problems: use case 1 (``hh``, its error target kept, no stagnation
rule) and a 10-D shifted Rastrigin function. A run uses its budget unless the error target ends
it; before restarts, islands that converged ended runs with budget left. The runs go through
the framework's own loop and run store (``OptimizationRun``, ``run_to_end``) and are evaluated
in this process, one after the other: the figures are evaluations, not wall time.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from neuroptimus.flows.benchmarks.overhead import machine, write_rows
from neuroptimus.optimization.algorithms import ALGORITHMS
from neuroptimus.optimization.evaluation.individual import BatchResult, evaluate_batch
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length, load_targets
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.optimization.problem.problem_file import parse_problem, with_overrides
from neuroptimus.optimization.problem.spec import ProblemSpec, StoppingSpec
from neuroptimus.storage.runs.create import create_run_store

COLUMNS = (
    "problem",
    "algorithm",
    "islands",
    "restarts",
    "budget",
    "evaluations",
    "used_percent",
    "stop_reason",
    "best_total",
    "uses_budget",
    "seconds",
    "machine",
    "date",
)
TEST_FUNCTION = "rastrigin"  # named rastrigin-<d>d in the table
SHIFT = 1.0  # the optimum is away from the cube centre, where local methods start


def budget_algorithms() -> list[str]:
    """Serial algorithms (islands) and those that restart when their library stops."""

    return [
        name
        for name, cls in ALGORITHMS.items()
        if not cls.info.parallel or "restarts" in cls.info.defaults
    ]


def rastrigin(points: np.ndarray) -> np.ndarray:
    """Rastrigin on [-5.12, 5.12]^d, shifted by ``SHIFT``, over the unit cube (minimum 0)."""
    z = 10.24 * np.atleast_2d(points) - 5.12 - SHIFT
    return 10.0 * z.shape[1] + (z**2 - 10.0 * np.cos(2.0 * math.pi * z)).sum(axis=1)


def budget_spec(
    problem: ProblemSpec, algorithm: str, evaluations: int, seed: int, restarts: int | None = None
) -> ProblemSpec:
    """``problem`` run by ``algorithm`` for at most ``evaluations``; its error target stays,
    the stagnation rule goes (it would end a run for another reason than the budget).
    ``restarts`` sets that setting of the algorithms that have it (None: their default)."""

    spec = with_overrides(problem, algorithm=algorithm, seed=seed, max_evaluations=evaluations)
    stopping = StoppingSpec(max_evaluations=evaluations, error_target=problem.stopping.error_target)
    settings = {}
    if restarts is not None and "restarts" in ALGORITHMS[algorithm].info.defaults:
        settings["restarts"] = restarts
    algorithm_spec = spec.algorithm.model_copy(update={"settings": settings})
    return spec.model_copy(update={"stopping": stopping, "algorithm": algorithm_spec})


def test_function_spec(problem: ProblemSpec, dimension: int) -> ProblemSpec:
    """``problem`` with ``dimension`` parameters in [0, 1] and no error target: the analytic
    function replaces its model, which is never run (so the runner and store are the real
    ones, with the function's dimension)."""
    data = problem.model_dump()
    template = {key: value for key, value in data["parameters"][0].items() if value is not None}
    optimum = (5.12 + SHIFT) / 10.24
    data["parameters"] = [
        {**template, "name": f"x{i}", "lower": 0.0, "upper": 1.0, "true_value": optimum}
        for i in range(dimension)
    ]
    data["name"] = TEST_FUNCTION
    data["stopping"]["error_target"] = None
    return parse_problem(data, source="budget benchmark", base_dir=problem.base_dir)


def _analytic(problem, function: Callable[[np.ndarray], np.ndarray]):
    """An evaluator giving every cost component the function's value (the weights sum to 1,
    so the total is the value)."""

    components = len(problem.objective.weights)

    def evaluate(values: np.ndarray) -> BatchResult:
        totals = function(problem.space.to_unit(values))
        n = len(totals)
        errors = np.repeat(totals[:, None], components, axis=1)
        return BatchResult(errors, totals, np.zeros(n, np.int8), [""] * n, np.zeros(n),
                           ["here"] * n)  # fmt: skip

    return evaluate


def _run(problem, evaluate, folder: Path) -> tuple[int, str, float, int | str]:
    """Evaluations used, why the run stopped, its best total, and its islands."""

    store = create_run_store(problem, folder / f"{problem.spec.algorithm.name}.zarr")
    run = OptimizationRun(problem, store)
    islands = "" if run.algorithm.info.parallel else run.algorithm.islands
    try:
        reason = run_to_end(run, evaluate)
    finally:
        run.algorithm.close()
    return run.evaluations, reason, run.stopping.best, islands


def budget_benchmark(
    uc1: ProblemSpec,
    algorithms: list[str],
    evaluations: int = 3000,
    dimension: int = 10,
    seed: int = 1,
    output: str | Path = "budget-benchmark.csv",
    problems: tuple[str, ...] = (TEST_FUNCTION, "hh"),
    say: Callable[[str], None] = print,
    restarts: int | None = None,
) -> list[dict]:
    """Run every algorithm on each problem with ``evaluations`` as budget (``restarts``: that
    setting, for comparison; None: the default); the CSV is rewritten after each run (a long
    benchmark leaves what it has done)."""

    unknown = [name for name in problems if name not in (TEST_FUNCTION, "hh")]
    if unknown or not problems:
        raise ValueError(f"unknown problem(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {TEST_FUNCTION}, hh")  # fmt: skip
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    rows: list[dict] = []
    say(f"{'problem':<14} {'algorithm':<20} {'used':>6} {'%':>6} {'best':>10}  stop reason")
    with tempfile.TemporaryDirectory() as folder:
        for name in problems:
            analytic = name == TEST_FUNCTION
            base = test_function_spec(uc1, dimension) if analytic else uc1
            # the model is never run for the function; UC1's target is simulated once
            targets = [np.zeros(expected_length(base))] if analytic else load_targets(base)
            for algorithm in algorithms:
                spec = budget_spec(base, algorithm, evaluations, seed, restarts)
                problem = build_problem(spec, targets)
                if analytic:
                    evaluate = _analytic(problem, rastrigin)
                else:
                    evaluate = lambda values, problem=problem: evaluate_batch(problem, values)  # noqa: E731
                started = time.perf_counter()
                where = f"{machine()}, load {os.getloadavg()[0]:.1f}"
                used, reason, best, islands = _run(problem, evaluate, Path(folder) / name)
                label = f"{name}-{dimension}d" if analytic else name
                target = spec.stopping.error_target
                rows.append(
                    {
                        "problem": label,
                        "algorithm": algorithm,
                        "islands": islands,
                        "restarts": spec.algorithm.settings.get("restarts", ""),
                        "budget": evaluations,
                        "evaluations": used,
                        "used_percent": round(100.0 * used / evaluations, 1),
                        "stop_reason": reason,
                        "best_total": f"{best:.6g}",
                        "uses_budget": used >= 0.95 * evaluations
                        or (target is not None and best <= target),
                        "seconds": round(time.perf_counter() - started, 1),
                        "machine": where,
                        "date": date,
                    }
                )
                row = rows[-1]
                say(f"{label:<14} {algorithm:<20} {used:>6} {row['used_percent']:>6} "
                    f"{best:>10.3g}  {reason}")  # fmt: skip
                write_rows(output, rows, list(COLUMNS))
    failing = [f"{r['problem']} {r['algorithm']}" for r in rows if not r["uses_budget"]]
    say(f"used >= 95 % of the budget or reached the error target: {len(rows) - len(failing)} of "
        f"{len(rows)} runs" + (f"; not: {', '.join(failing)}" if failing else ""))  # fmt: skip
    say(f"written: {output}")
    return rows
