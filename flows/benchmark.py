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


def _model_cpu(key: str, points: np.ndarray) -> float:
    """CPU seconds per individual of evaluating ``points`` in a plain loop (on a worker)."""
    from optimization.dask_evaluator import installed_problem
    from optimization.evaluation import evaluate_batch

    started = time.process_time()
    evaluate_batch(installed_problem(key), points)
    return (time.process_time() - started) / len(points)


def _cpu_seconds(client) -> tuple[float, float]:
    """CPU seconds used so far by all workers, and by this (client + scheduler) process."""
    return sum(client.run(time.process_time).values()), time.process_time()


def orchestration(
    spec: ProblemSpec, individuals: int, workers: int, repeats: int, chunk_settings: list[int]
) -> None:
    """Print the orchestration cost per individual of one generation of a cheap model (the
    problem's model simulated for 1 ms with its first cost function) on a LocalCluster, for
    each number of chunks per worker (0: a task per individual) and the default chunking."""
    import os
    import statistics

    from optimization.cluster import ClusterConfig, connect
    from optimization.dask_evaluator import DaskEvaluator
    from optimization.problem import build_problem

    protocol = spec.protocol.model_copy(update={"tstop_ms": 1.0})
    costs = spec.costs.model_copy(update={"functions": spec.costs.functions[:1]})
    problem = build_problem(spec.model_copy(update={"protocol": protocol, "costs": costs}))
    rng = np.random.default_rng(0)
    points = problem.space.to_real(rng.random((individuals, problem.space.dimension)))
    started = time.perf_counter()
    with connect(ClusterConfig(workers=workers)) as client:
        client.wait_for_workers(workers)
        print(f"{workers} workers on {os.cpu_count()} cores started in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        DaskEvaluator(client, problem)(points)  # installs the model on every worker
        first = next(iter(client.scheduler_info(n_workers=-1)["workers"]))
        model = client.run(_model_cpu, problem.identity, points[:200], workers=[first])[first]
        before = _cpu_seconds(client)
        time.sleep(2.0)
        after = _cpu_seconds(client)
        idle_workers, idle_client = (after[0] - before[0]) / 2.0, (after[1] - before[1]) / 2.0
        print(
            f"the model alone: {model * 1e3:.3f} ms CPU per individual; the idle cluster uses "
            f"{idle_workers * 1e3:.0f} ms/s CPU in its workers, {idle_client * 1e3:.0f} ms/s "
            f"in the client\n\n{individuals} individuals per generation, median of {repeats} "
            f"generations\n{'chunks/worker':>13} {'tasks':>6} {'wall ms':>8} {'wall ms/ind':>11} "
            f"{'client+scheduler CPU ms/ind':>27} {'workers CPU beyond model ms/ind':>31}"
        )
        fixed = ClusterConfig(workers=workers, min_task_s=0)  # exactly the chunks asked for
        for setting in [*chunk_settings, None]:
            if setting is None:  # the default: chunks sized by the last generation's timings
                name, evaluator = "default", DaskEvaluator(client, problem)
            else:
                name = str(setting or "individual")
                evaluator = DaskEvaluator(client, problem, setting or individuals, fixed)
            evaluator(points)  # warm-up (and timings for the default)
            walls, ours, theirs = [], [], []
            for _ in range(repeats):
                before = _cpu_seconds(client)
                started = time.perf_counter()
                evaluator(points)
                walls.append(time.perf_counter() - started)
                after = _cpu_seconds(client)
                theirs.append(after[0] - before[0])
                ours.append(after[1] - before[1])
            wall = statistics.median(walls)
            client_cpu = statistics.median(ours) / individuals
            worker_cpu = statistics.median(theirs) / individuals - model
            print(
                f"{name:>13} {evaluator._chunks(individuals):>6} {wall * 1e3:>8.0f} "
                f"{wall / individuals * 1e3:>11.3f} {client_cpu * 1e3:>27.3f} "
                f"{worker_cpu * 1e3:>31.3f}"
            )
    print(
        "\ndefault: up to 4 chunks per worker, fewer when a chunk would carry less than 0.1 s "
        "of simulation. wall: one generation (on a busy machine it shows the machine, not the "
        "framework). client+scheduler: the serial part, per individual. workers: CPU spent on "
        "the generation beyond the model's own cost (idle activity included)."
    )
