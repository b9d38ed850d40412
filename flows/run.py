"""The parent flow: setup → optimize → analyze."""

from __future__ import annotations

from prefect import flow

from flows.analyze import analyze_flow
from flows.optimize import optimize_flow
from flows.setup import setup_flow
from optimization.cluster import ClusterConfig
from optimization.spec import ProblemSpec


@flow(name="neuroptimus-run")
def run_flow(
    problem: ProblemSpec, store: str, cluster: ClusterConfig | None = None, progress: bool = False
) -> dict:
    """Optimize ``problem`` into a new run store and write its report."""
    setup_flow(problem, store)
    best = optimize_flow(store, cluster, progress)
    return {**best, **analyze_flow(store)}


def resume_flow_run(store: str, cluster: ClusterConfig | None = None, progress: bool = False):
    """Continue an interrupted run (its store and checkpoint), then analyze it."""
    best = optimize_flow(store, cluster, progress)
    return {**best, **analyze_flow(store)}
