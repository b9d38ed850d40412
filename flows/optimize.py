"""Optimize flow: the generation loop, each generation one task mapped onto a Dask cluster."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
from distributed import Client
from prefect import flow, get_run_logger

from neuroptimus.flows.phases import mark
from neuroptimus.flows.progress import generation_bar
from neuroptimus.flows.run_profile import FlowProfile
from neuroptimus.optimization.algorithms.islands import idle_workers_note
from neuroptimus.optimization.execution.cluster import (
    ClusterConfig,
    client_config,
    connect,
    expected_workers,
)
from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator
from neuroptimus.optimization.execution.model_output import LOG_NAME, Collector
from neuroptimus.optimization.loop.runner import OptimizationRun
from neuroptimus.optimization.simulators.trace_grid import on_one_grid
from neuroptimus.storage.runs.create import problem_from_store
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.tasks.artifacts import RunArtifacts
from neuroptimus.tasks.evaluate import run_generation


# Not validated by Prefect: a Dask client is not a pydantic type.
@flow(name="optimize", validate_parameters=False)
def optimize_flow(
    store: str,
    cluster: ClusterConfig | None = None,
    progress: bool = False,
    client: Client | None = None,
) -> dict:
    """Run (or continue) the optimization recorded in ``store`` until a stopping rule fires,
    on ``client``'s cluster if given (left running), else on a cluster started for it."""
    run_store = RunStore.open(store, mode="r+")
    run_store.write_behind = True  # a generation is written while the next one is evaluated
    with run_store.writer_lock():  # one run at a time writes a store
        try:
            if client is not None:
                return _optimize(run_store, client_config(client), progress, client)
            return _optimize(run_store, cluster or _cluster_of_the_run(run_store), progress)
        finally:
            run_store.close()  # writes in flight done, hypervolume helper stopped


def _cluster_of_the_run(run_store: RunStore) -> ClusterConfig:
    """The cluster a run was started on (a resume without a cluster goes back to it rather
    than to a LocalCluster on, say, a login node); the default for a new run."""
    stored = run_store.attrs.get("cluster")
    if not stored:
        return ClusterConfig()
    get_run_logger().info("cluster: %s, as the run used before", stored["cluster_class"])
    return ClusterConfig.model_validate(stored)


def _idle_workers(run: OptimizationRun, client: Client, cluster: ClusterConfig) -> str | None:
    """A note when the cluster has (or will have) more workers than the run evaluates at once."""
    workers = max(len(client.nthreads()), expected_workers(cluster))
    return idle_workers_note(run.algorithm, workers)


def _optimize(
    run_store: RunStore, cluster: ClusterConfig, progress: bool, client: Client | None = None
) -> dict:
    logger = get_run_logger()
    profile = FlowProfile()
    store = run_store.path
    problem = problem_from_store(run_store)
    run = OptimizationRun(problem, run_store)
    # a scheduler's address lives as long as its cluster: not worth keeping
    run_store.set_attributes(cluster=cluster.model_dump(mode="json", exclude={"address"}))
    if run.resumed_at and run.stop_reason:
        logger.info("%s has already finished (%s): nothing to evaluate", store, run.stop_reason)
    elif run.resumed_at:
        logger.info("resuming %s after generation %d", store, run.resumed_at)
    if run.start_note:  # a warm start the algorithm cannot take: said, not ignored
        logger.warning("warm start: %s", run.start_note)
    spec = problem.spec
    label = f"{spec.name} · {run.algorithm.info.label}"
    artifacts = RunArtifacts(spec, run.algorithm.info.label, run.evaluations)
    profile.mark("cluster_starting")  # nothing to start when the run's cluster is given
    with nullcontext(client) if client else connect(cluster) as client:
        evaluator = DaskEvaluator(client, problem)  # configured as connect() was
        model_output = Collector(client, Path(store) / LOG_NAME)
        profile.mark("cluster_ready")
        with generation_bar(progress, spec.budget, run.evaluations, label) as update:
            run.on_results = update  # the bar advances with each result as it arrives
            mark("generations-start")
            idle_said = False  # workers join late on a queue: looked at until said, said once
            while run.stop_reason is None:
                if not idle_said and (note := _idle_workers(run, client, cluster)):
                    logger.info("%s", note)
                    idle_said = True
                if not run_generation(run, evaluator, run.generation):
                    continue  # the algorithm asked nothing (it has converged)
                update(run.evaluations, run.stopping.best)
                artifacts.generation(run.generation, run.evaluations, run_store.best)
                model_output.due()
                profile.generation(run.generation)
                logger.info(
                    "generation %d: %d evaluations, best %.6g, failed %d",
                    run.generation, run.evaluations, run.stopping.best, run.failed_in_generation,
                )  # fmt: skip
            mark("generations-end")
            run.on_results = None
        if run.reused:
            logger.info("%d evaluations taken from the store, streamed before the run stopped",
                        run.reused)  # fmt: skip
        best = run_store.best()
        values = np.array([best["parameters"][name] for name in problem.space.names])
        traces, kept = evaluator.best_traces(values)
        # how the stored best traces were made: kept from the evaluation, or simulated again
        run_store.set_attributes(best_traces="evaluation" if kept else "simulated again")
        time, table = on_one_grid(traces)  # CVODE sweeps of e-models differ in length
        if printed := model_output.now():
            logger.info("the model printed %d lines: %s", printed, model_output.path)
    run_store.write_arrays(
        "best",
        {
            "parameters": values,
            "errors": np.array(list(best["errors"].values())),
            "total": np.array(best["total"]),
            "trace": table,
            "time": time,
        },
    )
    reason = run.finish()
    artifacts.finish(best, run.evaluations, reason)
    waits = {"seconds": artifacts.seconds, "api_seconds": artifacts.api_seconds}
    run_store.set_attributes(profile=profile.figures(run_store.profile(), waits))
    logger.info("finished: %s; best total error %.6g", reason, best["total"])
    return {
        **best, "stop_reason": reason, "evaluations": run.evaluations, "reused": run.reused,
        "model_output": str(model_output.path) if model_output.path.is_file() else None,
    }  # fmt: skip
