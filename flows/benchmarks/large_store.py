"""Large stores stay fast: write a synthetic store of a million evaluated individuals, then
time what the explorer does with it: open it (read the committed rows), draw the parameter
space (datashader pair plot, rendered to Bokeh), and re-read it when nothing changed.

The synthetic store is written through the store's own API: a population that converges on
the true parameters of a real problem, with errors that are cheap functions of the distance
to the true values (no simulation), shaped so that the error components trade off against
each other and the Pareto front is not trivial. (The tests build small stores with it.)

Datashader compiles its kernels (numba) once per process; the explorer does that at start-up
in the background (``population.warm_up``), so it is timed on its own line. Wall time depends
on what else the machine runs; CPU time (this process) much less, so both are printed.

    python -m neuroptimus.flows.benchmarks.large_store [--evaluations 1000000] [--population 1000]
    neuroptimus benchmark explore
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import holoviews as hv
import numpy as np

from neuroptimus.analysis import population
from neuroptimus.analysis.snapshot import read_snapshot, stored_space
from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.evaluation.problem import expected_length
from neuroptimus.optimization.loop.runner import Checkpoint
from neuroptimus.optimization.problem.parameters import ParameterSpace
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.usecases import problem_path

LIMIT_S = 5.0  # opening plus drawing must stay below this


def _timed(function, *args) -> tuple[object, tuple[float, float]]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, (time.perf_counter() - wall, time.process_time() - cpu)


def draw_parameter_space(snapshot) -> object:
    """The explorer's pair plot (dynamic rasterization, as served), rendered to Bokeh."""
    frame = population.population_frame([snapshot])
    panels = population.pair_panels(frame, snapshot.parameters, "error", dynamic=True)
    corner = population.colourbar("error", population.colour_limits(frame, "error"))
    return hv.render(population.pair_layout(panels, len(snapshot.parameters), corner))


def write_store(store: Path, evaluations: int, size: int) -> None:
    generations = -(-evaluations // size)
    spec = problem_spec("hh", "cmaes", size, generations, seed=1)
    write_bulk(create_store(store, spec, "CMA-ES (synthetic)"), evaluations, size)


# -- the synthetic store -----------------------------------------------------------------


def problem_spec(
    problem: str = "hh", algorithm: str = "cmaes", population: int = 10, generations: int = 6,
    seed: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """The bundled problem's spec (JSON form) with the run's settings filled in."""

    spec = load_problem(problem_path(problem)).model_dump(mode="json")
    spec["algorithm"].update(name=algorithm, population=population, generations=generations)
    spec["seed"] = seed
    return spec


def create_store(
    path: str | Path, spec: dict[str, Any], label: str, package: str = "synthetic"
) -> RunStore:
    """An empty store for ``spec`` (as ``neuroptimus.storage.runs.create.create_run_store``
    makes), with a synthetic target trace of the protocol's length."""
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


def _true_unit(spec: dict[str, Any], space: ParameterSpace) -> np.ndarray:
    true = [p.get("true_value") for p in spec["parameters"]]
    centre = [0.5 if t is None else t for t in true]
    return space.to_unit(np.array(centre, dtype=float))


def synthetic_population(
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


def write_bulk(store: RunStore, evaluations: int, size: int, seed: int = 0) -> None:
    """Fill a new store with ``evaluations`` rows in large blocks (fast: no Pareto fronts are
    computed), with the per-generation statistics the writer would have stored."""
    spec, rng = store.attrs["spec"], np.random.default_rng(seed)
    generations = -(-evaluations // size)
    columns: dict[str, list[np.ndarray]] = {}
    for g in range(generations):
        n = min(size, evaluations - g * size)
        points, result = synthetic_population(spec, g, n, rng)
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


# -- the benchmark ------------------------------------------------------------------------


def run(evaluations: int = 1_000_000, size: int = 1000, store: str | Path | None = None):
    """Write the store (unless it exists), then time opening and drawing; returns
    {step: (wall seconds, CPU seconds)}."""
    folder = None
    if store is None:
        folder = Path(tempfile.mkdtemp(prefix="neuroptimus-large-"))
        store = folder / "large.zarr"
    store = Path(store)
    times: dict[str, tuple[float, float]] = {}
    try:
        if not store.exists():
            _, times["write the store"] = _timed(write_store, store, evaluations, size)
        _, times["compile datashader (explorer start-up)"] = _timed(population.warm_up)
        snapshot, times["open: read the committed rows"] = _timed(read_snapshot, store)
        _, times["draw the parameter space"] = _timed(draw_parameter_space, snapshot)
        _, times["draw it again"] = _timed(draw_parameter_space, snapshot)
        _, times["re-read, nothing new committed"] = _timed(read_snapshot, store, snapshot)
        n, d = snapshot.committed_evaluations, len(snapshot.parameters)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    key = ("open: read the committed rows", "draw the parameter space")
    times["open + draw"] = tuple(times[key[0]][i] + times[key[1]][i] for i in (0, 1))
    print(f"store of {n:,} evaluated individuals, {d} parameters")
    print(f"  {'':<40} {'wall':>8} {'CPU':>8}")
    for name, (wall, cpu) in times.items():
        print(f"  {name:<40} {wall:7.2f}s {cpu:7.2f}s")
    wall = times["open + draw"][0]
    print(
        f"  open + draw: {wall:.2f} s (limit {LIMIT_S:g} s: {'OK' if wall < LIMIT_S else 'SLOW'})"
    )
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=1_000_000)
    parser.add_argument("--population", type=int, default=1000)
    parser.add_argument("--store", help="keep the synthetic store here (reused if it exists)")
    arguments = parser.parse_args(argv)
    run(arguments.evaluations, arguments.population, arguments.store)


if __name__ == "__main__":
    main()
