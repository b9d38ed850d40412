"""Reading back the pickles a run keeps on disk (checkpoint, journal, streamed results and the
algorithm states inside them), also those written before the modules moved into the
``neuroptimus`` package: their classes are looked up under the new module names."""

from __future__ import annotations

import io
import pickle
from typing import IO, Any

# Top-level names the project's modules had before ``neuroptimus.``; a pickle naming one of them
# is read from the module of the same path inside the package, never from whatever
# ``optimization`` (or ``analysis``, …) the environment happens to hold.
OLD_LAYERS = ("optimization", "storage", "tasks", "flows", "analysis", "usecases")
# Modules that moved further than the prefix: old -> new module path (a commit that moves a module
# whose classes are pickled adds its line here).
MOVED: dict[str, str] = {
    "neuroptimus.optimization.spec": "neuroptimus.optimization.problem.spec",
    "neuroptimus.optimization.problem_yaml": "neuroptimus.optimization.problem.problem_yaml",
    "neuroptimus.optimization.parameters": "neuroptimus.optimization.problem.parameters",
    "neuroptimus.optimization.problem": "neuroptimus.optimization.evaluation.problem",
    "neuroptimus.optimization.preflight": "neuroptimus.optimization.loop.preflight",
    "neuroptimus.optimization.data": "neuroptimus.optimization.problem.data",
    "neuroptimus.optimization.trace_files": "neuroptimus.optimization.problem.trace_files",
    "neuroptimus.optimization.costs": "neuroptimus.optimization.scoring.costs",
    "neuroptimus.optimization.objective": "neuroptimus.optimization.scoring.objective",
    "neuroptimus.optimization.features": "neuroptimus.optimization.scoring.features",
    "neuroptimus.optimization.feature_extraction": "neuroptimus.optimization.scoring.feature_extraction",
    "neuroptimus.optimization.scores": "neuroptimus.optimization.scoring.scores",
    "neuroptimus.optimization.pareto": "neuroptimus.optimization.scoring.pareto",
    "neuroptimus.optimization.nmodl_compat": "neuroptimus.optimization.simulators.nmodl_compat",
    "neuroptimus.optimization.cluster": "neuroptimus.optimization.execution.cluster",
    "neuroptimus.optimization.local_cluster": "neuroptimus.optimization.execution.local_cluster",
    "neuroptimus.optimization.cpus": "neuroptimus.optimization.execution.cpus",
    "neuroptimus.optimization.dask_evaluator": "neuroptimus.optimization.execution.dask_evaluator",
    "neuroptimus.optimization.handover": "neuroptimus.optimization.execution.handover",
    "neuroptimus.optimization.liveness": "neuroptimus.optimization.execution.liveness",
    "neuroptimus.optimization.hang_watchdog": "neuroptimus.optimization.execution.hang_watchdog",
    "neuroptimus.optimization.walltime": "neuroptimus.optimization.execution.walltime",
    "neuroptimus.optimization.lost_jobs": "neuroptimus.optimization.execution.lost_jobs",
    "neuroptimus.optimization.worker_deaths": "neuroptimus.optimization.execution.worker_deaths",
    "neuroptimus.optimization.crash_blame": "neuroptimus.optimization.execution.crash_blame",
    "neuroptimus.optimization.fresh_process": "neuroptimus.optimization.execution.fresh_process",
    "neuroptimus.optimization.quiet_shutdown": "neuroptimus.optimization.execution.quiet_shutdown",
    "neuroptimus.optimization.model_output": "neuroptimus.optimization.execution.model_output",
    "neuroptimus.optimization.retirement": "neuroptimus.optimization.execution.retirement",
    "neuroptimus.optimization.runner": "neuroptimus.optimization.loop.runner",
    "neuroptimus.optimization.evaluation": "neuroptimus.optimization.evaluation.individual",
    "neuroptimus.optimization.settings_import": "neuroptimus.optimization.original.settings",
    "neuroptimus.optimization.settings_external": "neuroptimus.optimization.original.external",
    "neuroptimus.optimization.settings_algorithms": "neuroptimus.optimization.original.algorithms",
    "neuroptimus.optimization.problem.build": "neuroptimus.optimization.evaluation.problem",
    "neuroptimus.optimization.loop.evaluation": "neuroptimus.optimization.evaluation.individual",
    "neuroptimus.optimization.problem.preflight": "neuroptimus.optimization.loop.preflight",
    "neuroptimus.storage.catalog.fingerprint": "neuroptimus.optimization.problem.identity",
    "neuroptimus.flows.cli_common": "neuroptimus.flows.cli.common",
    "neuroptimus.flows.catalog_cli": "neuroptimus.flows.cli.catalog",
    "neuroptimus.flows.benchmark_cli": "neuroptimus.flows.cli.benchmark",
    "neuroptimus.flows.bluepyopt_cli": "neuroptimus.flows.cli.bluepyopt",
    "neuroptimus.flows.launch": "neuroptimus.flows.cli.launch",
    "neuroptimus.flows.early_close": "neuroptimus.flows.cli.early_close",
    "neuroptimus.flows.prefect_server": "neuroptimus.flows.server.shared",
    "neuroptimus.flows.prefect_state": "neuroptimus.flows.server.state",
    "neuroptimus.flows.serve": "neuroptimus.flows.server.serve",
    "neuroptimus.flows.benchmark": "neuroptimus.flows.benchmarks.overhead",
    "neuroptimus.flows.benchmark_fronts": "neuroptimus.flows.benchmarks.fronts",
    "neuroptimus.flows.budget_benchmark": "neuroptimus.flows.benchmarks.budget",
    "neuroptimus.flows.objectives_benchmark": "neuroptimus.flows.benchmarks.objectives",
    "neuroptimus.flows.serial_benchmark": "neuroptimus.flows.benchmarks.serial",
    "neuroptimus.flows.startup_benchmark": "neuroptimus.flows.benchmarks.startup",
    "neuroptimus.analysis.benchmark_large": "neuroptimus.flows.benchmarks.large_store",
    "neuroptimus.storage.run_store": "neuroptimus.storage.runs.run_store",
    "neuroptimus.storage.runs": "neuroptimus.storage.runs.create",
    "neuroptimus.storage.columns": "neuroptimus.storage.runs.columns",
    "neuroptimus.storage.generation_writer": "neuroptimus.storage.runs.generation_writer",
    "neuroptimus.storage.inflight": "neuroptimus.storage.runs.inflight",
    "neuroptimus.storage.journal": "neuroptimus.storage.runs.journal",
    "neuroptimus.storage.fronts": "neuroptimus.storage.runs.fronts",
    "neuroptimus.storage.hypervolume": "neuroptimus.storage.runs.hypervolume",
    "neuroptimus.storage.metadata": "neuroptimus.storage.runs.metadata",
    "neuroptimus.storage.provenance": "neuroptimus.storage.runs.provenance",
    "neuroptimus.storage.catalog.models": "neuroptimus.storage.catalog.db.models",
    "neuroptimus.storage.catalog.database": "neuroptimus.storage.catalog.db.database",
    "neuroptimus.storage.catalog.repository": "neuroptimus.storage.catalog.db.repository",
    "neuroptimus.storage.catalog.listing": "neuroptimus.storage.catalog.db.listing",
    "neuroptimus.storage.catalog.leaderboard": "neuroptimus.storage.catalog.db.leaderboard",
    "neuroptimus.storage.catalog.scale": "neuroptimus.flows.benchmarks.catalog_scale",
    "neuroptimus.storage.catalog.curves": "neuroptimus.storage.catalog.db.curves",
    "neuroptimus.storage.catalog.run_ids": "neuroptimus.storage.catalog.db.run_ids",
    "neuroptimus.storage.catalog.migrations": "neuroptimus.storage.catalog.db.migrations",
    "neuroptimus.storage.catalog.migrations.env": "neuroptimus.storage.catalog.db.migrations.env",
    "neuroptimus.storage.catalog.migrations.versions": "neuroptimus.storage.catalog.db.migrations.versions",
    "neuroptimus.storage.catalog.migrations.versions.0001_initial": "neuroptimus.storage.catalog.db.migrations.versions.0001_initial",
    "neuroptimus.storage.catalog.migrations.versions.0002_security": "neuroptimus.storage.catalog.db.migrations.versions.0002_security",
    "neuroptimus.storage.catalog.uploads": "neuroptimus.storage.catalog.intake.uploads",
    "neuroptimus.storage.catalog.upload_intake": "neuroptimus.storage.catalog.web.upload_intake",
    "neuroptimus.storage.catalog.unpacking": "neuroptimus.storage.catalog.intake.unpacking",
    "neuroptimus.storage.catalog.ingest": "neuroptimus.storage.catalog.intake.ingest",
    "neuroptimus.storage.catalog.held_problems": "neuroptimus.storage.catalog.intake.held_problems",
    "neuroptimus.storage.catalog.api": "neuroptimus.storage.catalog.web.app",
    "neuroptimus.storage.catalog.routes_runs": "neuroptimus.storage.catalog.web.routes_runs",
    "neuroptimus.storage.catalog.routes_use_cases": "neuroptimus.storage.catalog.web.routes_use_cases",
    "neuroptimus.storage.catalog.routes_accounts": "neuroptimus.storage.catalog.web.routes_accounts",
    "neuroptimus.storage.catalog.auth": "neuroptimus.storage.catalog.web.auth",
    "neuroptimus.storage.catalog.request_guard": "neuroptimus.storage.catalog.web.request_guard",
    "neuroptimus.storage.catalog.request_helpers": "neuroptimus.storage.catalog.web.request_helpers",
    "neuroptimus.storage.catalog.security_headers": "neuroptimus.storage.catalog.web.security_headers",
    "neuroptimus.analysis.catalog_pages": "neuroptimus.storage.catalog.web.pages",
    "neuroptimus.analysis.catalog_figures": "neuroptimus.storage.catalog.web.figures",
    "neuroptimus.analysis.catalog_screenshots": "neuroptimus.storage.catalog.web.screenshots",
    "neuroptimus.analysis.catalog_site": "neuroptimus.storage.catalog.web.site",
    "neuroptimus.storage.catalog.records": "neuroptimus.storage.catalog.db.records",
    "neuroptimus.storage.catalog.intake.upload_intake": "neuroptimus.storage.catalog.web.upload_intake",
    "neuroptimus.storage.catalog.db.scale": "neuroptimus.flows.benchmarks.catalog_scale",
    "neuroptimus.flows.trust_cli": "neuroptimus.flows.cli.trust",
    "neuroptimus.storage.sensitivity": "neuroptimus.storage.runs.sensitivity",
}


def new_name(module: str) -> str:
    """The module path a pickled class is found at today."""
    if module.partition(".")[0] in OLD_LAYERS:
        module = f"neuroptimus.{module}"
    while module in MOVED:  # a module may have moved more than once
        module = MOVED[module]
    return module


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(new_name(module), name)


def load(file: IO[bytes]) -> Any:
    """``pickle.load`` for the project's own files."""
    return _Unpickler(file).load()


def loads(data: bytes) -> Any:
    """``pickle.loads`` for the project's own files."""
    return _Unpickler(io.BytesIO(data)).load()


# rename-imports: keep old names (this file is about them)
