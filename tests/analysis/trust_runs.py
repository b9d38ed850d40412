"""A real run of a cheap problem with a parameter that provably does not matter: a Python
model (the ``python`` simulator) whose trace depends on ``amplitude_mV`` and ``period_ms`` and
never reads ``unused``, fitted to a recording of it with noise (so, as with real data, the
best error has a floor and "within a factor of the best" admits the fits the noise allows).
Fitted by CMA-ES in this process (no cluster, no Prefect), written to a run store the way a
run writes it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import yaml

MODEL = """
import math


def build(spec):
    protocol = spec["protocol"]
    return int(round(protocol["tstop_ms"] / protocol["dt_ms"])) + 1


def simulate(samples, values, sweep):
    # `unused` is never read: no value of it can change a trace
    a, period = values["amplitude_mV"], values["period_ms"]
    return [-65.0 + a * math.sin(2 * math.pi * 0.5 * i / period) for i in range(samples)]
"""

# The same wave with its amplitude the product of two gains (only the product matters: the
# near-optimal fits trade one for the other) and the period's bound below the recording's
# 40 ms (the best sits at it).
TRADEOFF_MODEL = MODEL.replace(
    'a, period = values["amplitude_mV"], values["period_ms"]',
    'a, period = values["gain_a"] * values["gain_b"], values["period_ms"]',
)
TRADEOFF_PARAMETERS = [
    {"name": "gain_a", "lower": 1.0, "upper": 8.0},
    {"name": "gain_b", "lower": 1.0, "upper": 8.0},
    {"name": "period_ms", "lower": 20.0, "upper": 39.8, "log": True},
]

TSTOP_MS, DT_MS = 100.0, 0.5


def write_recording(path: Path) -> None:
    """The model at amplitude 8 mV, period 40 ms, with noise of SD 0.5 mV (fixed seed)."""
    time = np.arange(int(TSTOP_MS / DT_MS) + 1) * DT_MS
    noise = np.random.default_rng(11).normal(0.0, 0.5, len(time))
    trace = -65.0 + 8.0 * np.sin(2 * np.pi * time / 40.0) + noise
    np.savetxt(path, np.column_stack([time, trace]), fmt="%.10g")


PARAMETERS = [
    {"name": "amplitude_mV", "lower": 1.0, "upper": 20.0},
    {"name": "unused", "lower": 0.0, "upper": 1.0},
    {"name": "period_ms", "lower": 10.0, "upper": 100.0, "log": True},
]


def write_problem(
    folder: Path, population: int = 20, generations: int = 20, tradeoff: bool = False
) -> Path:
    """The wave problem's files in ``folder`` (``tradeoff``: its two-gain variant)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = TRADEOFF_MODEL if tradeoff else MODEL
    (folder / "wave.py").write_text(textwrap.dedent(model).lstrip())
    write_recording(folder / "recording.txt")
    data = {
        "name": "wave",
        "description": "a sine wave whose third parameter is never read",
        "model": {"simulator": "python", "file": "wave.py"},
        "parameters": TRADEOFF_PARAMETERS if tradeoff else PARAMETERS,
        "protocol": {"tstop_ms": TSTOP_MS, "dt_ms": DT_MS},
        "target": {"file": "recording.txt", "sampling_rate_hz": 1000 / DT_MS},
        "costs": {"functions": [{"name": "MSE", "weight": 1.0}]},
        "algorithm": {"name": "cmaes", "population": population, "generations": generations},
        "evaluation": {"timeout_s": 60},
        "seed": 6,
    }
    path = folder / "problem.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_store(folder: Path, **settings) -> Path:
    """A finished run store of the wave problem in ``folder`` (CMA-ES, real evaluations)."""
    return finished_run(write_problem(folder / "problem", **settings), folder / "wave.zarr")


def finished_run(problem_file: Path, path: Path) -> Path:
    """The problem file run to its end into the store ``path``, evaluated in this process."""
    from neuroptimus.optimization.evaluation.individual import evaluate_batch
    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
    from neuroptimus.optimization.problem.problem_file import load_problem
    from neuroptimus.storage.runs.create import create_run_store

    problem = build_problem(load_problem(problem_file))
    store = create_run_store(problem, path)
    run_to_end(OptimizationRun(problem, store), lambda points, **_: evaluate_batch(problem, points))
    store.close()
    return path


def in_fresh_process(function, *args):
    """``function(*args)`` in a spawned process: a process hosts one model."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def wave_store_in(folder: Path) -> Path:
    """CMA-ES, 20 × 20 on the wave problem (seed 6): a real, finished run store in ``folder``,
    fitted in a process of its own."""
    return in_fresh_process(run_store, folder)
