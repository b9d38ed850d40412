"""``neuroptimus benchmark …``: commands that measure the framework (not timed tests)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from neuroptimus.flows.cli.common import (
    PREFECT_STATE,
    ProblemArg,
    fail,
    fail_on,
    load,
    prefect_ready,
)
from neuroptimus.optimization.errors import NeuroptimusError

app = typer.Typer(help="Measure the framework (not timed tests).", no_args_is_help=True)


@app.command("overhead", epilog=PREFECT_STATE)
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
    full_run: Annotated[
        bool,
        typer.Option(
            help="After the per-evaluation timing, a whole run of population × "
            "generations through the command line."
        ),
    ] = True,
    repeats: Annotated[
        int | None,
        typer.Option(help="Timed evaluations (default: about 20 s worth, 3 to 20)."),
    ] = None,
    profile: Annotated[
        float,
        typer.Option(
            help="Seconds of sampling where a simulation's time goes, NEURON's native functions "
            "included (py-spy: pip install 'neuroptimus[profile]'); 0: none."
        ),
    ] = 0.0,
    other_neuron: Annotated[
        str | None,
        typer.Option(
            help="A Python with another NEURON installed (python -m venv nrn8 && "
            "nrn8/bin/pip install --no-deps neuron==8.2.6 packaging find-libpython): the bare "
            "simulation also under it, everything else taken from this environment."
        ),
    ] = None,
) -> None:
    """One evaluation in the framework vs the bare NEURON simulation of the same model (same
    values: finitialize + psolve per sweep) and their ratio (python and external models: the
    framework's evaluation alone, the bare comparison skipped); then where a full run's time
    and memory go (Prefect and Zarr included). Works on any problem (a bundled name or a
    problem file); a slow model wants a smaller --population and --generations."""
    from neuroptimus.flows.benchmarks.overhead import overhead  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        overhead(load(problem), population, generations, workers, seed, csv, algorithm,
                 full_run, repeats, profile, other_neuron)  # fmt: skip
    except NeuroptimusError as error:
        fail_on(error)


@app.command("algorithms", epilog=PREFECT_STATE)
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
    thresholds: Annotated[
        str, typer.Option(help="Errors to count evaluations to (comma-separated).")
    ] = "1e-10",
) -> None:
    """Compare algorithms the paper's way: the same budget, N seeds each, scores and plots.

    An interrupted benchmark continues where it stopped when started again with the same
    folder: finished runs are reused, interrupted ones resumed. On a folder of finished runs
    it simulates nothing and rewrites the tables and the page from the stores."""
    from prefect.task_runners import ThreadPoolTaskRunner  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    from neuroptimus.flows.compare import benchmark_flow, check_algorithms, default_folder  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.execution.cluster import ClusterConfig  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.problem.spec_base import SpecError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    spec = load(problem)
    names = [name.strip() for name in algorithms.split(",") if name.strip()]
    try:
        check_algorithms(names)  # before Prefect starts
        levels = [float(value) for value in thresholds.split(",") if value.strip()]
    except SpecError as error:
        fail(str(error))
    except ValueError:
        fail(f"--thresholds {thresholds!r}: give numbers separated by commas, e.g. 1e-10,1e-6")
    flow = benchmark_flow.with_options(task_runner=ThreadPoolTaskRunner(concurrent_runs))
    folder = folder or Path(default_folder(spec))
    typer.echo(f"{len(names)} algorithms × {seeds} seeds into {folder}")
    started = time.perf_counter()
    with prefect_ready():
        try:
            paths = flow(
                spec, names, seeds, population, generations, str(folder),
                ClusterConfig(workers=workers), progress=True, thresholds=levels,
            )  # fmt: skip
        except NeuroptimusError as error:
            fail_on(error)
    typer.echo(f"finished in {time.perf_counter() - started:.0f} s")
    for kind, path in paths.items():
        typer.echo(f"{kind:<8} {path}")


@app.command("orchestration")
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
    from neuroptimus.flows.benchmarks.overhead import orchestration  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    settings = [int(text) for text in chunks_per_worker.split(",")]
    orchestration(load("hh"), individuals, workers, repeats, settings)


@app.command("mechanisms")
def benchmark_mechanisms(
    problem: ProblemArg,
    points: Annotated[int, typer.Option(help="Individuals whose traces are compared.")] = 5,
    repeats: Annotated[int, typer.Option(help="Timed simulations per build and round.")] = 5,
    rounds: Annotated[int, typer.Option(help="Rounds, the builds' order alternating.")] = 2,
    engines: Annotated[
        bool,
        typer.Option(
            "--engines",
            help="Compare NEURON's and CoreNEURON's integration of the sweeps (model.engine) "
            "instead of the two builds.",
        ),
    ] = False,
    csv: Annotated[Path | None, typer.Option(help="Write the figures here.")] = None,
) -> None:
    """The problem's mechanisms compiled as NEURON does and with the tuned flags (the default,
    see NEUROPTIMUS_MECHANISM_FLAGS), or with --engines its sweeps integrated by NEURON and by
    CoreNEURON, each in fresh processes: are the traces the same (bit for bit, else how
    close), and how long does the bare simulation take with each?"""
    from neuroptimus.flows.benchmarks import mechanism_flags  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.flows.benchmarks.overhead import write_figures  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    compare = mechanism_flags.compare_engines if engines else mechanism_flags.compare_builds
    try:
        figures = compare(load(problem), points, repeats, rounds)
    except NeuroptimusError as error:
        fail_on(error)
    print(mechanism_flags.describe(figures))
    if csv:
        write_figures(csv, {"": figures})
        print(f"figures written to {csv}")


@app.command("explore")
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
    from neuroptimus.flows.benchmarks.large_store import run as run_benchmark  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    run_benchmark(evaluations, population, store)


@app.command("serial")
def benchmark_serial(
    problem: ProblemArg = "hh",
    algorithms: Annotated[
        str, typer.Option(help="Comma-separated names; the last one is the reference.")
    ] = "pygmo-de,cmaes",
    evaluations: Annotated[int, typer.Option(help="Evaluations per algorithm.")] = 3000,
    workers: Annotated[int, typer.Option(help="LocalCluster worker processes.")] = 2,
    seed: int = 1,
    output: Annotated[Path, typer.Option(help="CSV file written.")] = Path("serial-benchmark.csv"),
) -> None:
    """Wall time per evaluation of serial algorithms (islands) against a batch algorithm on the
    same cluster, with the same number of evaluations; prints the ratios and writes a CSV."""
    from neuroptimus.flows.benchmarks.serial import serial_benchmark  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.flows.compare import check_algorithms  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    names = [name.strip() for name in algorithms.split(",") if name.strip()]
    try:
        check_algorithms(names)
        with prefect_ready():
            serial_benchmark(load(problem), names, evaluations, workers, seed, output)
    except NeuroptimusError as error:
        fail_on(error)


@app.command("budget")
def benchmark_budget(
    algorithms: Annotated[
        str,
        typer.Option(
            help="Comma-separated names (default: every serial algorithm and "
            "every one that restarts)."
        ),
    ] = "",
    evaluations: Annotated[int, typer.Option(help="Budget of every run.")] = 3000,
    dimension: Annotated[int, typer.Option(help="Dimension of the test function.")] = 10,
    problems: Annotated[
        str, typer.Option(help="Comma-separated: rastrigin (the test function), hh (UC1).")
    ] = "rastrigin,hh",
    seed: int = 1,
    restarts: Annotated[
        int | None,
        typer.Option(help="Set 'restarts' of the algorithms that have it (0: as before restarts)."),
    ] = None,
    output: Annotated[Path, typer.Option(help="CSV file written.")] = Path("budget.csv"),
) -> None:
    """Do serial algorithms use their budget? Every serial algorithm (islands) and every one
    that restarts by itself runs with the same budget on a 10-D Rastrigin function and on UC1
    (its error target kept, no stagnation rule), evaluated in this process; prints the share
    of the budget each used and writes a CSV."""
    from neuroptimus.flows.benchmarks.budget import budget_algorithms, budget_benchmark  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.flows.compare import check_algorithms  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    names = [name.strip() for name in algorithms.split(",") if name.strip()] or budget_algorithms()
    chosen = tuple(name.strip() for name in problems.split(",") if name.strip())
    try:
        check_algorithms(names)
        budget_benchmark(
            load("hh"), names, evaluations, dimension, seed, output,
            chosen, say=typer.echo, restarts=restarts,
        )  # fmt: skip
    except NeuroptimusError as error:
        fail_on(error)


@app.command("fronts")
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
    from neuroptimus.flows.benchmarks.fronts import fronts_benchmark  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    fronts_benchmark(load("hh"), population, generations, workers, worst_generations, pause, csv)


@app.command("startup")
def benchmark_startup(
    problem: ProblemArg = "hh",
    repeats: Annotated[int, typer.Option(help="Runs timed.")] = 3,
    output: Annotated[Path, typer.Option(help="CSV file written.")] = Path("startup-benchmark.csv"),
) -> None:
    """The fixed cost of `neuroptimus run`: runs of 4 evaluations (population 2, 2 generations,
    2 workers), each a new process; prints process start → first generation, last generation
    → exit and their sum (goal: at most 6 s on an idle machine), and writes a CSV."""
    from neuroptimus.flows.benchmarks.startup import startup_benchmark  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        startup_benchmark(problem, repeats, output, say=typer.echo)
    except RuntimeError as error:
        fail(str(error), 1)


@app.command("objectives", epilog=PREFECT_STATE)
def benchmark_objectives(
    population: int = 100,
    generations: int = 10,
    workers: int = 2,
    repeats: Annotated[int, typer.Option(help="Pairs of runs, the two cases interleaved.")] = 3,
    output: Annotated[Path, typer.Option(help="CSV file written.")] = Path(
        "objectives-benchmark.csv"
    ),
) -> None:
    """Marginal cost per evaluation of a 12-objective run (UC1, 3 sweeps × 4 costs,
    pygmo-nsga2) against 3 × that of the single-sweep CMA-ES run (goal: at most 1.5): wall
    time per evaluation from the end of the first generation to the end of the last; medians
    of interleaved pairs of `neuroptimus run` commands; writes a CSV."""
    from neuroptimus.flows.benchmarks.objectives import objectives_benchmark  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        with prefect_ready():
            objectives_benchmark(load("hh"), population, generations, workers, repeats, output,
                                 say=typer.echo)  # fmt: skip
    except (NeuroptimusError, RuntimeError) as error:
        fail_on(error)


@app.command("bluepyopt", epilog=PREFECT_STATE)
def benchmark_bluepyopt(
    offspring: Annotated[
        int, typer.Option(help="Offspring size (our population), evaluations per generation.")
    ] = 8,
    generations: Annotated[int, typer.Option(help="Generations (BluePyOpt's max_ngen).")] = 3,
    workers: Annotated[int, typer.Option(help="Processes evaluating, on each side.")] = 2,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds, a pair of runs each.")] = "1",
    csv: Annotated[Path, typer.Option(help="Write the figures here.")] = Path("bluepyopt-l5pc.csv"),
    figure: Annotated[
        Path | None, typer.Option(help="PNG of the best score against evaluations.")
    ] = Path("bluepyopt-l5pc.png"),
) -> None:
    """BluePyOpt's L5PC example optimised by BluePyOpt (its own code: l5pc_evaluator.create()
    and DEAPOptimisation with IBEA on a pool of processes) and by `neuroptimus run l5pc
    --algorithm bluepyopt-ibea`, interleaved, with the same offspring size, generations, seed
    and workers: whole-process wall time, time and CPU per evaluation, best summed score at
    equal evaluations. Writes a CSV of the runs, one of the best score after every generation
    (its name + -best) and the figure. The default takes about 15 minutes on 2 cores."""
    from neuroptimus.flows.benchmarks.bluepyopt_l5pc import bluepyopt_benchmark  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        chosen = tuple(int(text) for text in seeds.split(",") if text.strip())
    except ValueError:
        fail(f"--seeds {seeds!r}: give integers separated by commas, e.g. 1,2,3")
    if not chosen or min(offspring, generations, workers) < 1:
        fail("--offspring, --generations and --workers must be at least 1, with one seed or more")
    try:
        with prefect_ready():
            bluepyopt_benchmark(offspring, generations, workers, chosen, csv, figure,
                                say=typer.echo)  # fmt: skip
    except (NeuroptimusError, RuntimeError) as error:
        fail_on(error)


@app.command("posterior")
def benchmark_posterior(
    seeds: Annotated[int, typer.Option(help="Noise seeds, each sampled once.")] = 20,
    population: Annotated[int, typer.Option(help="Half the walkers.")] = 8,
    generations: Annotated[int, typer.Option(help="Half-steps of the ensemble.")] = 1000,
    workers: Annotated[int, typer.Option(help="Seeds sampled at once.")] = 2,
    csv: Annotated[Path, typer.Option(help="Write the rows here.")] = Path("posterior.csv"),
) -> None:
    """Are emcee's 95 % credible intervals right? A charging curve with three parameters,
    fitted to recordings of known true values with noise of SD 1 mV (one per noise seed):
    how often the intervals hold the true values, and how far they lie from the grid's."""
    from neuroptimus.flows.benchmarks.posterior import posterior_benchmark  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    posterior_benchmark(seeds, population, generations, workers, csv, say=typer.echo)


@app.command("fewer-evaluations", epilog=PREFECT_STATE)
def benchmark_fewer_evaluations(
    problem: ProblemArg,
    reference: Annotated[str, typer.Option(help="The algorithm whose error sets the targets.")] = (
        "cmaes"
    ),
    candidates: Annotated[
        str, typer.Option(help="Comma-separated algorithms (a+b: a chain) to measure.")
    ] = "cma-lq,optuna-tpe,cmaes+scipy-nelder-mead",
    seeds: Annotated[int, typer.Option(help="Runs per method, seeds 1…N.")] = 3,
    population: Annotated[int, typer.Option(help="Individuals per generation.")] = 16,
    evaluations: Annotated[
        int, typer.Option(help="The reference's budget; its median best there is the target.")
    ] = 1000,
    early: Annotated[int, typer.Option(help="A second, smaller budget and target.")] = 300,
    candidate_evaluations: Annotated[
        int | None,
        typer.Option(
            help="The candidates' budget (default: --evaluations); they stop earlier at the target."
        ),
    ] = None,  # fmt: skip
    folder: Annotated[
        Path | None, typer.Option(help="Run stores and tables (default: runs/fewer-NAME-TIME).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
    concurrent_runs: Annotated[int, typer.Option(help="Runs optimized at once.")] = 4,
    project_cpu_seconds: Annotated[
        float, typer.Option(help="CPU seconds per evaluation of the model to project onto.")
    ] = 121.6,
    project_evaluations: Annotated[
        int, typer.Option(help="Its budget with the reference algorithm.")
    ] = 10_000,
) -> None:
    """Evaluations a candidate needs to reach the error the reference (CMA-ES) reaches with
    --evaluations (and --early) evaluations, as the median over seeds: the reference runs
    first, then each candidate runs until it reaches that error or its budget. Writes the
    benchmark's runs.csv, summary.csv and comparison.html, and fewer-evaluations.csv with each
    method's share of the reference's evaluations, wall time, its own (ask and tell) share of
    the time and the saving projected onto an expensive model (default: use case 7, 121.6 s
    of CPU per evaluation, 10,000 evaluations). An interrupted benchmark continues on the
    same folder; a finished one is only re-scored."""
    from neuroptimus.flows.benchmarks.fewer_evaluations import Projection, fewer_evaluations  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.flows.compare import check_algorithms  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.execution.cluster import ClusterConfig  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.problem.spec_base import SpecError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    spec = load(problem)
    names = [name.strip() for name in candidates.split(",") if name.strip()]
    try:
        check_algorithms([reference, *names])
    except SpecError as error:
        fail(str(error))
    if not 0 < early < evaluations or min(seeds, population) < 1:
        fail("--early must lie between 0 and --evaluations; --seeds and --population at least 1")
    folder = folder or Path(f"runs/fewer-{spec.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    typer.echo(f"{reference} then {len(names)} candidates × {seeds} seeds into {folder}")
    with prefect_ready():
        try:
            paths = fewer_evaluations(
                spec, reference, names, seeds, population, evaluations, early, folder,
                ClusterConfig(workers=workers), Projection(project_cpu_seconds,
                project_evaluations), concurrent_runs, candidate_evaluations,
            )  # fmt: skip
        except NeuroptimusError as error:
            fail_on(error)
    for kind, path in paths.items():
        typer.echo(f"{kind:<8} {path}")
