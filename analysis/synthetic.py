"""Synthetic run stores: a population that converges on the true parameters of a real problem,
written through the store's own API, for tests, screenshots and the large-store benchmark.

The errors are cheap functions of the distance to the true values (no simulation), shaped so
that the error components trade off against each other and the Pareto front is not trivial.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from analysis.snapshot import stored_space
from optimization.evaluation import BatchResult
from optimization.parameters import ParameterSpace
from optimization.problem import expected_length
from optimization.runner import Checkpoint
from optimization.simulators import Trace
from optimization.spec import ProblemSpec, load_problem
from storage.run_store import RunStore


def problem_spec(
    problem: str = "hh", algorithm: str = "cmaes", population: int = 10, generations: int = 6,
    seed: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """The bundled problem's spec (JSON form) with the run's settings filled in."""
    from usecases import problem_path

    spec = load_problem(problem_path(problem)).model_dump(mode="json")
    spec["algorithm"].update(name=algorithm, population=population, generations=generations)
    spec["seed"] = seed
    return spec


def create_store(
    path: str | Path, spec: dict[str, Any], label: str, package: str = "synthetic"
) -> RunStore:
    """An empty store for ``spec`` (as ``storage.runs.create_run_store`` makes), with a
    synthetic target trace of the protocol's length."""
    names = [p["name"] for p in spec["parameters"]]
    components = [f["name"] for f in spec["costs"]["functions"]]
    budget = spec["algorithm"]["population"] * spec["algorithm"]["generations"]
    store = RunStore.create(
        path,
        names,
        components,
        {
            "spec": spec,
            "versions": {},
            "seed": spec["seed"],
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "algorithm": {"name": spec["algorithm"]["name"], "label": label, "package": package},
            "weights": [float(f.get("weight", 1.0)) for f in spec["costs"]["functions"]],
            "penalty": float(spec["evaluation"]["penalty"]),
            "budget": budget,
        },
    )
    time_ms, trace = synthetic_trace(spec)
    store.write_arrays("target", {"trace": trace[:, None], "time": time_ms})
    return store


def synthetic_trace(spec: dict[str, Any], jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A regular spike train during the stimulus, sampled like the target."""
    samples = expected_length(ProblemSpec.model_validate(spec))
    time_ms = np.arange(samples) * 1000 / spec["target"]["sampling_rate_hz"]
    stimulus = spec["protocol"]["stimulus"]
    start, stop = stimulus["delay_ms"], stimulus["delay_ms"] + stimulus["duration_ms"]
    phase = np.mod(time_ms - start, 14.6 + jitter)
    spikes = 105 * np.exp(-((phase - 3) ** 2) / 0.4) * ((time_ms > start) & (time_ms < stop))
    return time_ms, -65 + spikes + 3 * ((time_ms > start) & (time_ms < stop))


def simulate_synthetic(snapshot, row: int) -> list[Trace]:
    """Stands in for the simulator (tests, demos): a spike train whose rate depends on the
    row, sampled like the target."""
    time_ms, trace = synthetic_trace(snapshot.spec, jitter=0.1 * (row % 7))
    return [Trace(values=trace, dt_ms=float(time_ms[1] - time_ms[0]))]


def _true_unit(spec: dict[str, Any], space: ParameterSpace) -> np.ndarray:
    true = [p.get("true_value") for p in spec["parameters"]]
    centre = [0.5 if t is None else t for t in true]
    return space.to_unit(np.array(centre, dtype=float))


def population(
    spec: dict[str, Any], generation: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, BatchResult]:
    """One generation: a cloud that shrinks onto the true values, and its errors."""
    space = stored_space(spec["parameters"])
    true = _true_unit(spec, space)
    d = len(true)
    if generation == 0:
        unit = rng.random((size, d))
    else:
        start = np.linspace(0.15, 0.85, d)
        centre = true + (start - true) * 0.7**generation
        unit = np.clip(
            centre + (0.25 * 0.75**generation + 0.01) * rng.standard_normal((size, d)), 0, 1
        )
    return space.to_real(unit), _errors(spec, unit - true, rng)


def _errors(spec: dict[str, Any], delta: np.ndarray, rng: np.random.Generator) -> BatchResult:
    n, d = delta.shape
    k = len(spec["costs"]["functions"])
    penalty = float(spec["evaluation"]["penalty"])
    a, b, c = (np.abs(delta[:, j % d]) for j in range(3))
    components = [1e3 * (a**2 + b**2), np.round(20 * c), 30 * np.abs(a - c), 5 * b]
    errors = np.column_stack([components[j % 4] * (1 + j // 4) for j in range(k)])
    errors *= 1 + 0.05 * rng.random((n, k))
    status = (rng.random(n) < 0.02).astype(np.int8)  # a few simulations "fail"
    errors[status == 1] = penalty
    weights = np.array([f.get("weight", 1.0) for f in spec["costs"]["functions"]])
    return BatchResult(
        errors=errors,
        total=np.where(status == 0, errors @ weights, penalty),
        status=status,
        message=["synthetic failure" if s else "" for s in status],
        seconds=np.full(n, 0.01),
        worker=["synthetic:0"] * n,
    )


def append_generation(store: RunStore, rng: np.random.Generator, size: int | None = None) -> None:
    """Write and commit the next generation exactly as the optimize loop does."""
    spec = store.attrs["spec"]
    size = size or spec["algorithm"]["population"]
    generation, offset = store.committed_generations, store.committed_evaluations
    points, result = population(spec, generation, size, rng)
    store.write_generation(generation, offset, points, result, seconds=0.01)
    store.commit(Checkpoint(generation + 1, offset + size, b"", {}))


def finish(store: RunStore, reason: str = "budget reached") -> None:
    """Mark the run finished and store its best individual's (synthetic) trace."""
    best = store.best()
    time_ms, trace = synthetic_trace(store.attrs["spec"], jitter=0.2)
    store.write_arrays(
        "best",
        {
            "parameters": np.array(list(best["parameters"].values())),
            "errors": np.array(list(best["errors"].values())),
            "total": np.array(best["total"]),
            "trace": trace[:, None],
            "time": time_ms,
        },
    )
    store.set_attributes(finished=reason)


def write_bulk(store: RunStore, evaluations: int, size: int, seed: int = 0) -> None:
    """Fill a new store with ``evaluations`` rows in large blocks (fast: no Pareto fronts are
    computed), with the per-generation statistics the writer would have stored."""
    spec, rng = store.attrs["spec"], np.random.default_rng(seed)
    generations = -(-evaluations // size)
    columns: dict[str, list[np.ndarray]] = {}
    for g in range(generations):
        n = min(size, evaluations - g * size)
        points, result = population(spec, g, n, rng)
        for name, values in (
            ("parameters", points), ("errors", result.errors), ("total", result.total),
            ("generation", np.full(n, g, dtype=np.int32)), ("status", result.status),
            ("seconds", result.seconds),
        ):  # fmt: skip
            columns.setdefault(name, []).append(values)
    rows = {name: np.concatenate(parts) for name, parts in columns.items()}
    rows["worker"] = np.full(evaluations, "synthetic:0")
    rows["message"] = np.full(evaluations, "")
    for name, values in rows.items():
        array = store.group["evaluations"][name]
        array.resize(values.shape)
        array[...] = values
    generation, total = rows["generation"], rows["total"]
    edges = np.r_[0, np.cumsum(np.bincount(generation))]
    best = np.minimum.reduceat(total, edges[:-1])
    stats = {
        "evaluations": edges[1:],
        "failed": np.bincount(generation, weights=rows["status"]).astype(np.int64),
        "best": best,
        "cumulative_best": np.minimum.accumulate(best),
        "median": np.array(
            [np.median(total[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        ),
        "mean": np.bincount(generation, weights=total) / np.diff(edges),
        "worst": np.maximum.reduceat(total, edges[:-1]),
        "seconds": np.full(generations, 0.01),
        "front_size": np.zeros(generations, dtype=np.int64),
        "hypervolume": np.full(generations, np.nan),
    }
    for name, values in stats.items():
        array = store.group["generations"][name]
        array.resize((generations,))
        array[...] = values
    store.commit(Checkpoint(generations, evaluations, b"", {}))


__all__ = [
    "append_generation",
    "create_store",
    "finish",
    "population",
    "problem_spec",
    "simulate_synthetic",
    "synthetic_trace",
    "write_bulk",
]
