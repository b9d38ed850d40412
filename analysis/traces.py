"""Traces of chosen individuals: the stored target and best traces, and any other individual
simulated on demand with the problem's own simulator.

NEURON holds one model per process, so simulations run in a long-lived worker process per
problem (started on first use, reused for every later pick); the explorer's process never
loads a model. Results are cached by (store, row): committed rows never change.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import holoviews as hv
import numpy as np
from holoviews.operation.downsample import downsample1d

from neuroptimus.analysis.snapshot import RunSnapshot
from neuroptimus.optimization.evaluation.individual import simulate_traces
from neuroptimus.optimization.evaluation.problem import model_key
from neuroptimus.optimization.simulators import Trace
from neuroptimus.optimization.simulators.trace_grid import on_one_grid
from neuroptimus.storage.runs.create import problem_from_store
from neuroptimus.storage.runs.run_store import RunStore

hv.extension("bokeh", logo=False)

TARGET_COLOUR, BEST_COLOUR = "black", "#d62728"
PICK_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


_problems: dict = {}  # in the worker process: store path -> Problem


def _simulate_row(path: str, values: np.ndarray) -> list[Trace]:
    """Runs in the worker process: rebuild the problem from its store once, then simulate."""

    if path not in _problems:
        _problems[path] = problem_from_store(RunStore.open(path))
    return simulate_traces(_problems[path], np.asarray(values, dtype=float))


class TraceSimulator:
    """Simulates individuals of stored runs, one worker process per problem, with a cache."""

    def __init__(self) -> None:
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._cache: dict[tuple[str, int], list[Trace]] = {}
        self._lock = threading.Lock()

    def _pool(self, key: str) -> ProcessPoolExecutor:
        with self._lock:
            if key not in self._pools:
                context = multiprocessing.get_context("spawn")
                self._pools[key] = ProcessPoolExecutor(max_workers=1, mp_context=context)
            return self._pools[key]

    def __call__(self, snapshot: RunSnapshot, row: int) -> list[Trace]:
        """The traces of evaluation ``row`` of ``snapshot`` (blocks while it simulates)."""
        cached = self._cache.get((snapshot.path, row))
        if cached is not None:
            return cached
        key = model_key(snapshot.spec)
        values = snapshot.rows["parameters"][row]
        timeout = float(snapshot.spec["evaluation"]["timeout_s"]) + 120  # + worker start-up
        try:
            traces = self._pool(key).submit(_simulate_row, snapshot.path, values).result(timeout)
        except BrokenProcessPool:  # the model crashed its process: start afresh next time
            with self._lock:
                self._pools.pop(key, None)
            raise
        self._cache[(snapshot.path, row)] = traces
        return traces

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.shutdown(wait=False, cancel_futures=True)
            self._pools.clear()


def _curves(time_ms, traces: np.ndarray, label: str, unit: str, **style) -> list[hv.Curve]:
    """One curve per sweep (columns of ``traces``); only the first carries the legend label."""
    traces = np.asarray(traces).reshape(len(time_ms), -1)
    return [
        hv.Curve(
            (time_ms, traces[:, k]),
            "time (ms)",
            f"recorded ({unit})",
            label=label if k == 0 else "",
        ).opts(**style)  # fmt: skip
        for k in range(traces.shape[1])
    ]


def _thin(curve: hv.Curve, points: int) -> hv.Curve:
    if len(curve) <= points:
        return curve
    thinned = downsample1d(curve, algorithm="lttb", width=points, dynamic=False)
    return thinned.opts(**curve.opts.get().kwargs)


def traces_figure(
    snapshot: RunSnapshot,
    picks: Sequence[tuple[str, list[Trace]]] = (),
    title: str | None = None,
    width: int = 900,
    height: int = 320,
    downsample: int | None = None,
) -> hv.Overlay:
    """The target (black), the stored best trace (red, once the run has finished) and the
    simulated traces of picked individuals, labelled as given; ``downsample`` thins each
    curve to that many points (the explorer sends less to the browser that way)."""
    unit = snapshot.trace_unit
    target, best = snapshot.target, snapshot.best_trace
    curves = []
    if "trace" in target:
        curves += _curves(target["time"], target["trace"], "target", unit,
                          color=TARGET_COLOUR, line_width=2.5, alpha=0.45)  # fmt: skip
    if "trace" in best:
        curves += _curves(best["time"], best["trace"], "best individual", unit,
                          color=BEST_COLOUR, line_width=1.2)  # fmt: skip
    for index, (label, traces) in enumerate(picks):
        colour = PICK_COLOURS[index % len(PICK_COLOURS)]
        time, values = on_one_grid(traces)
        curves += _curves(time, values, label, unit, color=colour, line_width=1)
    if not curves:
        curves = [hv.Curve([], "time (ms)", f"recorded ({unit})")]
    look = dict(
        title=title or f"Target and best individual: {snapshot.label}",
        width=width, height=height, fontsize={"title": 11},
    )  # fmt: skip
    if downsample:  # LTTB keeps the shape (spikes included) with a fraction of the samples
        curves = [_thin(c, downsample) for c in curves]
    return hv.Overlay(curves).opts(**look, legend_position="right")


__all__ = ["TraceSimulator", "traces_figure"]
