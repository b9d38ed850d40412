"""The ten cost functions of the paper's Table 1, plus threshold spike detection.

Under the Table-1 names these reproduce the original Neuroptimus numbers (quirks included, see
``shared/usecases/COST_FUNCTIONS.md``) except for its "deliberate differences":
spike windows are clipped to the trace, and a zero range in *Derivative difference* or
*AHP depth* leaves the error undivided instead of crashing. Everything is numpy over whole
arrays; the only Python loops run over spikes, never over samples.

Every cost function has the signature ``fn(model, target, settings, model_spike_times_ms=None)``
and returns a float. ``model_spike_times_ms`` are spike times reported by the simulator; when
given they replace threshold detection on the model (except for *AP width*). Traces of lengths
differing by more than one sample, empty traces and non-finite targets raise ``ValueError``; a
non-finite model raises ``NonFiniteTraceError`` (a ``ValueError``), the evaluator's penalty case.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.spec import CostName

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


class NonFiniteTraceError(UserError, ValueError):
    """The model trace holds NaN or inf: a failed simulation, scored with the penalty."""


@dataclass(frozen=True)
class CostSettings:
    """Per-problem settings of the cost functions (window in samples, times in ms)."""

    sampling_rate_hz: float
    spike_threshold_mV: float = 0.0
    spike_window_samples: int = 0
    stim_delay_ms: float = 0.0
    stim_duration_ms: float = 0.0
    input_length_ms: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sampling_rate_hz) and self.sampling_rate_hz > 0):
            raise ValueError(f"sampling_rate_hz must be positive, got {self.sampling_rate_hz!r}")
        window = self.spike_window_samples
        if int(window) != window or window < 0:
            raise ValueError(f"spike_window_samples must be an integer >= 0, got {window!r}")
        object.__setattr__(self, "spike_window_samples", int(window))
        if not math.isfinite(self.spike_threshold_mV):
            raise ValueError(f"spike_threshold_mV must be finite, got {self.spike_threshold_mV!r}")
        for name in ("stim_delay_ms", "input_length_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        if not self.stim_duration_ms >= 0:
            raise ValueError(f"stim_duration_ms must be >= 0, got {self.stim_duration_ms!r}")

    @property
    def dt_ms(self) -> float:
        return 1000.0 / self.sampling_rate_hz


@dataclass(frozen=True)
class Spikes:
    """Spikes of one trace: sample indices of start, peak and stop, and the peak values."""

    start: IntArray
    peak: IntArray
    stop: IntArray
    peak_value: FloatArray

    def __len__(self) -> int:
        return int(self.start.size)


_NO_INDICES = np.empty(0, dtype=np.intp)
_NO_SPIKES = Spikes(_NO_INDICES, _NO_INDICES, _NO_INDICES, np.empty(0))

Times = ArrayLike | None
CostFunction = Callable[[ArrayLike, ArrayLike, CostSettings, Times], float]


def _as_trace(x: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} trace must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} trace is empty")
    return array


def _all_finite(x: FloatArray) -> bool:
    return bool(np.isfinite(x.sum()) or np.isfinite(x).all())


def _check_pair(model: ArrayLike, target: ArrayLike) -> tuple[FloatArray, FloatArray]:
    model = _as_trace(model, "model")
    target = _as_trace(target, "target")
    if abs(model.size - target.size) > 1:
        raise ValueError(
            f"model ({model.size} samples) and target ({target.size} samples) differ in length "
            "by more than one sample: check the sampling rate and recording length settings"
        )
    if not _all_finite(model):
        raise NonFiniteTraceError("model trace contains NaN or inf")
    if not _all_finite(target):
        raise ValueError("target trace contains NaN or inf")
    return model, target


def _crossings(x: FloatArray, threshold: float) -> tuple[IntArray, IntArray]:
    above = x > threshold
    decided = above | (x < threshold)
    if decided.all():
        positions, state = None, above
    else:
        positions = np.flatnonzero(decided)
        state = above[positions]
    if state.size == 0:
        return _NO_INDICES, _NO_INDICES
    changes = np.flatnonzero(state[1:] != state[:-1]) + 1
    if state[0]:
        changes = np.concatenate(([0], changes))
    stops = changes[1::2]
    starts = changes[0::2][: stops.size]
    if positions is not None:
        starts, stops = positions[starts], positions[stops]
    return starts.astype(np.intp, copy=False), stops.astype(np.intp, copy=False)


def _detect(x: FloatArray, threshold: float) -> Spikes:
    starts, stops = _crossings(x, threshold)
    if starts.size == 0:
        return _NO_SPIKES
    lengths = stops - starts
    offsets = np.cumsum(lengths) - lengths
    samples = np.arange(int(lengths.sum()), dtype=np.intp) + np.repeat(starts - offsets, lengths)
    values = x[samples]
    maxima = np.maximum.reduceat(values, offsets)
    hits = np.flatnonzero(values == np.repeat(maxima, lengths))
    first = hits[np.searchsorted(hits, offsets)]
    return Spikes(starts, samples[first], stops, values[first])


def detect_spikes(x: ArrayLike, threshold: float) -> Spikes:
    """Threshold-crossing spikes: start at the first sample strictly above ``threshold``, stop
    at the next sample strictly below it, peak at the first maximum in between. A sample equal
    to the threshold changes nothing; a crossing still above threshold at the end is dropped."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"trace must be 1-D, got shape {x.shape}")
    if not _all_finite(x):
        raise ValueError("trace contains NaN or inf")
    return _detect(x, float(threshold))


def spikes_from_times(
    model: ArrayLike, spike_times_ms: ArrayLike, settings: CostSettings
) -> Spikes:
    """Spikes built from simulator spike times: peak ``p = int(t / dt)``, start and stop ``p ∓
    window`` clipped to the trace, peak value ``model[p]``."""
    model = np.asarray(model, dtype=np.float64)
    times = np.asarray(spike_times_ms, dtype=np.float64).reshape(-1)
    if times.size == 0:
        return _NO_SPIKES
    if not np.isfinite(times).all():
        raise ValueError("model spike times contain NaN or inf")
    peaks = (times / settings.dt_ms).astype(np.intp)
    outside = (times < 0) | (peaks >= model.size)
    if outside.any():
        raise ValueError(
            f"model spike time {times[outside][0]!r} ms lies outside the model trace "
            f"(0 to {model.size * settings.dt_ms!r} ms)"
        )
    window = settings.spike_window_samples
    return Spikes(
        np.maximum(peaks - window, 0),
        peaks,
        np.minimum(peaks + window, model.size - 1),
        model[peaks],
    )


def _model_spikes(model: FloatArray, settings: CostSettings, times: ArrayLike | None) -> Spikes:
    if times is None:
        return _detect(model, settings.spike_threshold_mV)
    return spikes_from_times(model, times, settings)


def _mean_square_difference(a: FloatArray, b: FloatArray) -> float:
    n = min(a.size, b.size)
    difference = a[:n] - b[:n]
    return _mean_of_squares(difference)


def _mean_of_squares(scratch: FloatArray) -> float:
    """Mean of squares, squaring in place (no BLAS: its threads cost more than they save)."""
    np.square(scratch, out=scratch)
    return float(scratch.sum()) / scratch.size


def _mean(values: list[float]) -> float:
    """Mean of a short per-spike list, summed exactly like the original (math.fsum)."""
    return math.fsum(values) / len(values)


def _normalised(error: float, value_range: float) -> float:
    return error / value_range**2 if value_range != 0 else error


def _ptp(x: FloatArray) -> float:
    return float(x.max() - x.min())


def _one_sided(n_model: int, n_target: int) -> float | None:
    """0 when neither trace has spikes, 1 when exactly one has, None when both have."""
    if n_model == 0 and n_target == 0:
        return 0.0
    if n_model == 0 or n_target == 0:
        return 1.0
    return None


def mse(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """Mean squared difference over the common length, divided by range(target)² (if nonzero)."""
    model, target = _check_pair(model, target)
    return _normalised(_mean_square_difference(target, model), _ptp(target))


def _zeroed_range(x: FloatArray, lo: IntArray, hi: IntArray) -> float:
    """range(x) after x[lo[i]:hi[i]] = 0 for every i, without copying x: max and min over the
    uncovered gaps (found by merging the sorted windows), plus 0 if anything is covered."""
    order = np.argsort(lo, kind="stable")
    gap_lo = np.concatenate(([0], np.maximum.accumulate(hi[order])))
    gap_hi = np.append(lo[order], x.size)
    kept = gap_hi > gap_lo
    gap_lo, gap_hi = gap_lo[kept], gap_hi[kept]
    if gap_lo.size == 0:
        return 0.0
    bounds = np.column_stack((gap_lo, gap_hi)).ravel()
    if bounds[-1] == x.size:
        bounds = bounds[:-1]
    high = float(np.maximum.reduceat(x, bounds)[0::2].max())
    low = float(np.minimum.reduceat(x, bounds)[0::2].min())
    if int((gap_hi - gap_lo).sum()) < x.size:
        high, low = max(high, 0.0), min(low, 0.0)
    return high - low


def mse_excluding_spikes(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """MSE with every spike (± window) of either trace zeroed in both, divided by the range of
    the masked model, as the original does; plain MSE when neither trace spikes."""
    model, target = _check_pair(model, target)
    threshold, window = settings.spike_threshold_mV, settings.spike_window_samples
    target_spikes = _detect(target, threshold)
    model_spikes = _model_spikes(model, settings, model_spike_times_ms)
    if len(target_spikes) == 0 and len(model_spikes) == 0:
        return _normalised(_mean_square_difference(target, model), _ptp(target))
    n = min(model.size, target.size)
    lo = np.maximum(np.concatenate((target_spikes.start, model_spikes.start)) - window, 0)
    hi = np.concatenate((target_spikes.stop, model_spikes.stop)) + window
    difference = target[:n] - model[:n]
    for a, b in zip(lo.tolist(), hi.tolist(), strict=True):
        difference[a:b] = 0.0
    error = _mean_of_squares(difference)
    return _normalised(error, _zeroed_range(model, lo, np.minimum(hi, model.size)))


def _count_ratio(n_model: int, n_target: int) -> float:
    return abs(n_model - n_target) / (n_model + n_target + 1)


def spike_count(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """|n_model − n_target| / (n_model + n_target + 1) over the whole traces."""
    model, target = _check_pair(model, target)
    n_target = len(_detect(target, settings.spike_threshold_mV))
    if model_spike_times_ms is None:
        n_model = len(_detect(model, settings.spike_threshold_mV))
    else:
        n_model = int(np.size(model_spike_times_ms))
    return _count_ratio(n_model, n_target)


def spike_count_stim(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """Spike count with threshold detection limited to the stimulus samples; the stimulus
    length is ``input_length_ms`` when the duration is 0 or >= 1e9. Simulator spike times are
    all counted."""
    model, target = _check_pair(model, target)
    rate = settings.sampling_rate_hz
    duration = settings.stim_duration_ms
    if duration == 0 or duration >= 1e9:
        duration = settings.input_length_ms
    onset = settings.stim_delay_ms * rate / 1000
    first, last = int(onset), int(onset + duration * rate / 1000)
    threshold = settings.spike_threshold_mV
    n_target = len(_detect(target[first:last], threshold))
    if model_spike_times_ms is None:
        n_model = len(_detect(model[first:last], threshold))
    else:
        n_model = int(np.size(model_spike_times_ms))
    return _count_ratio(n_model, n_target)


def isi_differences(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """Summed |ISI differences| of the paired peaks plus the unpaired span of the longer train,
    divided by len(target); 0 if both have < 2 spikes, 1 if only one has."""
    model, target = _check_pair(model, target)
    p_target = _detect(target, settings.spike_threshold_mV).peak
    p_model = _model_spikes(model, settings, model_spike_times_ms).peak
    if p_model.size < 2 and p_target.size < 2:
        return 0.0
    if p_model.size < 2 or p_target.size < 2:
        return 1.0
    k = min(p_model.size, p_target.size)
    total = int(np.abs(np.diff(p_model[:k]) - np.diff(p_target[:k])).sum())
    longer = p_model if p_model.size > p_target.size else p_target
    total += int(longer[-1] - longer[k - 1])
    return total / target.size


def latency_to_first_spike(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """(start of first model spike − start of first target spike)² / len(target)²."""
    model, target = _check_pair(model, target)
    target_spikes = _detect(target, settings.spike_threshold_mV)
    model_spikes = _model_spikes(model, settings, model_spike_times_ms)
    if (value := _one_sided(len(model_spikes), len(target_spikes))) is not None:
        return value
    delay = int(model_spikes.start[0]) - int(target_spikes.start[0])
    return delay**2 / target.size**2


def ap_amplitude(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """Mean squared difference of paired peak heights above threshold, divided by the square
    of the highest target peak above threshold."""
    model, target = _check_pair(model, target)
    threshold = settings.spike_threshold_mV
    target_spikes = _detect(target, threshold)
    model_spikes = _model_spikes(model, settings, model_spike_times_ms)
    if (value := _one_sided(len(model_spikes), len(target_spikes))) is not None:
        return value
    k = min(len(model_spikes), len(target_spikes))
    height_target = target_spikes.peak_value - threshold
    height_model = model_spikes.peak_value[:k] - threshold
    error = _mean(((height_model - height_target[:k]) ** 2).tolist())
    largest = float(height_target.max()) or 1e-12
    return error / largest**2


def _gap_minima(x: FloatArray, spikes: Spikes, count: int) -> FloatArray:
    """Minimum of ``x`` between spike i's stop and spike i+1's start, for i < count. Where
    simulator spike windows overlap, the minimum between the two peaks is used instead."""
    if count == 0:
        return np.empty(0)
    lo = spikes.stop[:count].copy()
    hi = spikes.start[1 : count + 1].copy()
    overlap = hi <= lo
    if overlap.any():
        first, second = spikes.peak[:count][overlap], spikes.peak[1 : count + 1][overlap]
        lo[overlap] = np.minimum(first, second)
        hi[overlap] = np.maximum(first, second) + 1
        return np.array([x[a:b].min() for a, b in zip(lo.tolist(), hi.tolist(), strict=True)])
    bounds = np.empty(2 * count, dtype=np.intp)
    bounds[0::2], bounds[1::2] = lo, hi
    return np.minimum.reduceat(x, bounds)[0::2]


def ahp_depth(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """(mean of target AHP minima − mean of model AHP minima)² / range(target samples below
    threshold)², pairing spikes as the original does (see COST_FUNCTIONS.md, quirk kept)."""
    model, target = _check_pair(model, target)
    threshold = settings.spike_threshold_mV
    target_spikes = _detect(target, threshold)
    model_spikes = _model_spikes(model, settings, model_spike_times_ms)
    n_model, n_target = len(model_spikes), len(target_spikes)
    if (value := _one_sided(n_model, n_target)) is not None:
        return value
    k = min(n_model, n_target)
    model_gaps = _gap_minima(model, model_spikes, k if n_model > n_target else k - 1)
    target_gaps = _gap_minima(target, target_spikes, k - 1)
    model_tail = float(model[model_spikes.stop[k - 1] :].min())
    target_tail = float(target[target_spikes.stop[k - 1] :].min())
    model_mean = _mean([*model_gaps.tolist(), model_tail])
    target_mean = _mean([*target_gaps.tolist(), target_tail])
    highest_below = float(np.max(target, where=target < threshold, initial=-np.inf))
    return _normalised((target_mean - model_mean) ** 2, highest_below - float(target.min()))


def ap_width(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """((mean target width − mean model width) / mean target width)² over paired spikes, width
    being (stop − start) / 2 samples; always threshold detection, even with simulator spikes."""
    model, target = _check_pair(model, target)
    threshold = settings.spike_threshold_mV
    target_spikes = _detect(target, threshold)
    model_spikes = _detect(model, threshold)
    if (value := _one_sided(len(model_spikes), len(target_spikes))) is not None:
        return value
    k = min(len(model_spikes), len(target_spikes))
    width_target = _mean(((target_spikes.stop[:k] - target_spikes.start[:k]) / 2).tolist())
    width_model = _mean(((model_spikes.stop[:k] - model_spikes.start[:k]) / 2).tolist())
    return ((width_target - width_model) / width_target) ** 2


def derivative_difference(
    model: ArrayLike, target: ArrayLike, settings: CostSettings, model_spike_times_ms: Times = None
) -> float:
    """Mean squared difference of the central-difference derivatives (mV/ms) divided by the
    squared range of the target's derivative (undivided when that range is 0)."""
    model, target = _check_pair(model, target)
    n = min(model.size, target.size)
    if n < 3:
        raise ValueError(f"Derivative difference needs at least 3 samples, got {n}")
    step = 2 * settings.dt_ms
    scratch = np.empty(2 * (n - 2))
    rise_model = np.subtract(model[2:n], model[: n - 2], out=scratch[: n - 2])
    rise_target = np.subtract(target[2:n], target[: n - 2], out=scratch[n - 2 :])
    slope_range = float(rise_target.max()) / step - float(rise_target.min()) / step
    rise_model -= rise_target
    error = _mean_of_squares(rise_model) / step**2
    return _normalised(error, slope_range)


COST_FUNCTIONS: dict[str, CostFunction] = {
    "MSE": mse,
    "MSE (excl. spikes)": mse_excluding_spikes,
    "Spike count": spike_count,
    "Spike count (stim.)": spike_count_stim,
    "ISI differences": isi_differences,
    "Latency to 1st spike": latency_to_first_spike,
    "AP amplitude": ap_amplitude,
    "AHP depth": ahp_depth,
    "AP width": ap_width,
    "Derivative difference": derivative_difference,
}
assert set(CostName.__args__) == set(COST_FUNCTIONS), "CostName must list the Table-1 names"
