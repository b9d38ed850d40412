"""Starting a run, the service every command that runs an optimization shares (``neuroptimus
run``, ``catalog reproduce``): checks first, then Prefect's server, the cluster and the flows,
each started as early as it can be."""

from __future__ import annotations

import gc
import importlib
import threading
from contextlib import ExitStack
from pathlib import Path

from neuroptimus.flows.cli.common import fail_on
from neuroptimus.flows.cli.early_close import EarlyClose
from neuroptimus.flows.phases import mark
from neuroptimus.optimization.errors import NeuroptimusError

# True when the process is the command's alone (the console script, python -m
# neuroptimus.flows.cli), not a caller's that runs the command line in-process (a test's
# CliRunner, a notebook).
_own_process = False


def claim_process() -> None:
    """Say that this process is the command's alone (see ``launch_run``'s ``gc.freeze``)."""
    global _own_process
    _own_process = True


def launch_run(spec, store: Path, config, prefect_state, report: bool = True) -> dict:
    """Start a run as ``neuroptimus run`` does: check the problem while Prefect's server
    (``prefect_state``) and the cluster start (the model is built on one of the cluster's
    workers, which keeps it), then run the flows on that cluster. A mistake stops the command
    in one line (``fail_on``). Without ``report``, no report process starts and only
    metadata.json is written."""
    from neuroptimus.analysis.report_process import early_report_process  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.execution.cluster import connect  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.execution.worker_tasks import install_problem  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.loop.preflight import (  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
        check_algorithm,
        prepare_isolated,
        prepare_on_worker,
    )
    from neuroptimus.optimization.trust.validation import check_validation_targets  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.runs.create import check_new_store  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.warm_start import check_warm_start  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:  # milliseconds: before anything starts
        check_algorithm(spec)
        check_new_store(store)
        check_warm_start(spec)
        check_validation_targets(spec)
    except NeuroptimusError as error:
        fail_on(error)
    mark("checked")
    # Prefect and the flows import (a second of CPU) in a thread while this one mostly waits on
    # the cluster's workers starting and building the model
    flows_imported = threading.Thread(
        target=importlib.import_module, args=("neuroptimus.flows.run",), daemon=True
    )
    flows_imported.start()
    with ExitStack() as started:
        # The report's libraries import in a process of their own while the flows run: from
        # the start when Prefect's server runs already, else once this process has done its
        # own start and only waits for the server (earlier, the import would slow it).
        started.callback(mark, "report-process-closed")
        if report and prefect_state.warm:
            started.enter_context(early_report_process())
        try:
            started.callback(mark, "cluster-closed")
            cluster = EarlyClose(connect(config))  # stopped while the report is written
            client = started.enter_context(cluster)
            mark("cluster-started")
            # a batch queue's workers may not run yet: check in a process of this machine
            prepare = prepare_on_worker if config.is_local else lambda _, s: prepare_isolated(s)
            prepared = prepare(client, spec)
            mark("model-checked")
            if config.is_local:  # the other workers build the model too, before the flows
                install_problem(client, prepared)
                mark("problem-installed")
        except NeuroptimusError as error:
            fail_on(error)
        flows_imported.join()  # an import that failed there fails again here, with its error
        from neuroptimus.flows.run import run_prepared_flow  # noqa: PLC0415 (lazy: see above)

        mark("flows-imported")
        # What is imported lives as long as the command: the collector need not rescan it (a
        # tenth of a second less in the flows' first calls). Only in the command's own
        # process: frozen objects are never collected, and a caller's garbage would stay.
        if _own_process:
            gc.freeze()
        if report and not prefect_state.warm:
            started.enter_context(early_report_process())
        prefect_state.wait()
        mark("prefect-ready")
        try:
            result = run_prepared_flow(
                prepared, str(store), client, progress=True,
                optimized=cluster.close_soon, report=report,
            )  # fmt: skip
        except NeuroptimusError as error:
            fail_on(error)
        mark("flow-finished")
    return result
