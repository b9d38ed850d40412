"""`neuroptimus benchmark bluepyopt`: BluePyOpt's L5PC example optimised by BluePyOpt itself and by
Neuroptimus, side by side, with the same algorithm, offspring size, generations, seed and cores.

- *bluepyopt*: the example's own code (``l5pc_evaluator.create()``, from BluePyOpt's files
  fetched through the data registry and copied into a scratch folder, its mechanisms compiled
  there by nrnivmodl beforehand) with ``DEAPOptimisation(selector_name="IBEA", ...)`` and a pool
  of ``workers`` processes as its map function (``bluepyopt_example_run.py``, its own process);
  BluePyOpt builds the cell anew for every evaluation.
- *neuroptimus*: ``neuroptimus run l5pc --algorithm bluepyopt-ibea`` with the same offspring
  size (its population), generations, seed and workers (a LocalCluster); the cell is built once
  per worker. Its whole process includes the report it writes at the end.

The runs are interleaved, one pair per seed, the order alternating from pair to pair (ours
first for the first seed, BluePyOpt's for the second …), so that the machine's other work weighs
on both alike. Per run: whole-process wall time, the generations'
wall time (first evaluation asked → last one returned), the CPU seconds of the process and
everything it started (a Prefect server already running left out), each per
evaluation, and the best summed score after every generation — both sides evaluate the same
number of individuals per generation, so the curves compare scores at equal evaluations.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from prefect.settings import PREFECT_API_URL

from neuroptimus.flows.benchmarks.objectives import TreeCpu
from neuroptimus.flows.benchmarks.overhead import machine, write_rows
from neuroptimus.flows.phases import PHASE_LOG, read_marks
from neuroptimus.optimization.problem.data import fetch
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.simulators.mechanisms import compile_mechanisms, problem_sources
from neuroptimus.optimization.simulators.nmodl_compiler import nrnivmodl
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path

EXAMPLE = "data://bluepyopt/examples/l5pc"
SIDES = ("neuroptimus", "bluepyopt")
RUN_SCRIPT = Path(__file__).with_name("bluepyopt_example_run.py")
COLUMNS = (
    "measured", "side", "seed", "offspring", "generations", "workers", "evaluations",
    "wall_s", "wall_s_per_evaluation", "generations_s", "generations_s_per_evaluation",
    "cpu_s", "cpu_s_per_evaluation", "best", "load_before", "load_after", "machine",
)  # fmt: skip


def prepare_example(folder: Path) -> Path:
    """A copy of BluePyOpt's example in ``folder`` with its mechanisms compiled by nrnivmodl."""

    example = folder / "l5pc"
    shutil.copytree(fetch(EXAMPLE), example)
    done = subprocess.run([nrnivmodl(), "mechanisms"], cwd=example, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"nrnivmodl failed on BluePyOpt's mechanisms:\n{done.stdout[-2000:]}")
    return example


def compile_ours() -> None:
    """Compile (or find cached) the l5pc problem's mechanisms before any run is timed."""

    compile_mechanisms(problem_sources(load_problem(problem_path("l5pc"))))


def best_so_far(totals_per_generation: list[np.ndarray]) -> list[tuple[int, float]]:
    """(evaluations so far, best summed score so far) after each generation."""
    curve, count, best = [], 0, np.inf
    for totals in totals_per_generation:
        count += len(totals)
        best = min(best, float(np.min(totals))) if len(totals) else best
        curve.append((count, best))
    return curve


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run ``command`` as a new process: its (wall, CPU of its process tree) seconds. Both
    counts of the CPU are lower bounds, so the larger is kept: the OS's count of descendants
    waited for misses Dask's workers (never waited for), the sampled one misses most of the
    short processes BluePyOpt starts for each protocol."""
    before = _children_cpu()
    started = time.time()
    with TreeCpu() as sampled:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.time() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:4])} … failed:\n{done.stderr[-3000:]}")
    return wall, max(_children_cpu() - before, sum(sampled.seconds()))


def run_ours(offspring: int, generations: int, workers: int, seed: int, folder: Path) -> dict:

    store, phases = folder / "run.zarr", folder / "phases.txt"
    env = {**os.environ, PHASE_LOG: str(phases)}
    if PREFECT_API_URL.value():  # the server this process made ready
        env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    command = [
        sys.executable, "-m", "neuroptimus.flows.cli", "run", "l5pc",
        "--algorithm", "bluepyopt-ibea", "--population", str(offspring),
        "--generations", str(generations), "--workers", str(workers), "--seed", str(seed),
        "--store", str(store),
    ]  # fmt: skip
    wall, cpu = _timed(command, folder, env)
    marks = read_marks(phases)
    rows = RunStore.open(store).evaluations()
    per_generation = [rows["total"][rows["generation"] == g] for g in np.unique(rows["generation"])]
    return {
        "wall_s": wall, "cpu_s": cpu, "curve": best_so_far(per_generation),
        "generations_s": marks["generations-end"][0] - marks["generations-start"][0],
    }  # fmt: skip


def run_theirs(
    offspring: int, generations: int, workers: int, seed: int, example: Path, folder: Path
) -> dict:
    output = folder / "bluepyopt.json"
    command = [sys.executable, str(RUN_SCRIPT), str(offspring), str(generations), str(workers),
               str(seed), str(output)]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key != PHASE_LOG}
    wall, cpu = _timed(command, example, env)
    batches = json.loads(output.read_text())["batches"]
    return {
        "wall_s": wall, "cpu_s": cpu,
        "curve": best_so_far([np.array(batch["totals"]) for batch in batches]),
        "generations_s": batches[-1]["done"] - batches[0]["started"],
    }  # fmt: skip


def _row(side: str, seed: int, settings: tuple[int, int, int], figures: dict, load: float) -> dict:
    offspring, generations, workers = settings
    evaluations, best = figures["curve"][-1]
    return {
        "measured": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "side": side, "seed": seed, "offspring": offspring, "generations": generations,
        "workers": workers, "evaluations": evaluations,
        "wall_s": round(figures["wall_s"], 2),
        "wall_s_per_evaluation": round(figures["wall_s"] / evaluations, 3),
        "generations_s": round(figures["generations_s"], 2),
        "generations_s_per_evaluation": round(figures["generations_s"] / evaluations, 3),
        "cpu_s": round(figures["cpu_s"], 2),
        "cpu_s_per_evaluation": round(figures["cpu_s"] / evaluations, 3),
        "best": round(best, 4), "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2), "machine": machine(),
    }  # fmt: skip


def bluepyopt_benchmark(
    offspring: int = 8,
    generations: int = 3,
    workers: int = 2,
    seeds: tuple[int, ...] = (1,),
    output: str | Path = "bluepyopt-l5pc.csv",
    figure: str | Path | None = "bluepyopt-l5pc.png",
    say=print,
) -> list[dict]:
    """Both sides once per seed, interleaved; prints each run, writes ``output`` (one row per
    run), ``output`` with ``-best`` before its suffix (the best score after every generation)
    and the figure of those curves (PNG)."""
    settings = (offspring, generations, workers)
    listed = ", ".join(map(str, seeds))
    say(f"{machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; offspring {offspring}, "
        f"{generations} generations, {workers} workers, seeds {listed}")  # fmt: skip
    rows, curves = [], []
    with tempfile.TemporaryDirectory(prefix="neuroptimus-bluepyopt-") as scratch:
        example = prepare_example(Path(scratch))
        compile_ours()
        for index, seed in enumerate(seeds):
            order = SIDES if index % 2 == 0 else SIDES[::-1]
            for side in order:
                folder = Path(scratch) / f"{side}-{seed}"
                folder.mkdir()
                load = os.getloadavg()[0]
                if side == "neuroptimus":
                    figures = run_ours(offspring, generations, workers, seed, folder)
                else:
                    figures = run_theirs(offspring, generations, workers, seed, example, folder)
                row = _row(side, seed, settings, figures, load)
                rows.append(row)
                curves += [{"side": side, "seed": seed, "evaluations": n, "best": round(b, 4)}
                           for n, b in figures["curve"]]  # fmt: skip
                say(f"  {side:<11} seed {seed}: {row['wall_s']:7.1f} s whole process "
                    f"({row['wall_s_per_evaluation']:.2f} s/eval; generations "
                    f"{row['generations_s_per_evaluation']:.2f} s/eval), CPU "
                    f"{row['cpu_s_per_evaluation']:.2f} s/eval, best {row['best']:.4g} after "
                    f"{row['evaluations']} evaluations (load {row['load_before']:.1f} → "
                    f"{row['load_after']:.1f})")  # fmt: skip
    output = Path(output)
    write_rows(output, rows, list(COLUMNS))
    best_csv = output.with_name(f"{output.stem}-best{output.suffix}")
    write_rows(best_csv, curves)
    say(f"written: {output}, {best_csv}")
    if figure:
        from neuroptimus.flows.benchmarks.bluepyopt_figure import save_figure  # noqa: PLC0415 (lazy: matplotlib loads only when a figure is asked for)

        save_figure(curves, figure)
        say(f"written: {figure}")
    return rows
