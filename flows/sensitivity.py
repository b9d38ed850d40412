"""Sensitivity flow: the finite-difference evaluations around a run's best individual on the
run's cluster (or another), their Jacobian analysis stored in the run store's
``sensitivity/`` group (``neuroptimus analyze STORE --sensitivity``)."""

from __future__ import annotations

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.execution.cluster import ClusterConfig, connect
from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator
from neuroptimus.optimization.trust import sensitivity
from neuroptimus.storage.runs.create import problem_from_store
from neuroptimus.storage.runs.run_store import RunStore, StoreError
from neuroptimus.storage.runs.sensitivity import check_local_model, write_sensitivity
from neuroptimus.tasks.retry import retry_condition


@task(
    name="sensitivity-evaluations", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE,
    retry_condition_fn=retry_condition,
)  # fmt: skip
def evaluate_points(evaluator: DaskEvaluator, points: np.ndarray) -> BatchResult:
    """The 2·d points around the best, as one batch on the cluster (a lost worker's points
    are run again by the evaluator; an infrastructure failure retries the task)."""
    return evaluator(points)


def run_cluster(store: RunStore) -> ClusterConfig:
    """The cluster the run used (its stored configuration), else a local one."""
    stored = store.attrs.get("cluster")
    return ClusterConfig.model_validate(stored) if stored else ClusterConfig()


# Not validated by Prefect: a cluster configuration object passes as it is.
@flow(name="sensitivity", validate_parameters=False)
def sensitivity_flow(
    store: str, cluster: ClusterConfig | None = None, step: float = sensitivity.STEP
) -> dict:
    """Evaluate each parameter moved alone by ±``step`` (of its normalised range) around the
    best individual, and store the Jacobian, the stiff and sloppy directions and each
    parameter's local sensitivity in ``store``'s ``sensitivity/`` group (replacing an earlier
    one). Returns the stored values."""
    check_local_model(store)
    run_store = RunStore.open(store)
    best = run_store.best()
    if best is None:
        raise StoreError(f"{store} has no evaluated individual yet: nothing to differentiate")
    problem = problem_from_store(run_store)
    names = list(problem.space.names)
    values = np.array([best["parameters"][name] for name in names])
    best_unit = problem.space.to_unit(values[None, :])[0]
    unit_points, low = sensitivity.design(best_unit, step)
    points = problem.space.to_real(unit_points)
    cluster = cluster or run_cluster(run_store)
    logger = get_run_logger()
    logger.info("%d evaluations around row %d (step %g) on %s", len(points), best["index"],
                step, cluster.cluster_class)  # fmt: skip
    with connect(cluster) as client:
        result = evaluate_points(DaskEvaluator(client, problem, config=cluster), points)
    weights = problem.objective.weights
    found = sensitivity.analyse(
        best_unit, best["total"], low, step, result.errors, result.total, result.status, weights
    )
    arrays = {
        "points": points, "unit_points": unit_points, "errors": result.errors,
        "total": result.total, "status": result.status, "jacobian": found.jacobian,
        "sensitivity": found.sensitivity, "slope": found.slope, "curvature": found.curvature,
        "eigenvalues": found.eigenvalues, "eigenvectors": found.eigenvectors,
        "best_unit": best_unit,
    }  # fmt: skip
    attributes = {
        "step": step, "best_row": best["index"], "best_total": best["total"],
        "parameter_names": names, "component_names": list(problem.component_names),
        "weights": [float(w) for w in weights], "messages": list(result.message),
    }  # fmt: skip
    write_sensitivity(store, arrays, attributes)
    return {**arrays, **attributes}
