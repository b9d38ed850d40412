"""Benchmark flow: every algorithm × seed as its own optimize run on one shared Dask cluster,
then the paper's scores and comparison plots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from prefect import flow, get_run_logger, task
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from neuroptimus.flows.optimize import optimize_flow
from neuroptimus.flows.run import resolve_cluster, resolve_problem
from neuroptimus.flows.setup import setup_flow
from neuroptimus.optimization.algorithms import ALGORITHMS
from neuroptimus.optimization.execution.cluster import ClusterConfig, make_cluster
from neuroptimus.optimization.problem.problem_file import with_overrides
from neuroptimus.optimization.problem.spec import ProblemSpec, StoppingSpec
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.storage.runs.metadata import write_metadata
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.tasks.catalog import push_to_catalog


def benchmark_spec(
    problem: ProblemSpec, population: int, generations: int, error_target: float | None = None
) -> ProblemSpec:
    """The paper's protocol: the same evaluation budget for every algorithm, nothing else
    stops a run early (an algorithm may still stop when it has converged by its own rule)
    but ``error_target`` when given."""
    spec = with_overrides(problem, population=population, generations=generations)
    return spec.model_copy(update={"stopping": StoppingSpec(error_target=error_target)})


def check_algorithms(names: list[str]) -> None:
    """Fail before anything runs when a name is not a registered algorithm (or a chain of
    them, ``cmaes+scipy-nelder-mead``)."""
    unknown = [name for name in names if not all(s in ALGORITHMS for s in name.split("+"))]
    if unknown or not names:
        raise SpecError(
            f"unknown algorithm(s) {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(ALGORITHMS)}"
        )


def run_store_path(folder: Path, algorithm: str, seed: int) -> Path:
    """Where a benchmark keeps one algorithm × seed run."""
    return folder / f"{algorithm}-seed{seed}.zarr"


def default_folder(spec: ProblemSpec) -> str:
    """A new folder per benchmark: ``runs/benchmark-<name>-<time>``."""
    return f"runs/benchmark-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}"


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
def compare_runs(
    stores: list[str], folder: str, title: str, thresholds: list[float]
) -> dict[str, str]:
    from neuroptimus.analysis.comparison import write_comparison  # noqa: PLC0415 (lazy: the serial and budget benchmarks import this module without HoloViews)

    return write_comparison(stores, folder, title, thresholds)


def _stored_evaluations(path: Path) -> int:
    return RunStore.open(path).committed_evaluations if (path / "zarr.json").is_file() else 0


def pending_runs(spec: ProblemSpec, stores: list[Path]) -> list[Path]:
    """The stores still to (create and) run; finished ones are reused as they are. A store
    left by a benchmark of another budget is refused: its scores would not be comparable."""
    pending = []
    for path in stores:
        if not (path / "zarr.json").is_file():
            pending.append(path)
            continue
        attrs = RunStore.open(path).attrs
        if attrs["budget"] != spec.budget:
            raise SpecError(
                f"{path} was run with a budget of {attrs['budget']} evaluations, this benchmark "
                f"asks {spec.budget}: use another folder or the same population × generations"
            )
        if not attrs.get("finished"):
            pending.append(path)
    return pending


def record_session(
    folder: Path, started: float, runs: int, simulated: int, simulations: int, workers: int
) -> Path:
    """Append this invocation to ``sessions.csv``: the benchmark's wall time and what it
    simulated. Rewriting the tables of a finished folder adds a row with 0 simulations and
    keeps the rows of the sessions that ran the optimizations."""
    path = folder / "sessions.csv"
    header = "started_utc,wall_seconds,runs,runs_simulated,simulations,workers\n"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    row = f"{stamp},{time.time() - started:.1f},{runs},{simulated},{simulations},{workers}\n"
    with open(path, "a") as handle:
        if handle.tell() == 0:
            handle.write(header)
        handle.write(row)
    return path


@flow(name="benchmark-algorithms", task_runner=ThreadPoolTaskRunner(max_workers=4))
def benchmark_flow(
    problem: ProblemSpec | None = None,
    algorithms: list[str] = ["cmaes", "inspyred-pso", "bluepyopt-ibea", "random"],  # noqa: B006
    seeds: Annotated[int, Field(ge=1)] = 10,
    population: Annotated[int, Field(ge=1)] = 100,
    generations: Annotated[int, Field(ge=1)] = 100,
    folder: str | None = None,
    cluster: ClusterConfig | None = None,
    cluster_profile: str | None = None,
    progress: bool = False,
    usecase: str | None = None,
    thresholds: list[float] = [1e-10],  # noqa: B006
    catalog_url: str | None = None,
    error_target: float | None = None,
) -> dict[str, str]:
    """Run each algorithm with seeds 1…``seeds`` (budget population × generations each) and
    write ``runs.csv``, ``summary.csv``, ``comparison.html`` and a row of ``sessions.csv``
    into ``folder``. On a folder of finished runs nothing is simulated (no cluster starts):
    the tables and the page are rewritten from the stores.

    Args:
        problem: The full problem (used when no use case is named below).
        algorithms: Registry names of the algorithms to compare (see `neuroptimus algorithms`);
            `a+b` chains them (the last stage takes a fifth of the budget).
        seeds: Runs per algorithm, with seeds 1…N.
        population: Individuals per generation.
        generations: Generations; every run gets population x generations evaluations.
        folder: Where the run stores and the comparison go. Empty: a new
            runs/benchmark-NAME-TIME folder. An existing folder is continued: finished runs
            are reused, interrupted ones resumed.
        cluster: The Dask cluster shared by all runs. Empty: a local cluster.
        cluster_profile: Instead of cluster: a profile name (local, slurm, pbs …) or YAML path.
        progress: Print a line per finished run (command line).
        usecase: A bundled use case (hh, vclamp) or a problem YAML path; when given, it is
            the problem and the form above is ignored.
        thresholds: Errors for which the tables give the evaluations a run needed to reach
            them, and how many runs did.
        catalog_url: Push every run to this results catalog at the end (token:
            NEUROPTIMUS_CATALOG_TOKEN). Empty: NEUROPTIMUS_CATALOG_URL, if set. A failed push
            is logged as a warning and never fails the benchmark.
        error_target: Stop a run once its best total error is at or below this (empty:
            every run uses its whole budget, as in the paper).
    """
    logger = get_run_logger()
    started = time.time()
    spec = benchmark_spec(resolve_problem(problem, usecase), population, generations, error_target)
    check_algorithms(algorithms)
    root = Path(folder or default_folder(spec))
    root.mkdir(parents=True, exist_ok=True)
    runs = [
        (algorithm, seed, run_store_path(root, algorithm, seed))
        for algorithm in algorithms
        for seed in range(1, seeds + 1)
    ]
    pending = pending_runs(spec, [path for *_, path in runs])
    before = sum(_stored_evaluations(path) for path in pending)
    workers = 0
    if pending:
        cluster = resolve_cluster(cluster, cluster_profile) or ClusterConfig()
        with make_cluster(cluster) as dask_cluster:
            shared = cluster.model_copy(update={"address": dask_cluster.scheduler_address})
            futures = [
                algorithm_run.submit(spec, algorithm, seed, str(path), shared)
                for algorithm, seed, path in runs
                if path in pending
            ]
            # every run ends before the shared cluster closes, whether another failed or not
            failures = []
            for done, future in enumerate(futures, start=1):
                try:
                    store = future.result()
                except Exception as error:
                    failures.append(error)
                    continue
                if progress:
                    print(f"{done}/{len(futures)} runs done: {store}", flush=True)
            if failures:
                raise RuntimeError(
                    f"{len(failures)} of {len(futures)} runs failed (the first error follows); "
                    f"run the benchmark again on {root} to reuse the finished runs and resume "
                    "the others"
                ) from failures[0]
            workers = len(dask_cluster.scheduler_info.get("workers", {}))
    else:
        logger.info("every run in %s has finished: rewriting the comparison only", root)
    stores = [str(path) for *_, path in runs]
    simulations = sum(_stored_evaluations(path) for path in pending) - before
    sessions = record_session(root, started, len(runs), len(pending), simulations, workers)
    logger.info("%d runs finished; comparing", len(stores))
    title = f"{spec.name}: {len(algorithms)} algorithms × {seeds} seeds, budget {spec.budget}"
    paths = compare_runs(stores, str(root), title, list(thresholds))
    push_to_catalog(stores, catalog_url)  # re-pushing a reused run changes nothing
    return {**paths, "sessions": str(sessions)}
