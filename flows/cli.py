"""The ``neuroptimus`` command line."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

# Prefect's own INFO lines would drown the progress bar; --verbose brings them back.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# A local run has nothing to report home (and the machine may have no route out).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary local server of a run can be slow to start on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

app = typer.Typer(
    help="Fit neuron-model parameters to data: run, resume and inspect optimizations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
benchmark_app = typer.Typer(help="Measure the framework (not timed tests).", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")

ProblemArg = Annotated[
    str, typer.Argument(help="A use-case name (hh, vclamp) or the path of a problem YAML file.")
]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def _load(problem: str):
    from optimization.spec import SpecError, load_problem
    from usecases import problem_path

    try:
        return load_problem(problem_path(problem))
    except SpecError as error:
        _fail(str(error))


def _user_errors() -> tuple[type[Exception], ...]:
    from optimization.algorithms import AlgorithmError
    from optimization.data import DataError
    from optimization.problem import TargetError
    from optimization.simulators import ModelError
    from optimization.spec import SpecError
    from storage.run_store import StoreError

    return (SpecError, DataError, TargetError, ModelError, StoreError, AlgorithmError)


def _verbose(verbose: bool) -> None:
    if verbose:
        os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"


ClusterOption = Annotated[
    str,
    typer.Option(
        "--cluster",
        help="Cluster profile: a name in deployments/clusters (local, slurm, pbs …) or the path "
        "of a profile YAML file.",
    ),
]


def _cluster(profile: str, workers: int | None):
    """The cluster profile, with --workers (if given) as its number of workers."""
    from optimization.cluster import ClusterConfig, ClusterError

    try:
        config = ClusterConfig.from_profile(profile)
    except ClusterError as error:
        _fail(str(error))
    if workers is None:
        return config
    # a fixed number of workers replaces the profile's adaptive bounds
    return config.model_copy(
        update={"workers": workers, "adapt_minimum": None, "adapt_maximum": None}
    )


def _print_result(result: dict) -> None:
    typer.echo(f"\nstopped: {result['stop_reason']} after {result['evaluations']} evaluations")
    typer.echo(f"best total error: {result['total']:.6g} (generation {result['generation']})")
    typer.echo("best parameters:")
    for name, value in result["parameters"].items():
        typer.echo(f"  {name:<16} {value:.6g}")
    typer.echo(f"report:   {result['report']}\nmetadata: {result['metadata']}")


@app.command()
def run(
    problem: ProblemArg = "hh",
    algorithm: Annotated[
        str | None, typer.Option(help="Algorithm name (see `algorithms`).")
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
    verbose: Annotated[bool, typer.Option(help="Show Prefect's log lines.")] = False,
) -> None:
    """Optimize a problem: setup → optimize (on a Dask cluster) → analyze."""
    _verbose(verbose)
    from optimization.spec import SpecError, with_overrides

    spec = _load(problem)
    try:
        spec = with_overrides(
            spec, algorithm=algorithm, population=population, generations=generations, seed=seed
        )
    except SpecError as error:
        _fail(str(error))
    config = _cluster(cluster, workers)
    from flows.run import default_store, run_flow

    store = store or Path(default_store(spec))

    typer.echo(f"run store: {store}")
    try:
        result = run_flow(spec, str(store), config, progress=True)
    except _user_errors() as error:
        _fail(str(error), 1)
    _print_result(result)


@app.command()
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
    verbose: Annotated[bool, typer.Option(help="Show Prefect's log lines.")] = False,
) -> None:
    """Continue an interrupted run from its store and checkpoint, then analyze it."""
    _verbose(verbose)
    config = None if cluster is None and workers is None else _cluster(cluster or "local", workers)
    from flows.run import resume_flow

    try:
        result = resume_flow(str(store), config, progress=True)
    except _user_errors() as error:
        _fail(str(error), 1)
    _print_result(result)


@app.command()
def analyze(store: Annotated[Path, typer.Argument(help="Run store.")]) -> None:
    """(Re)write metadata.json and report.html of a run store."""
    from flows.analyze import analyze_flow

    try:
        paths = analyze_flow(str(store))
    except _user_errors() as error:
        _fail(str(error), 1)
    typer.echo(f"report:   {paths['report']}\nmetadata: {paths['metadata']}")


@app.command()
def evaluate(
    problem: ProblemArg,
    param: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE (repeatable); unset parameters take their true value."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Simulate one parameter vector and print every cost component and the total."""
    import numpy as np

    from optimization.evaluation import STATUSES, evaluate_one
    from optimization.problem import build_problem

    spec = _load(problem)
    values = {p.name: p.true_value for p in spec.parameters}
    for item in param or []:
        name, sep, text = item.partition("=")
        if not sep or name not in values:
            _fail(f"--param {item}: expected NAME=VALUE with NAME one of {', '.join(values)}")
        try:
            values[name] = float(text)
        except ValueError:
            _fail(f"--param {item}: {text!r} is not a number")
    missing = [name for name, value in values.items() if value is None]
    if missing:
        _fail(f"give a value for {', '.join(missing)} with --param NAME=VALUE")
    try:
        built = build_problem(spec)
        vector = np.array([values[name] for name in built.space.names])
        errors, status, message, _ = evaluate_one(built, vector)
    except _user_errors() as error:
        _fail(str(error), 1)
    names, weights = built.component_names, built.objective.weights
    total = float(built.objective.total(errors)) if status == 0 else spec.evaluation.penalty
    if as_json:
        payload = {"total": total, "components": dict(zip(names, map(float, errors), strict=True))}
        if status:
            payload["status"] = STATUSES[status]
        typer.echo(json.dumps(payload))
        return
    typer.echo(f"{'component':<28} {'value':>14} {'weight':>8} {'weighted':>14}")
    for name, value, weight in zip(names, errors, weights, strict=True):
        typer.echo(f"{name:<28} {value:>14.6g} {weight:>8.4g} {value * weight:>14.6g}")
    typer.echo(f"{'total':<28} {'':>14} {'':>8} {total:>14.6g}")
    if status:
        typer.echo(f"status: {STATUSES[status]} ({message})")


@app.command()
def algorithms() -> None:
    """List the available search algorithms and their facts."""
    from optimization.algorithms import list_algorithms

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
    import usecases as bundled

    for name in bundled.names():
        spec = _load(name)
        typer.echo(f"{name:<10} {spec.description}")


@benchmark_app.command("overhead")
def benchmark_overhead(
    problem: ProblemArg = "hh",
    population: int = 100,
    generations: int = 100,
    workers: int = 2,
    seed: int = 1,
    csv: Annotated[Path, typer.Option(help="Write the figures here.")] = Path("overhead.csv"),
    algorithm: Annotated[
        str | None, typer.Option(help="Instead of the problem's (random: never converges).")
    ] = None,
) -> None:
    """Where a full run's time and memory go (Prefect and Zarr included) vs the bare model."""
    from flows.benchmark import overhead

    try:
        overhead(_load(problem), population, generations, workers, seed, csv, algorithm)
    except _user_errors() as error:
        _fail(str(error), 1)


@benchmark_app.command("algorithms")
def benchmark_algorithms(
    problem: ProblemArg,
    algorithms: Annotated[
        str, typer.Option(help="Comma-separated algorithm names (see `algorithms`).")
    ] = "cmaes,inspyred-pso,bluepyopt-ibea,random",
    seeds: Annotated[int, typer.Option(help="Runs per algorithm, seeds 1…N.")] = 10,
    population: Annotated[int, typer.Option(help="Individuals per generation.")] = 100,
    generations: Annotated[int, typer.Option(help="Budget = population × generations.")] = 100,
    folder: Annotated[
        Path | None,
        typer.Option(help="Run stores and comparison (default: runs/benchmark-NAME-TIME)."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
    concurrent_runs: Annotated[int, typer.Option(help="Runs optimized at once.")] = 4,
) -> None:
    """Compare algorithms the paper's way: the same budget, N seeds each, scores and plots.

    An interrupted benchmark continues where it stopped when started again with the same
    folder: finished runs are reused, interrupted ones resumed."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.compare import benchmark_flow, check_algorithms, default_folder
    from optimization.cluster import ClusterConfig
    from optimization.spec import SpecError

    spec = _load(problem)
    names = [name.strip() for name in algorithms.split(",") if name.strip()]
    try:
        check_algorithms(names)  # before Prefect starts
    except SpecError as error:
        _fail(str(error))
    flow = benchmark_flow.with_options(task_runner=ThreadPoolTaskRunner(concurrent_runs))
    folder = folder or Path(default_folder(spec))
    typer.echo(f"{len(names)} algorithms × {seeds} seeds into {folder}")
    started = time.perf_counter()
    try:
        paths = flow(
            spec, names, seeds, population, generations, str(folder),
            ClusterConfig(workers=workers), progress=True,
        )  # fmt: skip
    except (*_user_errors(), SpecError) as error:
        _fail(str(error), 1)
    typer.echo(f"finished in {time.perf_counter() - started:.0f} s")
    for kind, path in paths.items():
        typer.echo(f"{kind:<8} {path}")


@benchmark_app.command("orchestration")
def benchmark_orchestration(
    individuals: Annotated[int, typer.Option(help="Individuals in the generation.")] = 1000,
    workers: Annotated[int, typer.Option(help="LocalCluster worker processes.")] = 16,
    repeats: Annotated[int, typer.Option(help="Generations timed per setting.")] = 5,
    chunks_per_worker: Annotated[
        str, typer.Option(help="Settings to compare (comma-separated; 0 = a task per individual).")
    ] = "1,4,16,0",
) -> None:
    """Orchestration overhead per individual: a generation of a cheap model (UC1's soma,
    1 ms simulated, one cost function) mapped onto a LocalCluster of many workers.

    Wall time depends on how busy the machine is, CPU time much less: the client process
    (client, scheduler, nannies) is the serial part that limits scaling; the workers' CPU
    beyond the model's own cost is the per-worker price."""
    from flows.benchmark import orchestration

    settings = [int(text) for text in chunks_per_worker.split(",")]
    orchestration(_load("hh"), individuals, workers, repeats, settings)


@benchmark_app.command("explore")
def benchmark_explore(
    evaluations: Annotated[
        int, typer.Option(help="Individuals in the synthetic store.")
    ] = 1_000_000,
    population: Annotated[int, typer.Option(help="Individuals per generation.")] = 1000,
    store: Annotated[
        Path | None, typer.Option(help="Keep the synthetic store here (reused if it exists).")
    ] = None,
) -> None:
    """Time opening a store of a million individuals and drawing its parameter space."""
    from analysis.benchmark_large import run as run_benchmark

    run_benchmark(evaluations, population, store)


WORK_POOL = "neuroptimus"  # the process work pool named in deployments/prefect.yaml


def _port_in_use(host: str, port: int) -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, port)) == 0


def _wait_healthy(api_url: str, server, timeout_s: float = 180) -> None:
    """Block until the server answers /health; fail if it exits or takes too long."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            _fail(f"the Prefect server exited (code {server.returncode}); see above", 1)
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    _fail(f"the Prefect server did not answer at {api_url} within {timeout_s:.0f} s", 1)


def _ensure_work_pool(api_url: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.workers.process import ProcessWorker

    pool = WorkPoolCreate(
        name=WORK_POOL,
        type="process",
        base_job_template=ProcessWorker.get_default_base_job_template(),
        description="Neuroptimus flow runs, each a subprocess of the worker",
    )
    with temporary_settings({PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        try:
            client.create_work_pool(pool)
        except ObjectAlreadyExists:
            pass


def _stop(process, name: str) -> None:
    """Let a child stop on the terminal's Ctrl-C, else ask it to (SIGTERM), then insist."""
    import signal
    import subprocess

    for send, wait_s in ((None, 3), (signal.SIGTERM, 20), (signal.SIGKILL, None)):
        if process.poll() is not None:
            return
        if send == signal.SIGKILL:
            typer.echo(f"{name} did not stop; killing it", err=True)
        if send is not None:
            process.send_signal(send)
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


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
    import signal
    import subprocess

    root = Path(__file__).resolve().parents[1]
    prefect_file = root / "deployments" / "prefect.yaml"
    if not prefect_file.is_file():
        _fail(f"{prefect_file} not found: serve runs from a source checkout of neuroptimus")
    if _port_in_use(host, port):
        _fail(f"port {port} on {host} is in use (another server?); choose one with --port")
    api_url = f"http://{host}:{port}/api"
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    prefect = [sys.executable, "-m", "prefect"]
    # Ctrl-C (even when started in the background) and SIGTERM stop everything.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    children: list[tuple[str, subprocess.Popen]] = []
    try:
        typer.echo(f"starting a Prefect server on {host}:{port} …")
        server = subprocess.Popen(
            [*prefect, "server", "start", "--host", host, "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        children.append(("the server", server))
        _wait_healthy(api_url, server)
        _ensure_work_pool(api_url)
        deploy = subprocess.run(
            [*prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)],
            cwd=root, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if deploy.returncode:
            typer.echo(deploy.stdout + deploy.stderr, err=True)
            _fail("prefect deploy failed (its output is above)", 1)
        # Flow runs log INFO to the UI; the worker looks for new runs every few seconds.
        worker_env = {**env, "PREFECT_LOGGING_LEVEL": "INFO"}
        worker_env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "5")
        worker = subprocess.Popen(
            [*prefect, "worker", "start", "--pool", WORK_POOL, "--type", "process",
             "--limit", str(limit)],
            cwd=root, env=worker_env,
        )  # fmt: skip
        children.append(("the worker", worker))
        typer.secho(f"\nPrefect UI: http://{host}:{port}", bold=True)
        typer.echo(
            "deployments: neuroptimus-run/run, neuroptimus-resume/resume, "
            "benchmark-algorithms/benchmark "
            f"(work pool {WORK_POOL}; runs write into {root / 'runs'})\n"
            "Ctrl-C stops the worker and the server."
        )
        while all(process.poll() is None for _, process in children):
            time.sleep(1)
        name, process = next((n, p) for n, p in children if p.poll() is not None)
        _fail(f"{name} exited (code {process.returncode}); stopping", 1)
    except KeyboardInterrupt:
        typer.echo("\nstopping …")
    finally:
        for name, process in reversed(children):
            _stop(process, name)


@app.command()
def explore(
    stores: Annotated[
        list[Path],
        typer.Argument(help="Run stores, or folders of run stores (e.g. a benchmark folder)."),
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
    from analysis.serve import serve_explorer
    from storage.run_store import StoreError

    try:
        serve_explorer(stores, port=port, show=show, refresh_seconds=refresh)
    except StoreError as error:
        _fail(str(error), 1)
    except KeyboardInterrupt:
        typer.echo("\nstopped")


def main() -> None:  # pragma: no cover - console entry point
    app()


@benchmark_app.command("fronts")
def benchmark_fronts(
    population: int = 100,
    generations: int = 20,
    workers: int = 2,
    worst_generations: int = 30,
    pause: Annotated[float, typer.Option(help="Seconds standing in for an evaluation.")] = 1.0,
    csv: Annotated[Path, typer.Option(help="Write the figures here.")] = Path("fronts.csv"),
) -> None:
    """What Pareto fronts and hypervolumes cost: a 12-objective NSGA-II run of UC1 (3
    amplitudes × 4 costs), and a worst-case front of mutually non-dominated points."""
    from flows.benchmark_fronts import fronts_benchmark

    fronts_benchmark(_load("hh"), population, generations, workers, worst_generations, pause, csv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
