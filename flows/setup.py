"""Setup flow: validate, fetch or regenerate the target, create the run store."""

from __future__ import annotations

from prefect import flow

from optimization.spec import ProblemSpec
from tasks.setup import check_store_path, create_store, prepare_problem


@flow(name="setup")
def setup_flow(problem: ProblemSpec, store: str) -> str:
    """Create the run store at ``store`` for ``problem``; fails before any evaluation if the
    store cannot be written or the target does not fit the protocol."""
    check_store_path(store)
    prepared = prepare_problem(problem)
    return create_store(prepared, store)
