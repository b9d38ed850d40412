"""`neuroptimus benchmark fronts`: what keeping Pareto fronts and hypervolumes costs a run.

1. A real many-objective run: UC1 (``hh``) with three stimulus amplitudes × its four cost
   functions = 12 objectives, fitted by pygmo's NSGA-II through the command line; the share
   of its wall time spent on fronts and hypervolumes.
2. The worst case, without simulations: generations whose points all lie on a sphere in 12-D
   (every point is on the front, so it grows by a whole population per generation), written
   to a store as the optimize flow writes them, with a pause standing in for the evaluation;
   the time each generation costs the run, and how the hypervolumes ended (exact, FPRAS with
   its error, skipped).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from neuroptimus.flows.benchmarks.overhead import describe_run, run_command_line, write_figures
from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.loop.runner import Checkpoint
from neuroptimus.optimization.problem.problem_file import with_overrides
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.runs import hypervolume as hv
from neuroptimus.storage.runs.run_store import RunStore

AMPLITUDES_NA = [0.2, 0.3, 0.4]


def many_objective_spec(spec: ProblemSpec, population: int, generations: int) -> ProblemSpec:
    """UC1 with three sweeps (one per amplitude), each scored by every cost function."""
    stimulus = spec.protocol.stimulus.model_copy(update={"amplitudes": AMPLITUDES_NA})
    protocol = spec.protocol.model_copy(update={"stimulus": stimulus})
    spec = spec.model_copy(update={"protocol": protocol, "stopping": type(spec.stopping)()})
    return with_overrides(
        spec, algorithm="pygmo-nsga2", population=population, generations=generations
    )


def real_run(spec: ProblemSpec, population: int, generations: int, workers: int) -> dict:
    spec = many_objective_spec(spec, population, generations)
    with tempfile.TemporaryDirectory() as folder:
        figures = run_command_line(spec, workers, Path(folder))
    print(f"\n{spec.name}, {len(AMPLITUDES_NA)} sweeps × {len(spec.costs.functions)} costs, "
          f"{spec.algorithm.name}, population {population}:")  # fmt: skip
    print(describe_run(figures))
    return figures


def _sphere(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    points = np.abs(rng.normal(size=(n, k)))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def worst_case(
    generations: int, population: int, objectives: int, pause_s: float, seed: int = 0
) -> dict:
    """Write ``generations`` of mutually non-dominated points (see the module's doc)."""
    rng = np.random.default_rng(seed)
    costs: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        store = RunStore.create(
            Path(folder) / "worst.zarr", ["x"], [f"f{j}" for j in range(objectives)],
            {"weights": [1.0] * objectives, "penalty": 2.0, "pareto_fronts": True},
        )  # fmt: skip
        store.write_behind = True  # as the optimize flow writes
        for generation in range(generations):
            errors = _sphere(population, objectives, rng)
            n = len(errors)
            result = BatchResult(errors, errors.sum(axis=1), np.zeros(n, np.int8), [""] * n,
                                 np.zeros(n), ["w"] * n)  # fmt: skip
            started = time.perf_counter()
            store.write_generation(generation, generation * n, np.zeros((n, 1)), result, pause_s)
            store.commit(Checkpoint(generation + 1, (generation + 1) * n, b"", {}))
            costs.append(time.perf_counter() - started)
            time.sleep(pause_s)  # the evaluation of the next generation
        started = time.perf_counter()
        store.set_attributes(finished="benchmark")
        finish = time.perf_counter() - started
        stats = store.generations()
        profile = store.profile()
        store.close()
    methods = stats["hypervolume_method"]
    approximate = methods == hv.FPRAS
    figures = {
        "generations": generations,
        "population": population,
        "objectives": objectives,
        "final_front_size": int(stats["front_size"][-1]),
        "critical_ms_per_generation_median": 1000 * statistics.median(costs),
        "critical_ms_per_generation_max": 1000 * max(costs),
        "finish_wait_seconds": finish,
        "background_front_seconds": profile.get("fronts_seconds", 0.0),
        "hypervolume_cpu_seconds": profile.get("hypervolume_cpu_seconds", 0.0),
        **{
            f"hypervolumes_{name}": int(np.count_nonzero(methods == code))
            for code, name in enumerate(hv.METHODS)
            if code != hv.NONE
        },  # fmt: skip
        "largest_exact_front": int(stats["front_size"][methods == hv.EXACT].max(initial=0)),
        "fpras_error_max": float(stats["hypervolume_error"][approximate].max(initial=0.0)),
    }
    print(
        f"\nworst case: {generations} generations of {population} mutually non-dominated "
        f"points in {objectives}-D (front of {figures['final_front_size']} at the end), "
        f"{pause_s:g} s per evaluation\n"
        f"time each generation costs the run: median "
        f"{figures['critical_ms_per_generation_median']:.2f} ms, max "
        f"{figures['critical_ms_per_generation_max']:.2f} ms; finishing waited "
        f"{finish:.1f} s for the last hypervolume\n"
        f"hypervolumes: {figures['hypervolumes_exact']} exact (fronts up to "
        f"{figures['largest_exact_front']} points), {figures['hypervolumes_bf_fpras']} FPRAS "
        f"(relative error ≤ {figures['fpras_error_max']:.3g} with probability {1 - hv.DELTA:g}), "
        f"{figures['hypervolumes_skipped']} skipped, {figures['hypervolumes_failed']} failed, "
        f"{figures['hypervolumes_pending']} pending; "
        f"{figures['hypervolume_cpu_seconds']:.1f} s of CPU in the helper and "
        f"{figures['background_front_seconds']:.1f} s merging fronts beside the run"
    )
    return figures


def fronts_benchmark(
    spec: ProblemSpec,
    population: int = 100,
    generations: int = 20,
    workers: int = 2,
    worst_generations: int = 30,
    pause_s: float = 1.0,
    csv: str | Path | None = None,
    real: bool = True,
) -> dict[str, dict]:
    """Both measurements; returns them by scenario (and writes them to ``csv``)."""
    scenarios = {}
    if real:
        scenarios["uc1-3x4-nsga2"] = real_run(spec, population, generations, workers)
    scenarios["worst-case-sphere-12d"] = worst_case(worst_generations, population, 12, pause_s)
    if csv:
        write_figures(csv, scenarios)
        print(f"figures written to {csv}")
    return scenarios
