"""Benchmarks of the framework itself (printed ratios, not timed tests)."""

from __future__ import annotations

import csv as csv_module
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from neuroptimus.flows.benchmarks.loaded_model import built_model, in_fresh_process
from neuroptimus.optimization.problem.problem_file import with_overrides
from neuroptimus.optimization.problem.spec import ProblemSpec


def machine() -> str:
    """The machine a benchmark ran on, in words (no host name)."""
    return (
        f"{os.cpu_count()} CPUs {platform.machine()}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def evaluation_times(spec: ProblemSpec, repeats: int | None = None) -> dict:
    """Per evaluation, in a fresh process: the framework's evaluation (``evaluate_one``:
    parameters applied, every sweep simulated, the costs scored) against the bare NEURON
    simulation of the same model with the same values (``_time_evaluations``). Python and
    external models have no bare NEURON simulation to compare with: only the framework's
    evaluation is timed (``bare_simulation`` says "skipped")."""

    return in_fresh_process(_time_evaluations, spec, repeats)


def _time_evaluations(spec: ProblemSpec, repeats: int | None) -> dict:
    """The model is built once (the framework's own setup); each repeat then times one
    framework evaluation, and for NEURON models right after it the bare simulation
    (``loaded_model.built_model``)."""
    from neuroptimus.optimization.evaluation.individual import OK, STATUSES, evaluate_one  # noqa: PLC0415 (lazy: each benchmark using this module loads only what it runs)

    simulator, problem, values, bare_simulation = built_model(spec)
    started = time.perf_counter()
    evaluate_one(problem, values)  # warm-up (caches, first allocations)
    first = time.perf_counter() - started
    # about 20 s of timing on a model of a second per evaluation, more repeats on faster ones
    repeats = repeats or int(min(20, max(3, 10.0 / max(first, 1e-6))))
    load_before = os.getloadavg()[0]
    framework, bare, scoring = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        errors, status, message, _ = evaluate_one(problem, values)
        framework.append(time.perf_counter() - started)
        if status != OK:
            raise RuntimeError(f"the evaluation ended {STATUSES[status]}: {message}")
        if bare_simulation is not None:
            started = time.perf_counter()
            bare_simulation()
            bare.append(time.perf_counter() - started)
    load_after = os.getloadavg()[0]
    traces = simulator.run(problem.space.as_dict(values))
    for _ in range(repeats):
        started = time.perf_counter()
        problem.objective.errors(traces)
        scoring.append(time.perf_counter() - started)
    framework_s, scoring_s = float(np.median(framework)), float(np.median(scoring))
    figures = {
        "evaluation_repeats": repeats,
        # an e-model's protocols are its sweeps
        "sweeps": spec.protocol.sweeps if spec.protocol else len(spec.protocols),
        "framework_evaluation_ms": framework_s * 1000,
        "scoring_ms": scoring_s * 1000,
        "load_1min_before": load_before,
        "load_1min_after": load_after,
        "cores": os.cpu_count(),
    }
    if bare_simulation is None:  # (text figures only here: NEURON's CSV stays all numbers)
        kind = spec.model.simulator
        return {**figures, "simulator": kind, "bare_simulation": "skipped (not a NEURON model)"}
    bare_s = float(np.median(bare))
    return {
        **figures,
        "bare_simulation_ms": bare_s * 1000,
        "bare_scored_ms": (bare_s + scoring_s) * 1000,
        "framework_to_bare_ratio": framework_s / bare_s,
    }


def describe_evaluation(name: str, f: dict) -> str:
    """The figures of ``evaluation_times`` as the lines the benchmark prints."""
    lines = [
        f"one evaluation of {name} ({f['sweeps']} sweep(s), median of "
        f"{f['evaluation_repeats']} at the middle of the bounds):",
        f"  framework evaluation  {f['framework_evaluation_ms']:10.1f} ms (parameters, "
        f"simulation, scoring {f['scoring_ms']:.1f} ms)",
    ]
    if "bare_simulation_ms" in f:
        lines += [
            f"  bare NEURON           {f['bare_simulation_ms']:10.1f} ms (same model and values: "
            "finitialize + psolve per sweep)",
            f"  ratio                 {f['framework_to_bare_ratio']:10.3f} (framework / bare)",
        ]
    else:
        why = (
            "an e-model (NEURON, one protocol after another, each its own duration and steps)"
            if f["simulator"] == "emodel"
            else f"{f['simulator']} model, not NEURON"
        )
        lines.append(
            f"  bare NEURON           skipped: {why} (the framework evaluation includes the "
            "whole simulation)"
        )
    lines.append(
        f"  machine load          {f['load_1min_before']:.2f} → {f['load_1min_after']:.2f} "
        f"(1-min load average before → after, {f['cores']} cores)"
    )
    return "\n".join(lines)


def overhead(
    spec: ProblemSpec,
    population: int,
    generations: int,
    workers: int,
    seed: int,
    csv: str | Path | None = None,
    algorithm: str | None = None,
    full_run: bool = True,
    repeats: int | None = None,
    profile_seconds: float = 0.0,
    other_neuron: str | None = None,
) -> dict:
    """Time one evaluation in the framework against the bare NEURON simulation of the same
    model (``evaluation_times``; python and external models: the framework's alone); then,
    with ``full_run``, run one full optimization with the command line (``neuroptimus run``,
    its own process: setup → optimize → analyze, Prefect and Zarr included) on a LocalCluster
    of ``workers``, print where its time and memory go, and write the figures to ``csv``.
    ``profile_seconds``: before the run, sample that long where a simulation's time goes
    (``simulation_profile``; written beside ``csv`` as NAME-profile.csv). ``other_neuron``: a
    Python with another NEURON, under which the bare simulation is timed too
    (``other_neuron.compare``; its figures go into the CSV as well)."""

    spec = with_overrides(
        spec, algorithm=algorithm, population=population, generations=generations, seed=seed
    )
    spec = spec.model_copy(update={"stopping": type(spec.stopping)()})  # the whole budget
    times = evaluation_times(spec, repeats)
    print(describe_evaluation(spec.name, times))
    if other_neuron:
        from neuroptimus.flows.benchmarks import other_neuron as versions  # noqa: PLC0415 (lazy: only --other-neuron needs it)

        compared = versions.compare(spec, other_neuron, times["evaluation_repeats"])
        print(versions.describe(spec.name, compared))
        times = {**times, **{f"versions_{key}": value for key, value in compared.items()}}
    figures = dict(times)
    if profile_seconds > 0:
        from neuroptimus.flows.benchmarks import simulation_profile as sampled  # noqa: PLC0415 (lazy: only --profile needs it)

        profile = sampled.profile_simulation(spec, profile_seconds)
        print(sampled.describe_profile(profile))
        if csv:
            path = Path(csv).with_name(f"{Path(csv).stem}-profile.csv")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_rows(path, sampled.profile_rows(profile))
            print(f"profile written to {path}")
    if full_run:
        with tempfile.TemporaryDirectory() as folder:
            run = run_command_line(spec, workers, Path(folder))
        figures = {**run, **times}
        bare = times.get("bare_simulation_ms")
        if bare is not None:  # a NEURON model
            figures.update(
                ideal_wall_seconds=run["evaluations"] * times["bare_scored_ms"] / 1000 / workers,
                run_evaluation_to_bare_ratio=run["mean_evaluation_ms"] / bare,
                generation_to_bare_ratio=run["generation_ms_per_evaluation"] / bare,
            )
        print(describe_run(figures))
    if csv:
        write_figures(csv, {"": figures})
        print(f"figures written to {csv}")
    return figures


def run_command_line(spec: ProblemSpec, workers: int, folder: Path) -> dict:
    """``neuroptimus run`` on ``spec`` in a new process; the figures of its store's profile
    (``neuroptimus.flows.run_profile``), of its generations, and its process's start and end."""
    from prefect.settings import PREFECT_API_URL  # noqa: PLC0415 (lazy: each benchmark using this module loads only what it runs)

    from neuroptimus.storage.runs.run_store import RunStore  # noqa: PLC0415 (lazy: each benchmark using this module loads only what it runs)

    problem, store = folder / "problem.yaml", folder / "run.zarr"
    problem.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    env = dict(os.environ)
    if PREFECT_API_URL.value():  # the server this process uses (a test harness's, say)
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    command = [sys.executable, "-m", "neuroptimus.flows.cli", "run", str(problem),
               "--store", str(store), "--workers", str(workers)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    ended = time.time()
    if result.returncode:
        raise RuntimeError(f"the benchmark's run failed:\n{result.stderr[-3000:]}")
    run = RunStore.open(store)
    profile = run.attrs["profile"]
    evaluations, stats = run.evaluations(), run.generations()
    n, g = len(evaluations["total"]), len(stats["seconds"])
    busy = float(evaluations["seconds"].sum())
    wall = profile["flow_finished"] - profile["flow_started"]
    first_started = profile["first_generation_done"] - stats["seconds"][0]
    report = (store / "report.html").stat().st_mtime
    figures = {
        "evaluations": n,
        "generations": g,
        "workers": workers,
        "wall_seconds": wall,
        "evaluation_seconds": busy,
        "mean_evaluation_ms": busy / n * 1000,
        "efficiency": busy / (wall * workers),
        "efficiency_generations_only": busy / (float(stats["seconds"].sum()) * workers),
        # a worker's share of the generations' wall time per evaluation (all costs included)
        "generation_ms_per_evaluation": float(stats["seconds"].sum()) * workers / n * 1000,
        # the run once started: from the end of its first generation to the end of its last
        "marginal_seconds": profile["last_generation_done"] - profile["first_generation_done"],
        "marginal_evaluations": n - int(stats["evaluations"][0]),
        "store_ms_per_generation": profile["store_critical_seconds"] / g * 1000,
        "store_background_ms_per_generation": (
            profile["store_write_seconds"] + profile["store_commit_seconds"]
        )
        / g
        * 1000,
        # each result handed to the store as it arrives (and looked up on resume), and the
        # in-flight records written behind
        "stream_ms_per_generation": profile.get("store_stream_seconds", 0.0) / g * 1000,
        "stream_background_ms_per_generation": (
            profile.get("store_stream_write_seconds", 0.0) / g * 1000
        ),
        "artifacts_ms_per_generation": profile["artifacts_seconds"] / g * 1000,
        # the algorithm's own time (its asks and tells), beside the generations' evaluations
        "algorithm_ms_per_generation": float(stats["algorithm_seconds"].sum()) / g * 1000,
        "algorithm_percent_of_evaluation": (
            100 * float(stats["algorithm_seconds"].sum()) / float(stats["seconds"].sum())
        ),
        "artifacts_api_ms_per_generation": profile["artifacts_api_seconds"] / g * 1000,
        "cluster_start_seconds": profile["cluster_ready"] - profile["cluster_starting"],
        "start_to_first_generation_seconds": first_started - profile["process_started"],
        "last_generation_to_report_seconds": report - profile["last_generation_done"],
        "last_generation_to_exit_seconds": ended - profile["last_generation_done"],
        "rss_generation_10_mb": profile.get("rss_generation_10", float("nan")) / 2**20,
        "rss_end_mb": profile["rss_end"] / 2**20,
    }
    figures["rss_growth_percent"] = 100 * (
        figures["rss_end_mb"] / figures["rss_generation_10_mb"] - 1
    )
    fronts = profile.get("store_hypervolume_cpu_seconds")
    if fronts is not None:
        critical = profile.get("store_fronts_finish_seconds", 0.0)
        beside = profile.get("store_fronts_seconds", 0.0) + fronts
        figures.update(
            fronts_critical_seconds=critical,
            fronts_critical_percent=100 * critical / wall,
            fronts_background_cpu_seconds=beside,
            fronts_background_cpu_percent=100 * beside / wall,
        )
    return figures


def describe_run(f: dict) -> str:
    """The figures of ``run_command_line`` as the lines the benchmarks print."""
    lines = [
        f"{f['evaluations']} evaluations in {f['generations']} generations on {f['workers']} "
        f"workers: {f['wall_seconds']:.1f} s in the optimize flow"
        + (f" (ideal {f['ideal_wall_seconds']:.1f} s)" if "ideal_wall_seconds" in f else ""),
        f"mean evaluation inside the framework: {f['mean_evaluation_ms']:.1f} ms"
        + (
            f" ({f['run_evaluation_to_bare_ratio']:.3f} × bare NEURON); generations' wall time "
            f"× workers per evaluation: {f['generation_ms_per_evaluation']:.1f} ms "
            f"({f['generation_to_bare_ratio']:.3f} × bare NEURON)"
            if "generation_to_bare_ratio" in f
            else ""
        ),
        f"parallel efficiency, whole optimize flow (cluster start included): {f['efficiency']:.3f}",
        f"parallel efficiency, generations only: {f['efficiency_generations_only']:.3f}",
        f"per generation: store writes {f['store_ms_per_generation']:.1f} ms on the critical "
        f"path ({f['store_background_ms_per_generation']:.1f} ms written in the background), "
        f"Prefect artifacts {f['artifacts_ms_per_generation']:.1f} ms "
        f"({f['artifacts_api_ms_per_generation']:.1f} ms of API calls beside the run)",
        f"streaming each result into the store: {f['stream_ms_per_generation']:.2f} ms per "
        f"generation on the critical path ({f['stream_background_ms_per_generation']:.1f} ms "
        "written in the background)",
        f"the algorithm's own time (ask and tell): {f['algorithm_ms_per_generation']:.1f} ms per "
        f"generation, {f['algorithm_percent_of_evaluation']:.2f} % of the generations' "
        "evaluation time",
        f"cluster start: {f['cluster_start_seconds']:.1f} s",
        f"fixed cost: process start → first generation {f['start_to_first_generation_seconds']:.1f}"
        f" s; last generation → report written {f['last_generation_to_report_seconds']:.1f} s "
        f"(→ process exit {f['last_generation_to_exit_seconds']:.1f} s)",
        f"memory of the flow process: {f['rss_generation_10_mb']:.0f} MB at generation 10, "
        f"{f['rss_end_mb']:.0f} MB at the end ({f['rss_growth_percent']:+.1f} %)",
    ]
    if "fronts_critical_seconds" in f:
        lines.append(
            f"fronts and hypervolumes: {f['fronts_critical_seconds']:.2f} s on the critical path "
            f"({f['fronts_critical_percent']:.2f} % of the wall time); "
            f"{f['fronts_background_cpu_seconds']:.1f} s of CPU beside it "
            f"({f['fronts_background_cpu_percent']:.1f} % of the wall time)"
        )
    return "\n".join(lines)


def write_figures(path: str | Path, scenarios: dict[str, dict]) -> None:
    """Figures as CSV rows ``scenario,figure,value`` (docs/benchmarks.md quotes them from here)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv_module.writer(handle)
        writer.writerow(["scenario", "figure", "value"])
        for scenario, figures in scenarios.items():
            for name, value in figures.items():
                text = f"{value:.6g}" if isinstance(value, float) else value
                writer.writerow([scenario, name, text])


def write_rows(path: str | Path, rows: list[dict], columns: list[str] | None = None) -> None:
    """Rows as a CSV table; the columns default to every key, in order of appearance."""
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv_module.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _model_cpu(key: str, points: np.ndarray) -> float:
    """CPU seconds per individual of evaluating ``points`` in a plain loop (on a worker)."""
    from neuroptimus.optimization.evaluation.individual import evaluate_batch  # noqa: PLC0415 (lazy: each benchmark using this module loads only what it runs)
    from neuroptimus.optimization.execution.worker_tasks import installed_problem  # noqa: PLC0415 (lazy: each benchmark using this module loads only what it runs)

    started = time.process_time()
    evaluate_batch(installed_problem(key), points)
    return (time.process_time() - started) / len(points)


def _cpu_seconds(client) -> tuple[float, float]:
    """CPU seconds used so far by all workers, and by this (client + scheduler) process."""
    return sum(client.run(time.process_time).values()), time.process_time()


def orchestration(
    spec: ProblemSpec, individuals: int, workers: int, repeats: int, chunk_settings: list[int]
) -> None:
    """Print the orchestration cost per individual of one generation of a cheap model (the
    problem's model simulated for 1 ms with its first cost function) on a LocalCluster, for
    each number of chunks per worker (0: a task per individual) and the default chunking."""

    from neuroptimus.optimization.evaluation.problem import build_problem  # noqa: PLC0415 (lazy: each benchmark using this module loads only what it runs)
    from neuroptimus.optimization.execution.cluster import ClusterConfig, connect  # noqa: PLC0415 (lazy: each benchmark using this module loads only what it runs)
    from neuroptimus.optimization.execution.dask_evaluator import DaskEvaluator  # noqa: PLC0415 (lazy: each benchmark using this module loads only what it runs)

    protocol = spec.protocol.model_copy(update={"tstop_ms": 1.0})
    costs = spec.costs.model_copy(update={"functions": spec.costs.functions[:1]})
    problem = build_problem(spec.model_copy(update={"protocol": protocol, "costs": costs}))
    rng = np.random.default_rng(0)
    points = problem.space.to_real(rng.random((individuals, problem.space.dimension)))
    started = time.perf_counter()
    with connect(ClusterConfig(workers=workers)) as client:
        client.wait_for_workers(workers)
        print(f"{workers} workers on {os.cpu_count()} cores started in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        DaskEvaluator(client, problem)(points)  # installs the model on every worker
        first = next(iter(client.scheduler_info(n_workers=-1)["workers"]))
        model = client.run(_model_cpu, problem.identity, points[:200], workers=[first])[first]
        before = _cpu_seconds(client)
        time.sleep(2.0)
        after = _cpu_seconds(client)
        idle_workers, idle_client = (after[0] - before[0]) / 2.0, (after[1] - before[1]) / 2.0
        print(
            f"the model alone: {model * 1e3:.3f} ms CPU per individual; the idle cluster uses "
            f"{idle_workers * 1e3:.0f} ms/s CPU in its workers, {idle_client * 1e3:.0f} ms/s "
            f"in the client\n\n{individuals} individuals per generation, median of {repeats} "
            f"generations\n{'chunks/worker':>13} {'tasks':>6} {'wall ms':>8} {'wall ms/ind':>11} "
            f"{'client+scheduler CPU ms/ind':>27} {'workers CPU beyond model ms/ind':>31}"
        )
        fixed = ClusterConfig(workers=workers, min_task_s=0)  # exactly the chunks asked for
        for setting in [*chunk_settings, None]:
            if setting is None:  # the default: chunks sized by the last generation's timings
                name, evaluator = "default", DaskEvaluator(client, problem)
            else:
                name = str(setting or "individual")
                evaluator = DaskEvaluator(client, problem, setting or individuals, fixed)
            evaluator(points)  # warm-up (and timings for the default)
            walls, ours, theirs = [], [], []
            for _ in range(repeats):
                before = _cpu_seconds(client)
                started = time.perf_counter()
                evaluator(points)
                walls.append(time.perf_counter() - started)
                after = _cpu_seconds(client)
                theirs.append(after[0] - before[0])
                ours.append(after[1] - before[1])
            wall = statistics.median(walls)
            client_cpu = statistics.median(ours) / individuals
            worker_cpu = statistics.median(theirs) / individuals - model
            print(
                f"{name:>13} {evaluator._chunks(individuals):>6} {wall * 1e3:>8.0f} "
                f"{wall / individuals * 1e3:>11.3f} {client_cpu * 1e3:>27.3f} "
                f"{worker_cpu * 1e3:>31.3f}"
            )
    print(
        "\ndefault: up to 4 chunks per worker, fewer when a chunk would carry less than 0.1 s "
        "of simulation. wall: one generation (on a busy machine it shows the machine, not the "
        "framework). client+scheduler: the serial part, per individual. workers: CPU spent on "
        "the generation beyond the model's own cost (idle activity included)."
    )
