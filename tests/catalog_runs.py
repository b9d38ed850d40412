"""Real, tiny run stores for the catalog tests: the bundled ``hh`` problem (use case 1) fitted
by CMA-ES with a population of 4 for 2 generations, evaluated by NEURON in a process of its
own (NEURON keeps one model per process)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path


def _run(store: str, seed: int, population: int, generations: int) -> str:
    from neuroptimus.optimization.evaluation.individual import evaluate_batch
    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
    from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
    from neuroptimus.storage.runs.create import create_run_store
    from neuroptimus.usecases import problem_path

    spec = with_overrides(load_problem(problem_path("hh")), population=population,
                          generations=generations, seed=seed)  # fmt: skip
    problem = build_problem(spec)  # regenerates the target from the true values
    run_store = create_run_store(problem, store)
    run_to_end(OptimizationRun(problem, run_store), lambda points: evaluate_batch(problem, points))
    run_store.close()
    return store


def hh_store(path: Path, seed: int = 3, population: int = 4, generations: int = 2) -> Path:
    """A finished run store of ``hh`` at ``path``."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return Path(pool.submit(_run, str(path), seed, population, generations).result())
