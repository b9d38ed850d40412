"""Large stores stay fast: write a synthetic store of a million evaluated individuals, then
time what the explorer does with it: open it (read the committed rows), draw the parameter
space (datashader pair plot, rendered to Bokeh), and re-read it when nothing changed.

Datashader compiles its kernels (numba) once per process; the explorer does that at start-up
in the background (``population.warm_up``), so it is timed on its own line. Wall time depends
on what else the machine runs; CPU time (this process) much less, so both are printed.

    python -m analysis.benchmark_large [--evaluations 1000000] [--population 1000]
    neuroptimus benchmark explore
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import holoviews as hv

from analysis import population, synthetic
from analysis.snapshot import read_snapshot

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
    spec = synthetic.problem_spec("hh", "cmaes", size, generations, seed=1)
    synthetic.write_bulk(
        synthetic.create_store(store, spec, "CMA-ES (synthetic)"), evaluations, size
    )


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
