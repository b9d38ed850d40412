"""Benchmarks of the framework itself (printed ratios, not timed tests)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from optimization.spec import ProblemSpec


def bare_simulation_seconds(spec: ProblemSpec, repeats: int = 20) -> tuple[float, float]:
    """Median seconds of one bare simulation, and of simulation + scoring, in a fresh process."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_time_bare, spec, repeats).result()


def _time_bare(spec: ProblemSpec, repeats: int) -> tuple[float, float]:
    from optimization.problem import build_problem, true_values
    from optimization.simulators import create_simulator

    simulator = create_simulator(spec)
    simulator.setup()
    middle = {p.name: (p.lower + p.upper) / 2 for p in spec.parameters}
    simulator.run(middle)
    simulate = []
    for _ in range(repeats):
        started = time.perf_counter()
        traces = simulator.run(middle)
        simulate.append(time.perf_counter() - started)
    targets = (
        [t.values for t in simulator.run(true_values(spec))] if spec.target.regenerate else None
    )
    objective = build_problem(spec, targets).objective
    score = []
    for _ in range(repeats):
        started = time.perf_counter()
        objective.errors(traces)
        score.append(time.perf_counter() - started)
    return float(np.median(simulate)), float(np.median(simulate) + np.median(score))


def overhead(spec: ProblemSpec, population: int, generations: int, workers: int, seed: int) -> dict:
    """Run one full optimization (setup → optimize → analyze flows) on a LocalCluster and print
    its parallel efficiency: Σ(evaluation seconds) ÷ (wall seconds × workers)."""
    from flows.optimize import optimize_flow
    from flows.setup import setup_flow
    from optimization.cluster import ClusterConfig
    from optimization.spec import with_overrides
    from storage.run_store import RunStore

    spec = with_overrides(spec, population=population, generations=generations, seed=seed)
    spec = spec.model_copy(update={"stopping": type(spec.stopping)()})  # the whole budget
    bare, bare_scored = bare_simulation_seconds(spec)
    print(
        f"bare simulation of {spec.name}: {bare * 1000:.1f} ms "
        f"(with scoring {bare_scored * 1000:.1f} ms)"
    )
    with tempfile.TemporaryDirectory() as folder:
        store = str(Path(folder) / "run.zarr")
        setup_flow(spec, store)
        started = time.perf_counter()
        optimize_flow(store, ClusterConfig(workers=workers))
        wall = time.perf_counter() - started
        run = RunStore.open(store)
        evaluations = run.evaluations()
        generation_walls = run.generations()["seconds"].sum()
    busy = float(evaluations["seconds"].sum())
    n = len(evaluations["total"])
    figures = {
        "evaluations": n,
        "workers": workers,
        "wall_seconds": wall,
        "evaluation_seconds": busy,
        "mean_evaluation_ms": busy / n * 1000,
        "bare_simulation_ms": bare * 1000,
        "bare_scored_ms": bare_scored * 1000,
        "efficiency": busy / (wall * workers),
        "efficiency_generations_only": busy / (generation_walls * workers),
        "ideal_wall_seconds": n * bare_scored / workers,
    }
    print(
        f"{n} evaluations on {workers} workers in {wall:.1f} s wall "
        f"(ideal {figures['ideal_wall_seconds']:.1f} s from the bare model)\n"
        f"mean evaluation inside the framework: {figures['mean_evaluation_ms']:.1f} ms\n"
        f"parallel efficiency (whole optimize flow, cluster start included): "
        f"{figures['efficiency']:.3f}\n"
        f"parallel efficiency (generation evaluation only): "
        f"{figures['efficiency_generations_only']:.3f}"
    )
    return figures
