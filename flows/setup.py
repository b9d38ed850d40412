"""Setup flow: check the problem, fetch or regenerate the target, create the run store — in
that order, so that a mistake fails the run before its store exists."""

from __future__ import annotations

from distributed import Client
from prefect import flow

from neuroptimus.optimization.evaluation.problem import Problem
from neuroptimus.optimization.loop.preflight import check_algorithm
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.trust.validation import check_validation_targets
from neuroptimus.storage.runs.create import check_new_store
from neuroptimus.storage.warm_start import check_warm_start
from neuroptimus.tasks.setup import create_store, prepare_problem


def check_before_start(problem: ProblemSpec, store: str) -> None:
    """The checks that need no model (milliseconds): the algorithm accepts its population and
    settings, ``store`` can become a new store, a warm start's source is of this problem, a
    validation's target file fits its protocol."""
    check_algorithm(problem)
    check_new_store(store)
    check_warm_start(problem)
    check_validation_targets(problem)


# Not validated by Prefect: a Dask client and a prepared problem are not pydantic types.
@flow(name="setup", validate_parameters=False)
def setup_flow(
    problem: ProblemSpec,
    store: str,
    client: Client | None = None,
    prepared: Problem | None = None,
) -> str:
    """Create the run store at ``store`` for ``problem``. Unless ``prepared`` is the problem
    already checked, the model is built on a worker of ``client``'s cluster (or a spawned
    process), every parameter target, section, recording and the target are checked, then
    the store is created — complete, or not at all."""
    check_before_start(problem, store)
    if prepared is None:
        prepared = prepare_problem(problem, client)
    return create_store(prepared, store)
