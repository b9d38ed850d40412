"""Dask clusters chosen by configuration, and the evaluator that maps a batch onto one."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from distributed import Client, WorkerPlugin
from pydantic import BaseModel, ConfigDict, Field

from optimization import evaluation
from optimization.evaluation import BatchResult
from optimization.problem import Problem
from optimization.simulators import Trace


class ClusterConfig(BaseModel):
    """Which Dask cluster evaluates the populations.

    ``cluster_class`` is any importable cluster class: ``distributed.LocalCluster`` (default)
    or a dask-jobqueue class such as ``dask_jobqueue.SLURMCluster`` with its ``options``.
    """

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None, description="scheduler of a running cluster to use instead of starting one"
    )
    cluster_class: str = "distributed.LocalCluster"
    options: dict[str, Any] = Field(default_factory=dict)
    workers: int | None = Field(None, ge=1, description="worker processes (default: all cores)")
    adapt_minimum: int | None = Field(None, ge=0)
    adapt_maximum: int | None = Field(None, ge=1)
    chunks_per_worker: int = Field(4, ge=1, description="tasks per worker and generation")


def make_cluster(config: ClusterConfig):
    """Start the configured cluster (single-threaded worker processes: NEURON is global)."""
    module_name, _, class_name = config.cluster_class.rpartition(".")
    cluster_class = getattr(importlib.import_module(module_name), class_name)
    workers = config.workers or os.cpu_count() or 1
    options = dict(config.options)
    if config.cluster_class == "distributed.LocalCluster":
        options = {
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": ":0",  # any free port: several clusters may run at once
            "silence_logs": logging.ERROR,
            **options,
        }
        # silence_logs only quiets distributed's own handlers; records still reach the root
        # logger (Prefect's console), so the level is set on the logger itself.
        logging.getLogger("distributed").setLevel(options["silence_logs"])
    cluster = cluster_class(**options)
    if config.adapt_maximum is not None:
        cluster.adapt(minimum=config.adapt_minimum or 0, maximum=config.adapt_maximum)
    elif config.cluster_class != "distributed.LocalCluster":
        cluster.scale(workers)
    return cluster


@contextmanager
def connect(config: ClusterConfig) -> Iterator[Client]:
    """A client of the configured cluster: a running one (``address``) or a new one that is
    shut down on exit."""
    if config.address:
        with Client(config.address) as client:
            yield client
        return
    with make_cluster(config) as cluster, Client(cluster) as client:
        yield client


# Problems installed on this worker process by ProblemPlugin, by key.
_problems: dict[str, Problem] = {}


class ProblemPlugin(WorkerPlugin):
    """Installs the problem on every worker (also ones that join later) and builds its model
    once, so tasks carry only parameter vectors."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.name = f"neuroptimus-problem-{problem.key}"

    def setup(self, worker) -> None:
        _problems[self.problem.key] = self.problem
        evaluation.simulator_for(self.problem)


def _evaluate_chunk(key: str, points: np.ndarray) -> BatchResult:
    return evaluation.evaluate_batch(_problems[key], points)


def _simulate(key: str, values: np.ndarray) -> list[Trace]:
    return evaluation.simulate_traces(_problems[key], values)


class DaskEvaluator:
    """Evaluates a batch of parameter vectors on a Dask cluster, a few chunks per worker."""

    def __init__(self, client: Client, problem: Problem, chunks_per_worker: int = 4) -> None:
        self.client = client
        self.problem = problem
        self.chunks_per_worker = chunks_per_worker
        client.register_plugin(ProblemPlugin(problem))

    def _workers(self) -> int:
        return max(len(self.client.scheduler_info(n_workers=-1)["workers"]), 1)

    def __call__(self, points: np.ndarray) -> BatchResult:
        if len(points) == 0:
            raise ValueError("empty batch")
        chunks = np.array_split(points, min(len(points), self._workers() * self.chunks_per_worker))
        futures = self.client.map(
            _evaluate_chunk, [self.problem.key] * len(chunks), chunks, pure=False
        )
        return BatchResult.concatenate(self.client.gather(futures))

    def simulate(self, values: np.ndarray) -> list[Trace]:
        """Traces of one individual, simulated on a worker."""
        return self.client.submit(_simulate, self.problem.key, values, pure=False).result()
