"""Benchmark flow: every algorithm × seed as its own optimize run on one shared Dask cluster,
then the paper's scores and comparison plots."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.task_runners import ThreadPoolTaskRunner

from flows.optimize import optimize_flow
from flows.setup import setup_flow
from optimization.cluster import ClusterConfig, make_cluster
from optimization.spec import ProblemSpec, StoppingSpec, with_overrides
from storage.metadata import write_metadata
from storage.run_store import RunStore


def benchmark_spec(problem: ProblemSpec, population: int, generations: int) -> ProblemSpec:
    """The paper's protocol: the same evaluation budget for every algorithm, nothing else
    stops a run early (an algorithm may still stop when it has converged by its own rule)."""
    spec = with_overrides(problem, population=population, generations=generations)
    return spec.model_copy(update={"stopping": StoppingSpec()})


@task(name="algorithm-run", task_run_name="{algorithm}-seed{seed}", retries=1)
def algorithm_run(
    problem: ProblemSpec, algorithm: str, seed: int, store: str, cluster: ClusterConfig
) -> str:
    """One algorithm × seed run in its own store: created, resumed if interrupted, or reused
    if it has already finished (a benchmark can be continued after a crash)."""
    path = Path(store)
    if (path / "zarr.json").is_file():
        if RunStore.open(path).attrs.get("finished"):
            return store
    else:
        setup_flow(with_overrides(problem, algorithm=algorithm, seed=seed), store)
    result = optimize_flow(store, cluster)
    write_metadata(RunStore.open(store), path / "metadata.json")
    get_run_logger().info(
        "%s seed %d: best %.4g after %d evaluations", algorithm, seed, result["total"],
        result["evaluations"],
    )  # fmt: skip
    return store


@task(name="compare-runs")
def compare_runs(stores: list[str], folder: str, title: str) -> dict[str, str]:
    from analysis.comparison import write_comparison

    return write_comparison(stores, folder, title)


@flow(name="benchmark-algorithms", task_runner=ThreadPoolTaskRunner(max_workers=4))
def benchmark_flow(
    problem: ProblemSpec,
    algorithms: list[str],
    seeds: int = 10,
    population: int = 100,
    generations: int = 100,
    folder: str = "runs/benchmark",
    cluster: ClusterConfig | None = None,
    progress: bool = False,
) -> dict[str, str]:
    """Run each algorithm with seeds 1…``seeds`` (budget population × generations each) and
    write ``runs.csv``, ``summary.csv`` and ``comparison.html`` into ``folder``."""
    logger = get_run_logger()
    spec = benchmark_spec(problem, population, generations)
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    cluster = cluster or ClusterConfig()
    with make_cluster(cluster) as dask_cluster:
        shared = cluster.model_copy(update={"address": dask_cluster.scheduler_address})
        futures = [
            algorithm_run.submit(
                spec, algorithm, seed, str(root / f"{algorithm}-seed{seed}.zarr"), shared
            )
            for algorithm in algorithms
            for seed in range(1, seeds + 1)
        ]
        stores = []
        for future in futures:
            stores.append(future.result())
            if progress:
                print(f"{len(stores)}/{len(futures)} runs done: {stores[-1]}", flush=True)
    logger.info("%d runs finished; comparing", len(stores))
    title = f"{spec.name}: {len(algorithms)} algorithms × {seeds} seeds, budget {spec.budget}"
    return compare_runs(stores, str(root), title)
