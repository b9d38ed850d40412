"""The parent flow: setup → optimize → analyze."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from distributed import Client
from prefect import flow, get_run_logger
from pydantic import Field

from neuroptimus.flows.analyze import analyze_flow
from neuroptimus.flows.cluster_profiles import load_profile
from neuroptimus.flows.optimize import optimize_flow
from neuroptimus.flows.phases import mark
from neuroptimus.flows.setup import check_before_start, setup_flow
from neuroptimus.flows.validation import validate_after_run
from neuroptimus.optimization.evaluation.problem import Problem
from neuroptimus.optimization.execution.cluster import ClusterConfig, ClusterError, connect
from neuroptimus.optimization.problem.problem_file import (
    load_problem,
    parse_problem,
    with_overrides,
)
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.storage.runs.create import default_store
from neuroptimus.storage.runs.validation import read_validation
from neuroptimus.tasks.catalog import push_to_catalog
from neuroptimus.usecases import problem_path


def resolve_problem(
    problem: ProblemSpec | None = None, usecase: str | None = None, **overrides
) -> ProblemSpec:
    """The problem of a run: the use case's ``problem.yaml`` (a bundled name or a path) when
    ``usecase`` is given, else ``problem`` (checked like a problem file), with ``overrides``
    (``algorithm``, ``population``, ``generations``, ``seed``, ``warm_start``) applied."""

    if usecase:
        spec = load_problem(problem_path(usecase))
    elif problem is not None:
        # A form-given spec skipped the file checks of parse_problem: run them now, before
        # anything is simulated, so a wrong path fails with one line.
        spec = parse_problem(problem.model_dump(), "problem parameter", problem.base_dir)
    else:
        raise SpecError("give a use case name (such as hh) or a problem")
    if any(value is not None for value in overrides.values()):
        spec = with_overrides(spec, **overrides)
    return spec


def resolve_cluster(cluster: ClusterConfig | None, profile: str | None) -> ClusterConfig | None:
    """The cluster of a flow run: ``cluster`` as given, or read from the named profile."""
    if cluster is not None and profile:
        raise ClusterError("give either cluster or cluster_profile, not both")
    return load_profile(profile) if profile else cluster


@flow(name="neuroptimus-run")
def run_flow(
    problem: ProblemSpec | None = None,
    store: str | None = None,
    cluster: ClusterConfig | None = None,
    cluster_profile: str | None = None,
    progress: bool = False,
    usecase: str | None = None,
    algorithm: str | None = None,
    population: Annotated[int, Field(ge=1)] | None = None,
    generations: Annotated[int, Field(ge=1)] | None = None,
    seed: Annotated[int, Field(ge=0, lt=2**32)] | None = None,
    catalog_url: str | None = None,
    warm_start: str | None = None,
    validate_best: Annotated[int, Field(ge=0)] | None = None,
    report: bool = True,
) -> dict:
    """Optimize a problem into a new run store and write its report.

    The problem is the use case ``usecase`` if one is named, else ``problem``; ``algorithm``,
    ``population``, ``generations`` and ``seed`` override it when set.

    Args:
        problem: The full problem (used when no use case is named below).
        store: New run store folder. Empty: runs/NAME-ALGORITHM-seedSEED-TIME.zarr in the
            working directory.
        cluster: The Dask cluster that evaluates the populations. Empty: a local cluster with
            one worker process per CPU this process may use.
        cluster_profile: Instead of cluster: a profile name (local, slurm, pbs …) or YAML path.
        progress: Show a progress bar on the terminal (command line runs).
        usecase: A bundled use case (hh, vclamp) or the path of a problem YAML file; when
            given, it is the problem and the problem form above is ignored.
        algorithm: Override the problem's algorithm (see `neuroptimus algorithms`).
        population: Override the individuals per generation.
        generations: Override the number of generations (budget = population x generations).
        seed: Override the random seed.
        catalog_url: Push the finished run to this results catalog (token:
            NEUROPTIMUS_CATALOG_TOKEN). Empty: NEUROPTIMUS_CATALOG_URL, if set. A failed push
            is logged as a warning and never fails the run.
        warm_start: Start from the best individuals of a run store, a folder of run stores or
            a catalog entry <server>/runs/<id> of the same use case (a relative path is
            relative to the problem file's folder).
        validate_best: Override how many of the best distinct individuals are evaluated on
            the problem's validation: protocols after the optimization (0: none).
        report: Write report.html when the run ends (off: metadata.json only, for runs in
            bulk; `neuroptimus analyze STORE` writes the report later).
    """
    cluster = resolve_cluster(cluster, cluster_profile) or ClusterConfig()
    spec = resolve_problem(
        problem, usecase, algorithm=algorithm, population=population,
        generations=generations, seed=seed, warm_start=warm_start, validate_best=validate_best,
    )  # fmt: skip
    store = store or default_store(spec)
    check_before_start(spec, store)  # before the cluster starts
    get_run_logger().info(
        "run store: %s (resume it with this path if the run is interrupted)", store
    )
    # One cluster for the whole run: setup builds the model on one of its workers, which
    # keeps it for the evaluations.
    with connect(cluster) as client:
        setup_flow(spec, store, client)
        best = optimize_flow(store, progress=progress, client=client)
        validate_after_run(client, store)
    result = {**best, "store": store, **analyze_flow(store, report)}
    return {**result, "catalog": push_to_catalog([store], catalog_url)}


# Not validated by Prefect: a Dask client and a prepared problem are not pydantic types.
@flow(name="neuroptimus-run", validate_parameters=False)
def run_prepared_flow(
    problem: Problem,
    store: str,
    client: Client,
    progress: bool = False,
    optimized: Callable[[], None] | None = None,
    report: bool = True,
) -> dict:
    """``run_flow`` for a problem already checked, and its model built, on ``client``'s
    cluster (what the command line does before Prefect has started, to fail in seconds);
    ``optimized`` is called once the cluster is no longer needed (before the analysis)."""
    mark("flow-started")
    setup_flow(problem.spec, store, client, problem)
    mark("setup-done")
    best = optimize_flow(store, progress=progress, client=client)
    mark("optimize-done")
    validate_after_run(client, store)
    if optimized is not None:
        optimized()
    result = {**best, "store": store, **analyze_flow(store, report)}
    return {**result, "catalog": push_to_catalog([store])}  # when NEUROPTIMUS_CATALOG_URL is set


@flow(name="neuroptimus-resume")
def resume_flow(
    store: str,
    cluster: ClusterConfig | None = None,
    cluster_profile: str | None = None,
    progress: bool = False,
    report: bool = True,
) -> dict:
    """Continue an interrupted run from its store and checkpoint, then write its report.

    The generations committed before the interruption are kept; the run goes on from its
    checkpoint and ends with the result an uninterrupted run would have had. A finished run
    is only analyzed again.

    Args:
        store: Run store of the interrupted run (relative paths: from the working directory).
        cluster: The Dask cluster that evaluates the populations. Empty (and no profile): the
            cluster the run used before.
        cluster_profile: Instead of cluster: a profile name (local, slurm, pbs …) or YAML path.
        progress: Show a progress bar on the terminal (command line runs).
        report: Write report.html at the end (off: metadata.json only).
    """
    config = resolve_cluster(cluster, cluster_profile)
    best = optimize_flow(store, config, progress)
    if read_validation(store) is None:  # else validated when the run finished
        validate_after_run(None, store, config)
    result = {**best, "store": store, **analyze_flow(store, report)}
    return {**result, "catalog": push_to_catalog([store])}  # when NEUROPTIMUS_CATALOG_URL is set
