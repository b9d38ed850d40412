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
    verbose: Annotated[bool, typer.Option(help="Show Prefect's log lines.")] = False,
) -> None:
    """Optimize a problem: setup → optimize (on a local Dask cluster) → analyze."""
    _verbose(verbose)
    from optimization.spec import SpecError, with_overrides

    spec = _load(problem)
    try:
        spec = with_overrides(
            spec, algorithm=algorithm, population=population, generations=generations, seed=seed
        )
    except SpecError as error:
        _fail(str(error))
    if store is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        store = Path("runs") / f"{spec.name}-{spec.algorithm.name}-seed{spec.seed}-{stamp}.zarr"
    from flows.run import run_flow
    from optimization.cluster import ClusterConfig

    typer.echo(f"run store: {store}")
    try:
        result = run_flow(spec, str(store), ClusterConfig(workers=workers), progress=True)
    except _user_errors() as error:
        _fail(str(error), 1)
    _print_result(result)


@app.command()
def resume(
    store: Annotated[Path, typer.Argument(help="Run store of an interrupted run.")],
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
    verbose: Annotated[bool, typer.Option(help="Show Prefect's log lines.")] = False,
) -> None:
    """Continue an interrupted run from its store and checkpoint, then analyze it."""
    _verbose(verbose)
    from flows.run import resume_flow_run
    from optimization.cluster import ClusterConfig

    try:
        result = resume_flow_run(str(store), ClusterConfig(workers=workers), progress=True)
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
) -> None:
    """Parallel efficiency of one full run (Prefect and Zarr included) vs the bare model."""
    from flows.benchmark import overhead

    try:
        overhead(_load(problem), population, generations, workers, seed)
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
    folder: Annotated[Path, typer.Option(help="Run stores and comparison go here.")] = Path(
        "runs/benchmark"
    ),
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
    concurrent_runs: Annotated[int, typer.Option(help="Runs optimized at once.")] = 4,
) -> None:
    """Compare algorithms the paper's way: the same budget, N seeds each, scores and plots.

    An interrupted benchmark continues where it stopped when started again with the same
    folder: finished runs are reused, interrupted ones resumed."""
    from optimization.algorithms import get_algorithm
    from optimization.spec import SpecError

    spec = _load(problem)
    names = [name.strip() for name in algorithms.split(",") if name.strip()]
    try:
        for name in names:
            get_algorithm(name)
    except (KeyError, ValueError) as error:
        _fail(str(error))
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.compare import benchmark_flow
    from optimization.cluster import ClusterConfig

    flow = benchmark_flow.with_options(task_runner=ThreadPoolTaskRunner(concurrent_runs))
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


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
