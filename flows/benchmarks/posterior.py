"""`neuroptimus benchmark posterior`: are emcee's credible intervals right?

A UC1-like problem: a membrane's charging curve after a current step,
``V(t) = rest + amplitude · (1 − exp(−t / tau))``, three parameters, fitted to a recording made
from known true values plus Gaussian noise of SD 1 mV. Each noise seed is sampled by emcee in a
process of its own (no cluster, no Prefect) into a run store, the way a run writes it, and its
95 % intervals are set against the true values (inside about 95 times in 100 over many noise
seeds, if the intervals are right) and against the same posterior computed on a grid. The
tests run one short seed of it (tests/optimization/test_posterior.py).
"""

from __future__ import annotations

import csv as csv_module
import tempfile
import textwrap
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import yaml

from neuroptimus.analysis.posterior_tables import posterior_of
from neuroptimus.optimization.evaluation.individual import evaluate_batch
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.storage.runs.create import create_run_store
from neuroptimus.storage.runs.run_store import RunStore

MODEL = """
import math


def build(spec):
    protocol = spec["protocol"]
    dt = protocol["dt_ms"]
    return [i * dt for i in range(int(round(protocol["tstop_ms"] / dt)) + 1)]


def simulate(times, values, sweep):
    rest, amplitude, tau = values["rest_mV"], values["amplitude_mV"], values["tau_ms"]
    return [rest + amplitude * (1.0 - math.exp(-t / tau)) for t in times]
"""

TRUE = {"rest_mV": -65.0, "amplitude_mV": 10.0, "tau_ms": 20.0}
NOISE_SD_MV = 1.0
TSTOP_MS, DT_MS = 60.0, 1.0
PARAMETERS = [
    {"name": "rest_mV", "lower": -75.0, "upper": -55.0, "true_value": TRUE["rest_mV"]},
    {"name": "amplitude_mV", "lower": 1.0, "upper": 30.0, "true_value": TRUE["amplitude_mV"]},
    {"name": "tau_ms", "lower": 2.0, "upper": 100.0, "log": True, "true_value": TRUE["tau_ms"]},
]


def times() -> np.ndarray:
    return np.arange(int(round(TSTOP_MS / DT_MS)) + 1) * DT_MS


def curve(rest, amplitude, tau) -> np.ndarray:
    """The model, vectorised: parameters broadcast against the time axis (last)."""
    return rest + amplitude * (1.0 - np.exp(-times() / tau))


def recording(seed: int = 3) -> np.ndarray:
    """The true curve plus noise of SD NOISE_SD_MV drawn with ``seed``."""
    noise = np.random.default_rng(seed).normal(0.0, NOISE_SD_MV, len(times()))
    return curve(TRUE["rest_mV"], TRUE["amplitude_mV"], TRUE["tau_ms"]) + noise


def write_problem(
    folder: Path, population: int = 8, generations: int = 400, algorithm: str = "emcee",
    settings: dict | None = None, seed: int = 5, noise_seed: int = 3,
) -> Path:  # fmt: skip
    """The problem's files in ``folder``: model, recording (noise drawn with ``noise_seed``)
    and problem.yaml (the sampler seeded with ``seed``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "charging.py").write_text(textwrap.dedent(MODEL).lstrip())
    trace = recording(noise_seed)
    np.savetxt(folder / "recording.txt", np.column_stack([times(), trace]), fmt="%.10g")
    data = {
        "name": "charging",
        "description": "a charging curve with noise of SD 1 mV",
        "model": {"simulator": "python", "file": "charging.py"},
        "parameters": PARAMETERS,
        "protocol": {"tstop_ms": TSTOP_MS, "dt_ms": DT_MS},
        "target": {"file": "recording.txt", "sampling_rate_hz": 1000 / DT_MS},
        "costs": {"functions": [{"name": "MSE", "weight": 1.0}]},
        "algorithm": {
            "name": algorithm,
            "population": population,
            "generations": generations,
            "settings": {"noise_sd_mV": NOISE_SD_MV} if settings is None else settings,
        },  # fmt: skip
        "evaluation": {"timeout_s": 60},
        "seed": seed,
    }
    path = folder / "problem.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_store(
    folder: Path, stop_after: int | None = None, name: str = "charging.zarr", **settings
) -> Path:
    """A run store ``name`` of the problem in ``folder``, continued if it exists
    (``stop_after``: stop after that many generations without finishing, as a killed run
    leaves it)."""

    problem = build_problem(load_problem(write_problem(folder / "problem", **settings)))
    path = folder / name
    store = RunStore.open(path, mode="r+") if path.exists() else create_run_store(problem, path)
    run = OptimizationRun(problem, store)

    def evaluate(points, **_):
        return evaluate_batch(problem, points)

    if stop_after is None:
        run_to_end(run, evaluate)
    else:
        while run.generation < stop_after and run.stop_reason is None:
            run.run_generation(evaluate)
    store.close()
    return path


# Where the grid posterior is computed: the prior is uniform, so the posterior restricted to a
# box holding all its mass is the same, on a finer grid. The rest potential lies within a few
# tenths of a mV of the truth; amplitude and tau trade off along a ridge (a slow curve that
# rises further), which for some noise draws reaches tau's upper bound: their box is the
# bounds above the truth.
GRID = {"rest_mV": (-69.0, -61.0), "amplitude_mV": (6.0, 30.0), "tau_ms": (8.0, 100.0)}


@cache
def grid_posterior(points: int = 120, noise_seed: int = 3) -> tuple[list[np.ndarray], np.ndarray]:
    """The posterior (prior uniform in the bounds, log-uniform in tau) on a grid uniform in
    each parameter's scale: the axes (real units) and the normalised probabilities."""
    axes = []
    for p in PARAMETERS:
        low, high = GRID[p["name"]]
        axes.append(np.geomspace(low, high, points) if p.get("log") else
                    np.linspace(low, high, points))  # fmt: skip
    amplitude, tau = np.meshgrid(axes[1], axes[2], indexing="ij")
    rise = amplitude[..., None] * (1.0 - np.exp(-times() / tau[..., None]))
    observed = recording(noise_seed)
    log_l = np.empty((points, points, points))
    for i, rest in enumerate(axes[0]):  # one rest value at a time: the whole grid is too big
        log_l[i] = -0.5 * ((rest + rise - observed) ** 2).sum(axis=-1) / NOISE_SD_MV**2
    probability = np.exp(log_l - log_l.max())
    return axes, probability / probability.sum()


def grid_interval(axis: int, level: float = 0.95, noise_seed: int = 3) -> tuple[float, float]:
    """The central credible interval of one parameter from the grid posterior."""
    axes, probability = grid_posterior(noise_seed=noise_seed)
    others = tuple(i for i in range(len(axes)) if i != axis)
    cumulative = np.cumsum(probability.sum(axis=others))
    tail = (1 - level) / 2
    return float(np.interp(tail, cumulative, axes[axis])), float(
        np.interp(1 - tail, cumulative, axes[axis])
    )


def sampled_seed(folder: Path, noise_seed: int, population: int, generations: int) -> dict:
    """One noise seed sampled into ``folder`` and summarised (run in a process of its own)."""

    path = run_store(folder, population=population, generations=generations,
                     noise_seed=noise_seed, seed=noise_seed)  # fmt: skip
    summary = posterior_of(path)
    rows = []
    for axis, p in enumerate(summary.parameters):
        grid_low, grid_high = grid_interval(axis, noise_seed=noise_seed)
        rows.append({
            "noise_seed": noise_seed, "parameter": p.name, "true": TRUE[p.name],
            "median": p.median, "ci95_low": p.low, "ci95_high": p.high,
            "inside": p.low <= TRUE[p.name] <= p.high, "grid_low": grid_low,
            "grid_high": grid_high, "tau_steps": p.tau_steps, "steps": summary.steps,
            "walkers": summary.walkers, "stuck_walkers": len(summary.stuck),
            "acceptance": summary.acceptance,
        })  # fmt: skip
    return {"rows": rows, "warnings": summary.warnings}


def posterior_benchmark(
    seeds: int, population: int, generations: int, workers: int, csv: Path, say=print
) -> list[dict]:
    """``seeds`` noise seeds, each sampled in a fresh process; writes one CSV row per seed and
    parameter and prints the coverage of the 95 % intervals."""

    rows = []
    with tempfile.TemporaryDirectory() as scratch, ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), max_tasks_per_child=1  # one model a process
    ) as pool:  # fmt: skip
        futures = [
            pool.submit(sampled_seed, Path(scratch) / f"seed-{seed}", seed, population, generations)
            for seed in range(1, seeds + 1)
        ]
        for future in futures:
            found = future.result()
            rows += found["rows"]
            inside = sum(row["inside"] for row in found["rows"])
            say(f"noise seed {found['rows'][0]['noise_seed']}: {inside}/3 true values inside")
    with open(csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv_module.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    inside = sum(row["inside"] for row in rows)
    say(f"coverage of the 95 % intervals: {inside}/{len(rows)} = {inside / len(rows):.3f}")
    for name in TRUE:
        mine = [row for row in rows if row["parameter"] == name]
        shift = [max(abs(r["ci95_low"] - r["grid_low"]), abs(r["ci95_high"] - r["grid_high"]))
                 / (r["grid_high"] - r["grid_low"]) for r in mine]  # fmt: skip
        say(
            f"{name}: {sum(r['inside'] for r in mine)}/{len(mine)} inside; ends within "
            f"{max(shift):.1%} of the grid interval's width of the grid's ends (worst seed)"
        )
    return rows
