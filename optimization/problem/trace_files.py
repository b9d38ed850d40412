"""Reading recorded traces and current waveforms from text files, and putting a coarse target
onto the simulation grid the way the original Neuroptimus does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neuroptimus.optimization.errors import UserError

# Volts versus millivolts: a membrane potential in volts stays within ±0.25 and sits below
# -0.02 (rest at -0.04 … -0.09 V); in millivolts no physiological value exceeds ±1000 but a
# trace in volts never exceeds ±1.
_VOLT_LIMIT = 0.25
_VOLT_REST = -0.02
_MILLIVOLT_SIGN = 1.0


class TraceFileError(UserError, ValueError):
    """A trace or waveform file cannot be used as given (one line naming the file)."""


def read_table(path: Path, what: str) -> np.ndarray:
    """The numbers of a whitespace-separated text file as an (n, columns) array."""
    try:
        table = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as error:
        raise TraceFileError(f"{what} {path}: cannot read it as numbers ({error})") from None
    if not np.isfinite(table).all():
        raise TraceFileError(f"{what} {path}: contains NaN or infinite values")
    return table


def voltage_in_mV(columns: np.ndarray, unit: str, path: Path) -> np.ndarray:
    """Membrane-potential columns converted to mV; values in the other unit are refused."""
    largest, median = float(np.max(np.abs(columns))), float(np.median(columns))
    if unit == "mV" and largest < _VOLT_LIMIT and median < _VOLT_REST:
        raise TraceFileError(
            f"target file {path}: values look like volts (median {median:.4g}, largest "
            f"|value| {largest:.4g}) but target.unit is mV: set target.unit: V"
        )
    if unit == "V" and largest > _MILLIVOLT_SIGN:
        raise TraceFileError(
            f"target file {path}: values look like millivolts (largest |value| {largest:.4g}) "
            "but target.unit is V: set target.unit: mV"
        )
    return columns * 1000.0 if unit == "V" else columns


def upsample_to_simulation_grid(
    values: np.ndarray, tstop_ms: float, rate_hz: float, dt_ms: float
) -> np.ndarray:
    """The original's linear interpolation of a coarse target onto the simulation steps.

    Both grids are ``linspace(0, tstop, …)`` with the original's sample counts, so the target
    is stretched by one coarse step over the trace (0.02 % for UC4): kept, because the
    paper's numbers are computed on it. A target with one more sample (one at tstop itself)
    is placed exactly instead.
    """
    coarse = int(tstop_ms * rate_hz / 1000)
    if len(values) not in (coarse, coarse + 1):
        raise TraceFileError(
            f"{len(values)} samples, expected {coarse} (tstop_ms {tstop_ms:g} at {rate_hz:g} Hz)"
        )
    x = np.linspace(0, tstop_ms, len(values))
    return np.interp(np.linspace(0, tstop_ms, int(tstop_ms / dt_ms)), x, values)


def read_waveform(path: Path, tstop_ms: float, dt_ms: float) -> np.ndarray:
    """A current waveform: one value (nA) per simulation step, tstop/dt or tstop/dt + 1 of
    them (the original plays the file as it is; a length that is neither is a mistake)."""
    table = read_table(path, "waveform file")
    if table.shape[1] != 1:
        raise TraceFileError(
            f"waveform file {path}: {table.shape[1]} columns; give one current value (nA) per line"
        )
    steps = int(round(tstop_ms / dt_ms))
    if len(table) not in (steps, steps + 1):
        raise TraceFileError(
            f"waveform file {path}: {len(table)} samples, but tstop_ms {tstop_ms:g} / dt_ms "
            f"{dt_ms:g} needs {steps} (or {steps + 1}): one value per simulation step"
        )
    return table[:, 0].copy()
