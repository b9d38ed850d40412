"""Traces of one evaluation as one table (time, one column per sweep), as run stores keep and
plots draw them."""

from __future__ import annotations

import numpy as np

from neuroptimus.optimization.simulators.base import Trace

# eFEL's own interpolation step: what the features of variable-step traces are measured on
GRID_MS = 0.1


def on_one_grid(traces: list[Trace]) -> tuple[np.ndarray, np.ndarray]:
    """(time, values with one column per trace): the traces' own samples when they share one
    time axis; otherwise (a variable time step, sweeps of different durations) each trace
    interpolated onto one GRID_MS grid up to the longest, NaN past its own end."""
    times = [np.asarray(t.time_ms, float) for t in traces]
    if all(len(t) == len(times[0]) and np.array_equal(t, times[0]) for t in times):
        return times[0], np.column_stack([t.values for t in traces])
    end = max(t[-1] for t in times)
    grid = np.arange(round(end / GRID_MS) + 1) * GRID_MS
    columns = [
        np.interp(grid, t, trace.values, right=np.nan)
        for t, trace in zip(times, traces, strict=True)
    ]
    return grid, np.column_stack(columns)
