"""Dask clusters chosen by configuration.

A cluster is a ``ClusterConfig``, given in code or read from a profile file
(``ClusterConfig.from_file``; ``neuroptimus.flows.cluster_profiles`` finds profiles by name): a
LocalCluster or any dask-jobqueue class (SLURM, PBS, SGE, LSF, HTCondor). Worker processes
are single-threaded (NEURON keeps global state).
``neuroptimus.optimization.execution.dask_evaluator`` maps
populations onto the cluster; jobs that end are replaced here (adaptive scaling), lost chunks
and hung simulations are handled there.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import sys
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import dask
import dask.utils
import yaml
from distributed import Client, LocalCluster, Nanny, Worker
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.execution.cpus import usable_cpus
from neuroptimus.optimization.execution.liveness import MEMORY, check_cluster
from neuroptimus.optimization.execution.local_cluster import NanniesKeptLocalCluster
from neuroptimus.optimization.execution.lost_jobs import watch_jobs
from neuroptimus.optimization.execution.model_output import ModelOutput
from neuroptimus.optimization.execution.quiet_shutdown import QuietShutdown
from neuroptimus.optimization.execution.walltime import WalltimeError, lifetime_args, schedule

LOCAL = "distributed.LocalCluster"


class ClusterError(UserError, ValueError):
    """A cluster profile or configuration that cannot work."""


class ClusterConfig(BaseModel):
    """Which Dask cluster evaluates the populations.

    ``cluster_class`` is any importable cluster class: ``distributed.LocalCluster`` (default)
    or a dask-jobqueue class such as ``dask_jobqueue.SLURMCluster`` with its ``options``
    (queue, account, cores, memory, walltime, job_script_prologue …).
    """

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None,
        description="scheduler of a running cluster to use instead of starting one (its "
        "allowed failures are set to 0; what else differs is logged at connect)",
    )
    cluster_class: str = LOCAL
    options: dict[str, Any] = Field(default_factory=dict)
    workers: int | None = Field(
        None,
        ge=1,
        description="worker processes (default: the CPUs this process may use — its affinity, "
        "batch job allocation or container quota; one job on a queue)",
    )
    adapt_minimum: int | None = Field(None, ge=0, description="adaptive scaling: fewest workers")
    adapt_maximum: int | None = Field(None, ge=1, description="adaptive scaling: most workers")
    chunks_per_worker: int = Field(4, ge=1, description="most tasks per worker and generation")
    min_task_s: float = Field(
        0.1,
        ge=0,
        description="least simulation time a task carries (judged from the previous "
        "generation; at least 10 ms per worker, so the scheduler stays under a tenth busy)",
    )
    hang_grace_s: float = Field(
        10.0, ge=0, description="seconds past an evaluation's timeout before its worker is killed"
    )
    resubmissions: int = Field(
        3,
        ge=0,
        description="times a task lost with its worker, with no individual to blame, is "
        "submitted again (0: the first loss fails the generation, and no individual that "
        "crashes its worker is singled out)",
    )
    evaluation_margin: str | float | None = Field(
        None,
        description="on a queue with a walltime: the longest evaluation a worker still starts "
        "before its job's walltime (a duration: '30 minutes', '1h', or seconds; default 5 "
        "minutes or a tenth of the walltime, whichever is shorter); ignored when "
        "worker_extra_args sets --lifetime",
    )
    diagnostics: bool = Field(
        False,
        description="keep Dask's worker profiler and fast monitors (dashboard detail, at about "
        "half a core per 16 idle workers); a local cluster starts its dashboard only then",
    )

    @classmethod
    def from_file(cls, path: str | Path) -> ClusterConfig:
        """Read a cluster profile (a YAML mapping of these settings); mistakes are named with
        the file and the field."""
        path = Path(path).expanduser()
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise ClusterError(f"{path}: no such cluster profile file") from None
        except (OSError, yaml.YAMLError) as error:
            raise ClusterError(f"{path}: cannot read the cluster profile: {error}") from None
        if not isinstance(data, dict):
            raise ClusterError(f"{path}: a cluster profile is a mapping of settings")
        try:
            config = cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(top)'}: "
                + ("unknown setting" if e["type"] == "extra_forbidden" else e["msg"])
                for e in error.errors()
            )
            settings = ", ".join(cls.model_fields)
            raise ClusterError(f"{path}: {problems} (settings: {settings})") from None
        try:
            config.check()
        except ClusterError as error:
            raise ClusterError(f"{path}: {error}") from None
        return config

    @property
    def is_local(self) -> bool:
        return self.cluster_class == LOCAL

    def cluster_type(self) -> type:
        module_name, _, class_name = self.cluster_class.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError, ValueError):
            raise ClusterError(
                f"cluster_class: cannot import {self.cluster_class!r} "
                "(e.g. distributed.LocalCluster or dask_jobqueue.SLURMCluster)"
            ) from None

    def check(self) -> None:
        """Fail early on options the cluster class does not take, and on multi-threaded
        workers."""
        if self.address:
            return
        cluster_type = self.cluster_type()
        accepted = _accepted_options(cluster_type)
        for name in self.options:
            if accepted is not None and name not in accepted:
                close = difflib.get_close_matches(name, sorted(accepted), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ClusterError(
                    f"options.{name}: not an option of {cluster_type.__name__}{hint}"
                )
        if not self.is_local:
            cores, processes = self.options.get("cores"), self.options.get("processes")
            if cores is None or "memory" not in self.options:
                raise ClusterError("options: a batch-queue cluster needs cores and memory per job")
            if processes is not None and processes != cores:
                raise ClusterError(
                    f"options.processes: {processes} worker processes for {cores} cores would "
                    "make multi-threaded workers; NEURON needs processes = cores (or leave it out)"
                )
        if self.adapt_maximum is not None and (self.adapt_minimum or 0) > self.adapt_maximum:
            raise ClusterError("adapt_minimum: larger than adapt_maximum")
        self.walltime_schedule()

    def walltime_schedule(self) -> tuple[float, float] | None:
        """``(drain_after_s, lifetime_s)`` of this queue's workers (see
        ``neuroptimus.optimization.execution.walltime``); None for a local cluster, without a
        walltime, or
        when the options set ``--lifetime`` themselves."""
        if self.is_local or self.address:
            return None
        try:
            return schedule(self.options, self.evaluation_margin, self.cluster_class)
        except (WalltimeError, ValueError, TypeError) as error:
            raise ClusterError(str(error)) from None


def _accepted_options(cluster_type: type) -> set[str] | None:
    """Keyword arguments the class (and, for dask-jobqueue, its job class; for LocalCluster,
    its workers) accepts; None when that cannot be told."""
    classes = list(cluster_type.__mro__)
    if getattr(cluster_type, "job_cls", None) is not None:
        classes += list(cluster_type.job_cls.__mro__)
    if cluster_type.__name__ == "LocalCluster":
        classes += [*Nanny.__mro__, *Worker.__mro__]
    names: set[str] = set()
    for klass in classes:
        if "__init__" not in vars(klass) or klass is object:
            continue
        try:
            parameters = inspect.signature(klass.__init__).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return names - {"self"}


# Diagnostics a NEURON worker does without: with Dask's defaults (profiler every 10 ms, memory
# monitor every 100 ms, event-loop ticks every 20 ms) 16 idle workers and their nannies use
# half a core; with these, a twentieth.
QUIET = {
    "distributed.worker.profile.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "500ms",
}


# Dask keeps, for debugging, the last `low-level-log-length` messages of every connection
# (the compute-task messages, with each chunk's parameter values, and the client's graphs),
# transitions and events, and its last 100 computations: with the defaults (1000, 100) the
# flow process held the last ~100 generations and grew all through a run (+5 % of its
# memory from generation 10 to 100 on UC1; +2.2–2.4 %, level from generation 60, with these).
BOUNDED_HISTORY = {
    "distributed.admin.low-level-log-length": 10,
    "distributed.diagnostics.computations.max-history": 10,
}


def dask_settings(config: ClusterConfig) -> dict[str, Any]:
    """The Dask configuration of this project's schedulers, clients and workers."""
    return {**BOUNDED_HISTORY, **MEMORY, **({} if config.diagnostics else QUIET)}


def _exports(settings: dict[str, Any]) -> list[str]:
    """Dask settings as environment variables, for worker processes started by a batch job."""
    return [
        f"export DASK_{key.replace('.', '__').replace('-', '_').upper()}={value}"
        for key, value in settings.items()
    ]


def _jobqueue_options(config: ClusterConfig) -> dict[str, Any]:
    """One single-threaded worker process per core in every job, run by this Python (so that
    workers import this project from the same environment), retired before the walltime."""
    options = dict(config.options)
    options.setdefault("processes", options["cores"])
    options.setdefault("python", sys.executable)
    timing = config.walltime_schedule()
    if timing is not None:
        extra = list(options.get("worker_extra_args") or [])
        options["worker_extra_args"] = [*extra, *lifetime_args(timing[1])]
    prologue = options.get("job_script_prologue") or []
    options["job_script_prologue"] = [*_exports(dask_settings(config)), *prologue]
    scheduler = {"dashboard_address": ":0", "allowed_failures": 0}
    options["scheduler_options"] = {**scheduler, **options.get("scheduler_options", {})}
    return options


def job_script(config: ClusterConfig) -> str:
    """The batch script a dask-jobqueue profile submits for each job (to check a profile)."""
    config.check()
    if config.is_local or config.address:
        raise ClusterError("only a batch-queue cluster (dask_jobqueue.…) has a job script")
    cluster = config.cluster_type()(**_jobqueue_options(config))
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def make_cluster(config: ClusterConfig):
    """Start the configured cluster (single-threaded worker processes: NEURON is global)."""
    config.check()
    # nannies (and so the worker processes they start, also later) take the configuration
    # current when they are created
    with dask.config.set(dask_settings(config)):
        return _make_cluster(config)


def _make_cluster(config: ClusterConfig):
    cluster_type = config.cluster_type()
    options = dict(config.options)
    if cluster_type is LocalCluster:
        cluster_type = NanniesKeptLocalCluster
    if config.is_local:
        options = {
            "n_workers": config.workers or usable_cpus(),
            "threads_per_worker": 1,
            "processes": True,
            # Dask's dashboard (bokeh, half a second to start) only when diagnostics are
            # asked for; then on any free port, since several clusters may run at once.
            "dashboard_address": ":0" if config.diagnostics else None,
            "silence_logs": logging.ERROR,
            **options,
        }
        # A lost worker fails its tasks at once, so the evaluator runs them again knowing
        # which individual hung and finds one that crashes its worker (Dask would retry such
        # a task on other workers, and lose them too).
        scheduler = {"allowed_failures": 0}
        if options["dashboard_address"] is None:
            # the scheduler's HTTP server (health, metrics) still starts, on port 8787 unless
            # told otherwise: a random port spares a "port in use" warning on stderr
            scheduler["dashboard_address"] = ":0"
        options["scheduler_kwargs"] = {**scheduler, **options.get("scheduler_kwargs", {})}
        # silence_logs only quiets distributed's own handlers; records still reach the root
        # logger (Prefect's console), so the level is set on the logger itself.
        logging.getLogger("distributed").setLevel(options["silence_logs"])
        cluster = cluster_type(**options)
        if config.adapt_maximum is not None:
            cluster.adapt(minimum=config.adapt_minimum or 0, maximum=config.adapt_maximum)
        return cluster
    cluster = cluster_type(**_jobqueue_options(config))
    # Adaptive scaling also for a fixed size: jobs that end (walltime, scancel, node failure)
    # are then replaced, which a plain scale() does not do.
    minimum, maximum = _bounds(config)
    cluster.adapt(minimum=minimum, maximum=maximum)
    cluster.loop.add_callback(watch_jobs, cluster)
    return cluster


def _bounds(config: ClusterConfig) -> tuple[int, int]:
    if config.adapt_maximum is not None:
        return config.adapt_minimum or 0, config.adapt_maximum
    workers = config.workers or config.options.get("processes") or config.options.get("cores", 1)
    return workers, workers


# The configuration each client was connected with (DaskEvaluator's defaults).
_configs: weakref.WeakKeyDictionary[Client, ClusterConfig] = weakref.WeakKeyDictionary()


@contextmanager
def connect(config: ClusterConfig) -> Iterator[Client]:
    """A client of the configured cluster: a running one (``address``) or a new one that is
    shut down on exit."""
    if config.address:
        with closing(_client(config, config.address)) as client:
            check_cluster(client, config.address)  # started with settings of its own
            yield client
        return
    # closing, not the client's own context: that one may only be left in the thread that
    # entered it, and a command stops its cluster in the background
    # (see neuroptimus.flows.cli.early_close)
    with make_cluster(config) as cluster, closing(_client(config, cluster)) as client:
        # what models print goes to a file per worker, collected into the run's store
        client.register_plugin(ModelOutput())
        client.register_plugin(QuietShutdown())  # no traceback when this process closes it
        yield client


def _client(config: ClusterConfig, cluster_or_address) -> Client:
    with dask.config.set(dask_settings(config)):  # read as the client connects
        client = Client(cluster_or_address)
    _configs[client] = config
    return client


def client_config(client: Client) -> ClusterConfig:
    """The configuration a client was connected with (the defaults for another client)."""
    return _configs.get(client) or ClusterConfig()


def expected_workers(config: ClusterConfig) -> int:
    """Workers the cluster will have once started (adaptive ones may start empty), so that a
    generation is cut into enough chunks for all of them."""
    if config.address or (config.is_local and config.adapt_maximum is None):
        return 1
    return _bounds(config)[1]
