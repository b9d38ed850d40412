"""The Table-1 cost functions against the original Neuroptimus numbers, a literal pure-Python
reading of COST_FUNCTIONS.md on random traces, and hand-built edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neuroptimus.optimization.scoring.costs import (
    COST_FUNCTIONS,
    CostSettings,
    NonFiniteTraceError,
    Spikes,
    ahp_depth,
    ap_amplitude,
    ap_width,
    derivative_difference,
    detect_spikes,
    isi_differences,
    latency_to_first_spike,
    mse,
    mse_excluding_spikes,
    spike_count,
    spike_count_stim,
    spikes_from_times,
)
from tests.reference_numbers import cost_case_arrays, cost_cases

NAMES = list(COST_FUNCTIONS)
SETTINGS = CostSettings(
    sampling_rate_hz=20000.0,
    spike_threshold_mV=0.0,
    spike_window_samples=3,
    stim_delay_ms=0.5,
    stim_duration_ms=1.0,
    input_length_ms=2.0,
)


def close(expected: float):
    return pytest.approx(expected, rel=1e-9, abs=1e-15)


# --- pure-Python reading of the spec, sample by sample -------------------------------------


def ref_detect(x, thres):
    spikes, inside, start = [], False, 0
    for n, value in enumerate(x):
        if not inside and value > thres:
            start, inside = n, True
        elif inside and value < thres:
            segment = list(x[start:n])
            peak = start + segment.index(max(segment))
            spikes.append((start, peak, float(x[peak]), n))
            inside = False
    return spikes


def ref_from_times(model, times, s):
    spikes = []
    for t in times:
        p = int(t / (1000 / s.sampling_rate_hz))
        w = s.spike_window_samples
        spikes.append((max(p - w, 0), p, float(model[p]), min(p + w, len(model) - 1)))
    return spikes


def ref_model_spikes(model, s, times):
    if times is None:
        return ref_detect(model, s.spike_threshold_mV)
    return ref_from_times(model, times, s)


def ref_mean(values):
    return math.fsum(values) / len(values)


def ref_divided(error, value_range):
    return error / value_range**2 if value_range != 0 else error


def ref_mse(model, target, s, times=None):
    n = min(len(model), len(target))
    error = ref_mean([(target[i] - model[i]) ** 2 for i in range(n)])
    return ref_divided(error, max(target) - min(target))


def ref_mse_excl(model, target, s, times=None):
    ts = ref_detect(target, s.spike_threshold_mV)
    ms = ref_model_spikes(model, s, times)
    if not ts and not ms:
        return ref_mse(model, target, s)
    m, e, w = list(target), list(model), s.spike_window_samples
    for start, _, _, stop in ts + ms:
        for i in range(max(start - w, 0), stop + w):
            if i < len(m):
                m[i] = 0.0
            if i < len(e):
                e[i] = 0.0
    n = min(len(m), len(e))
    return ref_divided(ref_mean([(m[i] - e[i]) ** 2 for i in range(n)]), max(e) - min(e))


def ref_count_ratio(nm, nt):
    return abs(nm - nt) / (nm + nt + 1)


def ref_spike_count(model, target, s, times=None):
    nt = len(ref_detect(target, s.spike_threshold_mV))
    nm = len(times) if times is not None else len(ref_detect(model, s.spike_threshold_mV))
    return ref_count_ratio(nm, nt)


def ref_spike_count_stim(model, target, s, times=None):
    f = s.sampling_rate_hz
    d = s.stim_duration_ms
    if d == 0 or d >= 1e9:
        d = s.input_length_ms
    a, b = int(s.stim_delay_ms * f / 1000), int(s.stim_delay_ms * f / 1000 + d * f / 1000)
    nt = len(ref_detect(target[a:b], s.spike_threshold_mV))
    nm = len(times) if times is not None else len(ref_detect(model[a:b], s.spike_threshold_mV))
    return ref_count_ratio(nm, nt)


def ref_one_sided(nm, nt):
    if nm == 0 and nt == 0:
        return 0.0
    if nm == 0 or nt == 0:
        return 1.0
    return None


def ref_isi(model, target, s, times=None):
    pt = [sp[1] for sp in ref_detect(target, s.spike_threshold_mV)]
    pm = [sp[1] for sp in ref_model_spikes(model, s, times)]
    if len(pm) < 2 and len(pt) < 2:
        return 0.0
    if len(pm) < 2 or len(pt) < 2:
        return 1.0
    k = min(len(pm), len(pt))
    total = sum(abs((pm[i + 1] - pm[i]) - (pt[i + 1] - pt[i])) for i in range(k - 1))
    longer = pm if len(pm) > len(pt) else pt
    return (total + longer[-1] - longer[k - 1]) / len(target)


def ref_latency(model, target, s, times=None):
    ts = ref_detect(target, s.spike_threshold_mV)
    ms = ref_model_spikes(model, s, times)
    if (value := ref_one_sided(len(ms), len(ts))) is not None:
        return value
    return (ms[0][0] - ts[0][0]) ** 2 / len(target) ** 2


def ref_amplitude(model, target, s, times=None):
    thres = s.spike_threshold_mV
    ts = ref_detect(target, thres)
    ms = ref_model_spikes(model, s, times)
    if (value := ref_one_sided(len(ms), len(ts))) is not None:
        return value
    k = min(len(ms), len(ts))
    error = ref_mean([((ms[i][2] - thres) - (ts[i][2] - thres)) ** 2 for i in range(k)])
    largest = max(sp[2] - thres for sp in ts) or 1e-12
    return error / largest**2


def ref_gap_min(x, spikes, i):
    lo, hi = spikes[i][3], spikes[i + 1][0]
    if hi <= lo:
        a, b = sorted((spikes[i][1], spikes[i + 1][1]))
        lo, hi = a, b + 1
    return min(x[lo:hi])


def ref_ahp(model, target, s, times=None):
    thres = s.spike_threshold_mV
    ts = ref_detect(target, thres)
    ms = ref_model_spikes(model, s, times)
    if (value := ref_one_sided(len(ms), len(ts))) is not None:
        return value
    big_m, big_t = [], []
    for i in range(min(len(ms), len(ts))):
        try:
            if i + 1 >= len(ms):
                raise IndexError
            big_m.append(ref_gap_min(model, ms, i))
            if i + 1 >= len(ts):
                raise IndexError
            big_t.append(ref_gap_min(target, ts, i))
        except IndexError:
            big_m.append(min(model[ms[i][3] :]))
            big_t.append(min(target[ts[i][3] :]))
    below = [v for v in target if v < thres]
    return ref_divided((ref_mean(big_t) - ref_mean(big_m)) ** 2, max(below) - min(below))


def ref_width(model, target, s, times=None):
    ts = ref_detect(target, s.spike_threshold_mV)
    ms = ref_detect(model, s.spike_threshold_mV)
    if (value := ref_one_sided(len(ms), len(ts))) is not None:
        return value
    k = min(len(ms), len(ts))
    wt = ref_mean([(ts[i][3] - ts[i][0]) / 2 for i in range(k)])
    wm = ref_mean([(ms[i][3] - ms[i][0]) / 2 for i in range(k)])
    return ((wt - wm) / wt) ** 2


def ref_slopes(x, n, dt):
    return [(x[i + 1] - x[i - 1]) / (2 * dt) for i in range(1, n - 1)]


def ref_derivative(model, target, s, times=None):
    n, dt = min(len(model), len(target)), 1000 / s.sampling_rate_hz
    gm, gt = ref_slopes(model, n, dt), ref_slopes(target, n, dt)
    error = ref_mean([(a - b) ** 2 for a, b in zip(gm, gt, strict=True)])
    return ref_divided(error, max(gt) - min(gt))


REFERENCE = {
    "MSE": ref_mse,
    "MSE (excl. spikes)": ref_mse_excl,
    "Spike count": ref_spike_count,
    "Spike count (stim.)": ref_spike_count_stim,
    "ISI differences": ref_isi,
    "Latency to 1st spike": ref_latency,
    "AP amplitude": ref_amplitude,
    "AHP depth": ref_ahp,
    "AP width": ref_width,
    "Derivative difference": ref_derivative,
}


def as_tuples(spikes: Spikes):
    return list(
        zip(
            spikes.start.tolist(),
            spikes.peak.tolist(),
            spikes.peak_value.tolist(),
            spikes.stop.tolist(),
            strict=True,
        )
    )


# --- the original's numbers ------------------------------------------------------------------


CASES = cost_cases()


def _case_params():
    return [
        pytest.param(case, name, id=f"{case}-{name}") for case in CASES["cases"] for name in NAMES
    ]


@pytest.fixture(scope="module")
def arrays():
    return cost_case_arrays()


def case_inputs(arrays, case):
    spec = CASES["cases"][case]
    settings = CostSettings(**spec["settings"])
    times = None
    if spec["model_spike_samples_given"]:
        times = arrays[f"{case}__model_spike_samples"] * (1000 / settings.sampling_rate_hz)
    return arrays[f"{case}__model"], arrays[f"{case}__target"], settings, times


def test_names_are_table_1():
    assert NAMES == list(REFERENCE)
    assert NAMES == CASES["cost_function_names"]


@pytest.mark.parametrize(("case", "name"), _case_params())
def test_original_numbers(arrays, case, name):
    model, target, settings, times = case_inputs(arrays, case)
    spec = CASES["cases"][case]
    got = COST_FUNCTIONS[name](model, target, settings, times)
    assert isinstance(got, float) and math.isfinite(got)
    if name in spec["original_raises"]:
        # Deliberate difference: the original divides by a zero range and raises
        # ZeroDivisionError; we return the undivided error, as MSE does for a flat target.
        assert name in ("Derivative difference", "AHP depth")
        assert "ZeroDivisionError" in spec["original_raises"][name]
        if case == "flat_target":
            assert got == 0.0  # both traces flat: both derivatives are 0
    else:
        assert got == close(spec["costs"][name])
    assert got == close(REFERENCE[name](model, target, settings, times))


def test_simulator_spike_samples_round_trip(arrays):
    for case, spec in CASES["cases"].items():
        if spec["model_spike_samples_given"]:
            model, _, settings, times = case_inputs(arrays, case)
            samples = arrays[f"{case}__model_spike_samples"]
            assert spikes_from_times(model, times, settings).peak.tolist() == samples.tolist()


# --- random traces against the literal reading ------------------------------------------------


def random_trace(rng, n, threshold, spikes):
    x = -65.0 + rng.normal(0, 2, n).cumsum() * 0.05 + rng.normal(0, 0.3, n)
    for _ in range(spikes):
        centre = int(rng.integers(-3, n + 3))
        half = int(rng.integers(1, 12))
        height = rng.uniform(threshold + 66, threshold + 120)
        lo, hi = max(centre - half, 0), min(centre + half + 1, n)
        shape = height * (1 - np.abs(np.arange(lo, hi) - centre) / (half + 1))
        x[lo:hi] += shape
    if rng.random() < 0.4:
        x = np.round(x * 2) / 2
    if rng.random() < 0.2:
        x[-int(rng.integers(1, 6)) :] = threshold + 10
    return x


@pytest.mark.parametrize("seed", range(60))
def test_random_traces_match_literal_reading(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 600))
    threshold = float(rng.choice([0.0, -20.0, 0.5]))
    settings = CostSettings(
        sampling_rate_hz=float(rng.choice([10000.0, 20000.0, 40000.0])),
        spike_threshold_mV=threshold,
        spike_window_samples=int(rng.integers(0, 25)),
        stim_delay_ms=float(rng.uniform(0, 5)),
        stim_duration_ms=float(rng.choice([0.0, 1e9, rng.uniform(0, 10)])),
        input_length_ms=float(rng.uniform(0, 20)),
    )
    target = random_trace(rng, n, threshold, int(rng.integers(0, 8)))
    model = random_trace(rng, n + int(rng.integers(-1, 2)), threshold, int(rng.integers(0, 8)))
    times = None
    if seed % 3 == 0:
        samples = np.sort(rng.choice(model.size, size=int(rng.integers(0, 8)), replace=False))
        times = samples * (1000 / settings.sampling_rate_hz)
    for name, fn in COST_FUNCTIONS.items():
        expected = REFERENCE[name](model, target, settings, times)
        assert fn(model, target, settings, times) == close(expected), name


@pytest.mark.parametrize("seed", range(20))
def test_detect_spikes_matches_loop(seed):
    rng = np.random.default_rng(1000 + seed)
    for _ in range(100):
        n = int(rng.integers(0, 60))
        threshold = float(rng.choice([0.0, 0.5, -1.0]))
        x = rng.integers(-3, 4, n).astype(float)
        if rng.random() < 0.5:
            x = x + rng.choice([0.0, 0.5], n)
        got = detect_spikes(x, threshold)
        assert as_tuples(got) == ref_detect(x, threshold), (x.tolist(), threshold)
        assert len(got) == got.start.size == got.stop.size
        assert got.start.dtype.kind == got.peak.dtype.kind == got.stop.dtype.kind == "i"


# --- hand-built edge cases ------------------------------------------------------------------


def trace(*values):
    return np.array(values, dtype=float)


SPIKY = trace(-60, -60, -50, 10, 30, 10, -70, -66, -62, 5, 25, 25, -2, -68, -64, -61, -60, -60)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        pytest.param([-1, 0, 1, 0, -1], [(2, 2, 1.0, 4)], id="equal-neither-starts-nor-ends"),
        pytest.param([1, 0, 1, -1], [(0, 0, 1.0, 3)], id="starts-at-sample-0-first-max"),
        pytest.param([-1, 1, 2, 3], [], id="ends-above-threshold"),
        pytest.param([-1, 1, -1, 1, 2], [(1, 1, 1.0, 2)], id="second-crossing-unfinished"),
        pytest.param([0, 0, 0], [], id="all-equal"),
        pytest.param([], [], id="empty"),
        pytest.param([-1, 2, 0, 2, 0, -1, 0, 3, -2], [(1, 1, 2.0, 5), (7, 7, 3.0, 8)], id="two"),
    ],
)
def test_detect_spikes_hand_built(x, expected):
    assert as_tuples(detect_spikes(np.array(x, dtype=float), 0.0)) == expected


@pytest.mark.parametrize("fn", COST_FUNCTIONS.values(), ids=NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_model_is_a_failed_simulation(fn, bad):
    model = SPIKY.copy()
    model[4] = bad
    with pytest.raises(NonFiniteTraceError, match="^model trace contains NaN or inf$"):
        fn(model, SPIKY, SETTINGS)
    with pytest.raises(ValueError, match="target trace contains NaN or inf"):
        fn(SPIKY, model, SETTINGS)


@pytest.mark.parametrize("fn", COST_FUNCTIONS.values(), ids=NAMES)
def test_empty_traces_are_rejected(fn):
    for model, target in [(trace(), trace()), (trace(), trace(1.0)), (trace(1.0), trace())]:
        with pytest.raises(ValueError, match="empty"):
            fn(model, target, SETTINGS)


@pytest.mark.parametrize("fn", COST_FUNCTIONS.values(), ids=NAMES)
def test_length_mismatch(fn):
    for model in (SPIKY[:-1], np.append(SPIKY, -60.0)):
        assert fn(model, SPIKY, SETTINGS) == close(REFERENCE[fn_name(fn)](model, SPIKY, SETTINGS))
    for model in (SPIKY[:-2], np.append(SPIKY, [-60.0, -60.0])):
        with pytest.raises(ValueError, match="differ in length by more than one sample"):
            fn(model, SPIKY, SETTINGS)


def fn_name(fn):
    return next(name for name, f in COST_FUNCTIONS.items() if f is fn)


def test_length_mismatch_uses_common_samples_and_whole_target_range():
    target = trace(0, 1, 2, 3, 10)
    model = trace(1, 1, 2, 3)
    assert mse(model, target, SETTINGS) == close(1 / 4 / 100)


def test_flat_target_is_not_divided():
    model, target = np.full(50, -60.0), np.full(50, -65.0)
    assert mse(model, target, SETTINGS) == 25.0
    assert mse_excluding_spikes(model, target, SETTINGS) == 25.0
    ramp = np.arange(50, dtype=float)
    slope = 1 / (1000 / SETTINGS.sampling_rate_hz)
    assert derivative_difference(ramp, target, SETTINGS) == close(slope**2)


def test_ahp_depth_with_flat_subthreshold_target_is_not_divided():
    target = trace(-65, -65, 10, 20, -65, -65, 10, -65, -65)
    model = trace(-65, -65, 10, 20, -70, -70, 10, -61, -61)
    # M = [-70, -61], T = [-65, -65]: (mean T - mean M)^2 = (-65 + 65.5)^2
    assert ahp_depth(model, target, SETTINGS) == close(0.25)


def test_ahp_depth_keeps_the_original_quirk():
    target = trace(-60, 10, -70, -65, -66, -60)
    model = trace(-60, 10, -72, -60, 10, -80, -61)
    # Model has a second spike, target not: M = [-72 (gap), -80 (tail)], T = [-70 (tail)].
    expected = (-70 - (-76)) ** 2 / (-60 - -70) ** 2
    assert ahp_depth(model, target, SETTINGS) == close(expected)


def test_spike_windows_running_past_both_ends_are_clipped():
    target = trace(5, -60, -61, -62, -63, -64, -65, -66, -67, -68, 9, -1)
    model = target + 0.5
    for window in (0, 2, 50):
        settings = CostSettings(sampling_rate_hz=20000.0, spike_window_samples=window)
        got = mse_excluding_spikes(model, target, settings)
        assert got == close(ref_mse_excl(model, target, settings))
        assert len(model) == len(target) == 12
    settings = CostSettings(sampling_rate_hz=20000.0, spike_window_samples=2)
    # spikes (0, 1) and (10, 11) in both: samples [0, 3) and [8, 12) are masked
    kept = 0.5**2 * 5 / 12
    masked_model = np.concatenate([[0.0] * 3, model[3:8], [0.0] * 4])
    assert mse_excluding_spikes(model, target, settings) == close(kept / np.ptp(masked_model) ** 2)


def test_simulator_spike_windows_are_clipped():
    model = np.linspace(-70, -60, 30)
    settings = CostSettings(sampling_rate_hz=1000.0, spike_window_samples=4)
    spikes = spikes_from_times(model, [1.0, 15.0, 29.0], settings)
    assert spikes.start.tolist() == [0, 11, 25]
    assert spikes.stop.tolist() == [5, 19, 29]
    assert spikes.peak.tolist() == [1, 15, 29]
    assert spikes.peak_value.tolist() == model[[1, 15, 29]].tolist()
    got = mse_excluding_spikes(model, model + 1, settings, [1.0, 29.0])
    assert got == close(ref_mse_excl(model, model + 1, settings, [1.0, 29.0]))


def test_simulator_spike_times_are_truncated_to_samples():
    settings = CostSettings(sampling_rate_hz=20000.0)
    # 43 samples * 0.05 ms is 2.15 ms, and 2.15 / 0.05 truncates to 42.
    assert spikes_from_times(np.zeros(100), [43 * 0.05], settings).peak.tolist() == [42]
    assert len(spikes_from_times(np.zeros(100), [], settings)) == 0


def test_simulator_spike_times_outside_the_trace_are_rejected():
    settings = CostSettings(sampling_rate_hz=1000.0)
    for times in ([10.0], [-1.0], [np.nan]):
        with pytest.raises(ValueError, match="spike time"):
            spikes_from_times(np.zeros(10), times, settings)


def test_simulator_spikes_with_overlapping_windows_use_the_span_between_peaks():
    target = trace(-60, 10, -70, 10, -72, -65, -60, -66)
    model = trace(-60, 10, -75, 10, -74, -62, -61, -63)
    settings = CostSettings(sampling_rate_hz=1000.0, spike_window_samples=3)
    got = ahp_depth(model, target, settings, [1.0, 3.0])
    # model windows overlap (stop 4 > next start 0): gap min(model[1:4]) = -75, tail
    # min(model[6:]) = -63; target: gap -70, tail -72
    assert got == close((-71 - -69) ** 2 / (-60 - -72) ** 2)
    assert got == close(ref_ahp(model, target, settings, [1.0, 3.0]))


def test_simulator_spike_times_replace_detection_except_for_ap_width():
    target = SPIKY
    model = SPIKY.copy()
    times = [3 * 0.05, 10 * 0.05, 16 * 0.05]
    assert spike_count(model, target, SETTINGS, times) == close(1 / 6)
    assert spike_count(model, target, SETTINGS, []) == close(2 / 3)
    assert spike_count_stim(model, target, SETTINGS, times) == close(
        ref_spike_count_stim(model, target, SETTINGS, times)
    )
    assert ap_width(model, target, SETTINGS, times) == 0.0
    assert latency_to_first_spike(model, target, SETTINGS, []) == 1.0


def test_one_sided_and_silent_costs():
    silent = np.full(SPIKY.size, -65.0)
    for fn in (isi_differences, latency_to_first_spike, ap_amplitude, ahp_depth, ap_width):
        assert fn(silent, SPIKY, SETTINGS) == 1.0
        assert fn(SPIKY, silent, SETTINGS) == 1.0
        assert fn(silent, silent, SETTINGS) == 0.0
    assert spike_count(silent, SPIKY, SETTINGS) == close(2 / 3)


def test_hand_computed_values():
    target = SPIKY
    model = SPIKY.copy()
    model[3:6] = [5, 20, 5]
    model[9:13] = [-5, 30, -1, -3]
    # target spikes: (3, 4, 30, 6), (9, 10, 25, 12); model: (3, 4, 20, 6), (10, 10, 30, 11)
    assert isi_differences(model, target, SETTINGS) == close(0.0)
    assert latency_to_first_spike(model, target, SETTINGS) == close(0.0)
    assert ap_amplitude(model, target, SETTINGS) == close(((10**2 + 5**2) / 2) / 30**2)
    assert ap_width(model, target, SETTINGS) == close(((1.5 - 1.0) / 1.5) ** 2)
    assert spike_count(model, target, SETTINGS) == 0.0


def test_spike_count_stim_window():
    x = np.full(100, -65.0)
    x[[5, 19, 20, 28, 34, 80]] = 10.0
    flat = np.full(100, -65.0)
    settings = CostSettings(
        sampling_rate_hz=10000.0, stim_delay_ms=2.0, stim_duration_ms=1.5, input_length_ms=7.0
    )
    # samples [20, 35): the spike over 19-20 counts from sample 20, the one at 28 counts, the
    # one at 34 does not (it ends at 35, outside), 5 and 80 are outside
    assert spike_count_stim(x, flat, settings) == close(2 / 3)
    assert spike_count_stim(flat, x, settings) == close(2 / 3)
    for duration in (0.0, 1e9, math.inf):
        longer = CostSettings(
            sampling_rate_hz=10000.0,
            stim_delay_ms=2.0,
            stim_duration_ms=duration,
            input_length_ms=7.0,
        )
        # the input length instead: samples [20, 90) hold four spikes
        assert spike_count_stim(x, flat, longer) == close(4 / 5)
    assert spike_count(x, flat, settings) == close(5 / 6)


@pytest.mark.parametrize("fn", COST_FUNCTIONS.values(), ids=NAMES)
def test_inputs_are_not_modified_and_lists_are_accepted(fn):
    model = SPIKY.copy()
    model[9:13] = [-5, 30, -1, -3]
    target = SPIKY.copy()
    times = np.array([4 * 0.05, 10 * 0.05])
    got = fn(model, target, SETTINGS, times)
    assert model.tolist() == [*SPIKY[:9], -5, 30, -1, -3, *SPIKY[13:]]
    assert target.tolist() == SPIKY.tolist() and times.tolist() == [0.2, 0.5]
    assert fn(model.tolist(), target.tolist(), SETTINGS, times.tolist()) == got


def test_detect_spikes_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN or inf"):
        detect_spikes([0.0, np.nan, 1.0, -1.0], 0.0)
    with pytest.raises(ValueError, match="1-D"):
        detect_spikes(np.zeros((2, 3)), 0.0)
    with pytest.raises(ValueError, match="1-D"):
        mse(np.zeros((2, 3)), np.zeros((2, 3)), SETTINGS)


def test_settings_are_validated():
    with pytest.raises(ValueError, match="sampling_rate_hz"):
        CostSettings(sampling_rate_hz=0.0)
    with pytest.raises(ValueError, match="spike_window_samples"):
        CostSettings(sampling_rate_hz=1.0, spike_window_samples=-1)
    assert CostSettings(sampling_rate_hz=1.0, spike_window_samples=3.0).spike_window_samples == 3


def test_derivative_needs_three_samples():
    with pytest.raises(ValueError, match="at least 3 samples"):
        derivative_difference(trace(1, 2), trace(1, 2), SETTINGS)
