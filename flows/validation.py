"""Held-out validation flow: a run's best distinct individuals evaluated on its problem's
``validation:`` protocols and targets on a Dask cluster, stored in the run store's
``validation/`` group (after the optimization, on the run's own cluster; or by ``neuroptimus
analyze STORE --validate`` on the run's kind of cluster)."""

from __future__ import annotations

import numpy as np
from distributed import Client
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from neuroptimus.flows.sensitivity import run_cluster
from neuroptimus.optimization.evaluation.individual import OK, BatchResult
from neuroptimus.optimization.execution.cluster import ClusterConfig, connect
from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator
from neuroptimus.optimization.execution.rehost import release_problems
from neuroptimus.optimization.problem.spec import DEFAULT_VALIDATE_BEST, ProblemSpec
from neuroptimus.optimization.simulators.trace_grid import on_one_grid
from neuroptimus.optimization.trust.validation import best_distinct, validation_problem
from neuroptimus.storage.runs.run_store import RunStore, StoreError
from neuroptimus.storage.runs.sensitivity import check_local_model
from neuroptimus.storage.runs.validation import write_validation
from neuroptimus.tasks.retry import retry_condition


@task(
    name="validation-evaluations", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE,
    retry_condition_fn=retry_condition,
)  # fmt: skip
def evaluate_held_out(evaluator: DaskEvaluator, points: np.ndarray) -> BatchResult:
    """The chosen individuals on the validation problem as one batch (a lost worker's points
    are run again by the evaluator; an infrastructure failure retries the task)."""
    return evaluator(points)


def validation_size(store: RunStore, best: int | None) -> int:
    """How many individuals to validate: ``best`` if given, else the problem file's
    ``validation.best``; 0 when the problem has no ``validation:`` section."""
    validation = store.attrs["spec"].get("validation")
    if validation is None:
        return 0
    return validation.get("best", DEFAULT_VALIDATE_BEST) if best is None else best


def check_validatable(path: str) -> RunStore:
    """The run store, if it can be validated here (one line naming what is missing)."""
    store = RunStore.open(path)
    if store.attrs["spec"].get("validation") is None:
        raise StoreError(
            f"{path}: its problem has no validation: section (held-out protocols and targets) "
            "to validate on"
        )
    check_local_model(path, "validation")
    if store.best() is None:
        raise StoreError(f"{path} has no evaluated individual yet: nothing to validate")
    return store


def validate_on(client: Client, path: str, best: int | None = None, fresh: bool = False) -> dict:
    """Evaluate the store's ``best`` (default: the problem's ``validation.best``) distinct
    best individuals on its validation problem on ``client``'s cluster and store them;
    ``fresh``: the workers host no model yet (else they are restarted first: a process hosts
    one model). Returns the stored values; nothing is done (an empty dict) for 0."""
    store = RunStore.open(path)
    k = validation_size(store, best)
    if k == 0:
        return {}
    spec = ProblemSpec.model_validate(store.attrs["spec"])
    problem = validation_problem(spec)
    rows_all = store.evaluations()
    rows = best_distinct(rows_all["parameters"], rows_all["total"], k)
    if not len(rows):
        return {}
    points = rows_all["parameters"][rows]
    get_run_logger().info("validating the best %d individuals on %s", len(rows), spec.name)
    if not fresh:
        release_problems(client)
    evaluator = DaskEvaluator(client, problem)
    result = evaluate_held_out(evaluator, points)
    arrays = {
        "rows": rows, "parameters": points, "training_total": rows_all["total"][rows],
        "errors": result.errors, "total": result.total, "status": result.status,
    }  # fmt: skip
    first_ok = int(result.status[0]) == OK
    if first_ok:  # the best's validation traces, for the report
        time, values = on_one_grid(evaluator.simulate(points[0]))
        arrays.update(best_time=time, best_trace=values)
    targets = problem.objective.targets
    if targets:
        step = 1000 / problem.spec.comparison_rate_hz
        clamp = problem.spec.protocol.recording.variable == "clamp_current"
        start = step / 2 if clamp else 0.0  # as the run store's target (a clamp's mid-steps)
        arrays.update(target_time=start + step * np.arange(len(targets[0])),
                      target_trace=np.column_stack(targets))  # fmt: skip
    attributes = {
        "validation_error": float(result.total[0]) if first_ok else None,
        "best": k, "best_row": int(rows[0]),
        "component_names": list(problem.component_names),
        "weights": [float(w) for w in problem.objective.weights],
        "spec": problem.spec.model_dump(mode="json"), "messages": list(result.message),
    }  # fmt: skip
    write_validation(path, arrays, attributes)
    return {**arrays, **attributes}


def validate_after_run(
    client: Client | None, path: str, cluster: ClusterConfig | None = None
) -> None:
    """The validation at the end of a run, on its cluster (``client``, else a new one like
    ``cluster``) when its problem asks for one. A failure is logged, not raised: the run is
    done and kept, and ``neuroptimus analyze STORE --validate`` can do it again."""
    if validation_size(RunStore.open(path), None) == 0:
        return
    try:
        if client is None:
            validation_flow(path, cluster)
        else:
            validate_on(client, path)
    except Exception as error:  # the run's results stand without it
        get_run_logger().warning(
            "validation failed (%s); the run is kept: `neuroptimus analyze %s --validate` "
            "validates it again", error, path,
        )  # fmt: skip


# Not validated by Prefect: a cluster configuration object passes as it is.
@flow(name="validation", validate_parameters=False)
def validation_flow(
    store: str, cluster: ClusterConfig | None = None, best: int | None = None
) -> dict:
    """Evaluate the best ``best`` (default: the problem's ``validation.best``) distinct
    individuals of ``store`` on its problem's held-out protocols and targets, on a new
    cluster like the run's (or ``cluster``), and store them in its ``validation/`` group
    (replacing an earlier one); asked for, a problem's ``best: 0`` validates the default
    number. Returns the stored values."""
    run_store = check_validatable(store)
    best = best or validation_size(run_store, None) or DEFAULT_VALIDATE_BEST
    with connect(cluster or run_cluster(run_store)) as client:
        return validate_on(client, store, best, fresh=True)
