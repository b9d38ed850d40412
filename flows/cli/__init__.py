"""The ``neuroptimus`` command line."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from neuroptimus import usecases as bundled
from neuroptimus.flows.cli import benchmark as benchmark_cli
from neuroptimus.flows.cli import bluepyopt as bluepyopt_cli
from neuroptimus.flows.cli import catalog as catalog_cli
from neuroptimus.flows.cli import features as features_cli
from neuroptimus.flows.cli.catalog import local_stores
from neuroptimus.flows.cli.common import (
    PREFECT_STATE,
    ClusterOption,
    ProblemArg,
    check_imported,
    cluster_config,
    fail,
    fail_on,
    load,
    prefect_ready,
)
from neuroptimus.flows.cli.evaluate import evaluate
from neuroptimus.flows.cli.launch import claim_process, launch_run
from neuroptimus.flows.cli.trust import (
    identifiability_command,
    posterior_command,
    sensitivity_command,
    validate_command,
)
from neuroptimus.flows.phases import mark
from neuroptimus.optimization.errors import NeuroptimusError

# Prefect's own INFO lines would drown the progress bar; --verbose brings them back.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# A local run has nothing to report home (and the machine may have no route out).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary local server of a run can be slow to start on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

ReportOption = Annotated[
    bool,
    typer.Option(
        help="Write report.html at the end; --no-report writes metadata.json only (runs in "
        "bulk), and `neuroptimus analyze STORE` draws the report later."
    ),
]

app = typer.Typer(
    help="Fit neuron-model parameters to data: run, resume and inspect optimizations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(benchmark_cli.app, name="benchmark")
app.add_typer(features_cli.app, name="features")
app.add_typer(catalog_cli.app, name="catalog")
app.command("import-bluepyopt")(bluepyopt_cli.import_bluepyopt)


def _verbose(verbose: bool) -> None:
    if verbose:
        os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"


def _print_result(result: dict) -> None:
    typer.echo(f"\nstopped: {result['stop_reason']} after {result['evaluations']} evaluations")
    if result.get("reused"):  # a resume took results streamed before the run stopped
        typer.echo(f"{result['reused']} evaluations taken from the store, not simulated again")
    typer.echo(f"best total error: {result['total']:.6g} (generation {result['generation']})")
    typer.echo("best parameters:")
    for name, value in result["parameters"].items():
        typer.echo(f"  {name:<16} {value:.6g}")
    report = result["report"] or "not written (--no-report: `neuroptimus analyze STORE` writes it)"
    typer.echo(f"report:   {report}\nmetadata: {result['metadata']}")
    if result.get("model_output"):  # what the model printed, kept off the terminal
        typer.echo(f"model output: {result['model_output']}")


@app.command(epilog=PREFECT_STATE)
def run(
    problem: ProblemArg = "hh",
    algorithm: Annotated[
        str | None,
        typer.Option(
            help="Algorithm name (see `algorithms`); A+B chains them, the last stage taking a "
            "fifth of the budget (unless the problem file gives these stages)."
        ),
    ] = None,
    population: Annotated[int | None, typer.Option(help="Individuals per generation.")] = None,
    generations: Annotated[
        int | None, typer.Option(help="Generations (budget = pop × gen).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (same seed, same run).")] = None,
    store: Annotated[Path | None, typer.Option(help="New run store folder.")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Dask worker processes (default: cores).")
    ] = None,
    cluster: ClusterOption = "local",
    warm_start: Annotated[
        str | None,
        typer.Option(
            help="Start from the best individuals of a run store, a folder of run stores or a "
            "catalog entry <server>/runs/<id> of the same use case."
        ),
    ] = None,
    validate_best: Annotated[
        int | None,
        typer.Option(
            "--validate-best",
            min=0,
            help="Evaluate this many of the best distinct individuals on the problem's "
            "validation: protocols after the fit (default: its validation.best, 10; 0: off).",
        ),
    ] = None,  # fmt: skip
    report: ReportOption = True,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's log lines.")] = False,
) -> None:
    """Optimize a problem: setup → optimize (on a Dask cluster) → analyze.

    Mistakes are found before the run store exists — a parameter target, section or recorded
    variable the model lacks, a target file that does not fit the protocol, a population or a
    setting the algorithm refuses, a store that exists already: one line naming the file or
    field, and exit code 2."""
    _verbose(verbose)
    from neuroptimus.flows.server.state import private_prefect_state  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    # Prefect's server needs seconds of CPU to start: it starts first, and the problem is
    # loaded and checked meanwhile (a mistake stops it again within milliseconds).
    with private_prefect_state() as prefect_state:
        from neuroptimus.optimization.problem.problem_file import with_overrides  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
        from neuroptimus.optimization.problem.spec_base import SpecError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
        from neuroptimus.storage.runs.create import default_store  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

        spec = load(problem)
        try:
            spec = with_overrides(
                spec, algorithm=algorithm, population=population, generations=generations,
                seed=seed, warm_start=_source(warm_start), validate_best=validate_best,
            )  # fmt: skip
        except SpecError as error:
            fail(str(error))
        config = cluster_config(cluster, workers)
        store = store or Path(default_store(spec))
        typer.echo(f"run store: {store}")
        result = launch_run(spec, store, config, prefect_state, report)
    mark("stopped")  # the cluster and Prefect's server
    _print_result(result)


def _source(warm_start: str | None) -> str | None:
    """A warm start's source as the problem keeps it: a path made absolute (the problem
    resolves relative ones against its own folder), a catalog address as given."""
    if warm_start is None or warm_start.startswith(("http://", "https://")):
        return warm_start
    return str(Path(warm_start).resolve())


@app.command(epilog=PREFECT_STATE)
def resume(
    store: Annotated[Path, typer.Argument(help="Run store of an interrupted run.")],
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="Cluster profile (name or YAML path). Default: the cluster the run used.",
        ),
    ] = None,
    report: ReportOption = True,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's log lines.")] = False,
) -> None:
    """Continue an interrupted run from its store and checkpoint, then analyze it."""
    _verbose(verbose)
    from neuroptimus.storage.runs.create import check_not_being_written, check_resumable  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    config = (
        None if cluster is None and workers is None else cluster_config(cluster or "local", workers)
    )
    try:
        check_resumable(store)
    except NeuroptimusError as error:
        fail_on(error)
    try:
        check_not_being_written(store)
    except NeuroptimusError as error:
        fail_on(error)
    with prefect_ready():
        from neuroptimus.flows.run import resume_flow  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

        try:
            result = resume_flow(str(store), config, progress=True, report=report)
        except NeuroptimusError as error:
            fail_on(error)
    _print_result(result)


@app.command(epilog=PREFECT_STATE)
def analyze(
    store: Annotated[Path, typer.Argument(help="Run store.")],
    identifiability: Annotated[
        bool,
        typer.Option(
            "--identifiability",
            help="Print which parameters the stored individuals constrain (no simulation) and "
            "write the table as CSV (--csv, default STORE/identifiability.csv).",
        ),
    ] = False,
    sensitivity: Annotated[
        bool,
        typer.Option(
            "--sensitivity",
            help="Evaluate 2 points per parameter around the best on the run's cluster (or "
            "--cluster), store the Jacobian in the store, print it, and rewrite the report.",
        ),
    ] = False,
    validate: Annotated[
        bool,
        typer.Option(
            "--validate",
            help="Evaluate the best distinct individuals on the problem's validation: "
            "protocols and targets (on a cluster like the run's, or --cluster), store them in "
            "the store, print them, and rewrite the report and metadata.",
        ),
    ] = False,
    best: Annotated[
        int | None,
        typer.Option(min=1, help="With --validate: how many (default: the problem's, 10)."),
    ] = None,
    posterior: Annotated[
        bool,
        typer.Option(
            "--posterior",
            help="Of a run sampled by emcee: print the marginals' medians, 95 % credible "
            "intervals, autocorrelation times and acceptance (no simulation); CSV as above.",
        ),
    ] = False,
    burn: Annotated[
        int | None, typer.Option(help="--posterior: steps dropped first (default: half).")
    ] = None,
    thin: Annotated[int, typer.Option(help="--posterior: keep every THIN-th step.")] = 1,
    factor: Annotated[
        float, typer.Option(help="Near-optimal: total within this factor of the best.")
    ] = 2.0,
    k_sd: Annotated[
        float,
        typer.Option(
            "--k-sd",
            help="Near-optimal for a features target: every feature within this many "
            "standard deviations.",
        ),
    ] = 2.0,
    step: Annotated[
        float, typer.Option(help="Finite-difference step, a share of each normalised range.")
    ] = 0.01,
    csv: Annotated[
        Path | None,
        typer.Option(help="The CSV to write (with both options: the identifiability's)."),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="Cluster profile for --sensitivity and --validate (default: the run's).",
        ),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
) -> None:
    """(Re)write metadata.json and report.html of a run store; or tell how far to trust its
    fit: --identifiability (from the stored individuals), --posterior (from an emcee run's
    chain), --sensitivity and --validate (simulate)."""

    given = cluster is not None or workers is not None
    config = cluster_config(cluster or "local", workers) if given else None
    if posterior:
        posterior_command(store, burn, thin, csv if not identifiability else None)
    if identifiability:
        identifiability_command(store, factor, k_sd, csv)
    if sensitivity:
        sensitivity_command(store, step, config, csv if not identifiability else None)
    if validate:
        validate_command(store, best, config)
    if (identifiability or posterior) and not (sensitivity or validate):
        return  # a table from the store: the report is left as it is
    with prefect_ready():
        from neuroptimus.flows.analyze import analyze_flow  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

        try:
            paths = analyze_flow(str(store))
        except NeuroptimusError as error:
            fail_on(error)
    typer.echo(f"report:   {paths['report']}\nmetadata: {paths['metadata']}")


app.command()(evaluate)  # evaluate.py


@app.command()
def algorithms() -> None:
    """List the available search algorithms and their facts."""
    from neuroptimus.optimization.algorithms import list_algorithms  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    infos = list_algorithms()
    name_width = max(len(info.name) for info in infos) + 2
    label_width = max(len(info.label) for info in infos) + 2
    for info in infos:
        kind = "multi-objective" if info.multi_objective else "single-objective"
        mode = "batch-parallel" if info.parallel else "serial"
        defaults = ", ".join(f"{k}={v}" for k, v in info.defaults.items()) or "-"
        typer.echo(
            f"{info.name:<{name_width}}{info.label:<{label_width}}{info.package:<10}"
            f"{kind:<18}{mode}"
        )
        typer.echo(f"{'':<{name_width}}defaults: {defaults}")
    typer.echo(f"\n{len(infos)} algorithms")


@app.command()
def usecases() -> None:
    """List the bundled benchmark problems."""

    for name in bundled.names():
        typer.echo(f"{name:<16} {bundled.description(name)}")


@app.command("import-settings")
def import_settings(
    settings: Annotated[
        Path, typer.Argument(help="Settings JSON of the original Neuroptimus (…_settings.json).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Problem file to write (default: problem.yaml beside the settings)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Convert a settings file of the original Neuroptimus into a problem file.

    Files are looked up where the settings say, then by name beside the settings file.

    A user function is written beside the problem file (user_function.py).

    What cannot be carried over is printed and kept as comments atop the problem file.

    NEURON settings only: external simulators are not supported yet.
    """
    from neuroptimus.optimization.original.settings import SettingsImportError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.original.settings import import_settings as convert  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    out = out or settings.parent / "problem.yaml"
    try:
        result = convert(settings, out, force=force)
    except SettingsImportError as error:
        fail(str(error))
    for line in result.resolved:
        typer.echo(f"resolved  {line}")
    for note in result.notes:
        typer.secho(f"note      {note}", fg=typer.colors.YELLOW)
    for path in [out, *(out.parent / name for name in result.files)]:
        typer.echo(f"wrote     {path}")
    check_imported(out)


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; the default admits this machine only."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the UI and the API.")] = 4200,
    limit: Annotated[
        int, typer.Option(help="Flow runs at once (each starts its own Dask cluster).")
    ] = 1,
) -> None:
    """Start what a workstation needs for the Prefect UI: a local Prefect server (SQLite in
    PREFECT_HOME), the deployments of deployments/prefect.yaml and a process worker.

    Open the printed address, choose Deployments → run (or resume, benchmark) → Run → Custom
    run, fill in the form and submit. Ctrl-C stops the worker and the server."""
    from neuroptimus.flows.server.serve import ServeError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.flows.server.serve import serve as supervise  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        supervise(host, port, limit, say=typer.echo)
    except ServeError as error:
        fail(str(error), error.code)


@app.command()
def explore(
    stores: Annotated[
        list[str],
        typer.Argument(
            help="Run stores, folders of run stores (e.g. a benchmark folder), or catalog "
            "entries (<server>/runs/<id>: their stores are downloaded once, and opened read-only)."
        ),
    ],
    port: Annotated[int, typer.Option(help="Port on localhost (0: any free port).")] = 0,
    show: Annotated[
        bool, typer.Option("--show/--no-browser", help="Open the explorer in a browser tab.")
    ] = True,
    refresh: Annotated[
        float, typer.Option(help="Seconds between re-reads of the stores (0: never).")
    ] = 2.0,
) -> None:
    """Explore run stores in the browser: convergence, parameter space (select individuals to
    see their errors and simulated traces), diversity, Pareto fronts and traces.

    Follows running optimizations: every few seconds the stores are re-read (committed
    generations only) and the views show the new individuals. Ctrl-C stops the server."""
    from neuroptimus.analysis.serve import serve_explorer  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        serve_explorer(local_stores(stores), port=port, show=show, refresh_seconds=refresh)
    except NeuroptimusError as error:
        fail_on(error)
    except KeyboardInterrupt:
        typer.echo("\nstopped")


def main() -> None:  # pragma: no cover - console entry point
    run_and_exit(app)


def run_and_exit(application: typer.Typer) -> None:
    """Run the command line; after a success, end the process without tearing the interpreter
    down (freeing thousands of modules' objects: about a second). The exit hooks the libraries
    registered still run first (they send Prefect's queued logs, stop a temporary server
    Prefect started itself, flush the logs); a failure exits the usual way."""
    claim_process()
    try:
        application()
    except SystemExit as done:
        if done.code not in (None, 0):
            raise
    mark("exit")
    main = threading.main_thread()
    # someone's work is unfinished: the usual exit waits for it
    if any(not thread.daemon and thread is not main for thread in threading.enumerate()):
        mark("teardown")
        return
    atexit._run_exitfuncs()
    mark("exit-hooks-done")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a pipe whose reader has gone
            pass
    os._exit(0)
