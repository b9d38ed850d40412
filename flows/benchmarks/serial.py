"""Benchmark: does a serial algorithm (islands) cost no more wall time per evaluation than a
batch algorithm on the same cluster? Prints wall time per algorithm and the ratios, writes a
CSV. The runs share one cluster, started before the clocks run."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from neuroptimus.flows.benchmarks.overhead import write_rows
from neuroptimus.flows.optimize import optimize_flow
from neuroptimus.flows.setup import setup_flow
from neuroptimus.optimization.algorithms import create_algorithm
from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster
from neuroptimus.optimization.problem.problem_file import with_overrides
from neuroptimus.optimization.problem.spec import ProblemSpec, StoppingSpec
from neuroptimus.storage.runs.run_store import RunStore

COLUMNS = (
    "problem",
    "algorithm",
    "islands",
    "workers",
    "population",
    "evaluations",
    "generations",
    "wall_seconds",
    "ms_per_evaluation",
    "evaluation_seconds",
    "ratio_to_reference",
)


def serial_spec(problem: ProblemSpec, algorithm: str, evaluations: int, seed: int) -> ProblemSpec:
    """The same evaluation budget for every algorithm; nothing else stops a run early."""
    population = problem.algorithm.population
    generations = -(-evaluations // population)
    spec = with_overrides(
        problem,
        algorithm=algorithm,
        population=population,
        generations=generations,
        seed=seed,
        max_evaluations=evaluations,
    )
    return spec.model_copy(update={"stopping": StoppingSpec(max_evaluations=evaluations)})


def serial_benchmark(
    problem: ProblemSpec,
    algorithms: list[str],
    evaluations: int,
    workers: int,
    seed: int = 1,
    output: str | Path = "serial-benchmark.csv",
) -> list[dict]:
    """Run each algorithm for ``evaluations`` evaluations on one LocalCluster of ``workers``
    and compare wall time per evaluation with the last algorithm (the reference, e.g. cmaes)."""

    rows = []
    config = ClusterConfig(workers=workers)
    with make_cluster(config) as cluster, tempfile.TemporaryDirectory() as folder:
        shared = config.model_copy(update={"address": cluster.scheduler_address})
        for algorithm in algorithms:
            spec = serial_spec(problem, algorithm, evaluations, seed)
            store = str(Path(folder) / f"{algorithm}.zarr")
            setup_flow(spec, store)
            started = time.perf_counter()
            optimize_flow(store, shared)
            wall = time.perf_counter() - started
            run = RunStore.open(store)
            done = run.committed_evaluations
            instance = create_algorithm(algorithm, len(spec.parameters), spec.algorithm.population,
                                        seed, dict(spec.algorithm.settings))  # fmt: skip
            islands = getattr(instance, "islands", 1)
            instance.close()
            rows.append(
                {
                    "problem": spec.name,
                    "algorithm": algorithm,
                    "islands": islands if not instance.info.parallel else "",
                    "workers": workers,
                    "population": spec.algorithm.population,
                    "evaluations": done,
                    "generations": run.committed_generations,
                    "wall_seconds": round(wall, 3),
                    "ms_per_evaluation": round(wall / done * 1000, 3),
                    "evaluation_seconds": round(float(run.evaluations()["seconds"].sum()), 3),
                }
            )
    reference = rows[-1]["ms_per_evaluation"]
    for row in rows:
        row["ratio_to_reference"] = round(row["ms_per_evaluation"] / reference, 3)
    _print(rows)
    write_rows(output, rows, COLUMNS)
    print(f"written: {output}")
    return rows


def _print(rows: list[dict]) -> None:
    reference = rows[-1]["algorithm"]
    print(f"{'algorithm':<22} {'evaluations':>11} {'generations':>11} {'wall s':>8} "
          f"{'ms/eval':>8} {'ratio':>6}")  # fmt: skip
    for row in rows:
        print(
            f"{row['algorithm']:<22} {row['evaluations']:>11} {row['generations']:>11} "
            f"{row['wall_seconds']:>8.2f} {row['ms_per_evaluation']:>8.2f} "
            f"{row['ratio_to_reference']:>6.2f}"
        )
    print(f"ratio: wall time per evaluation ÷ that of {reference}")
