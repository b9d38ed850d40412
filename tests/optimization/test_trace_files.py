"""Target traces in mV or V, with or without a time column, up-sampled onto the simulation
grid the way the original does it; waveforms of the right length only. No NEURON here."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from neuroptimus.optimization.evaluation.problem import (
    TargetError,
    expected_length,
    read_target_file,
)
from neuroptimus.optimization.problem.data import fetch
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.problem.trace_files import (
    TraceFileError,
    read_waveform,
    upsample_to_simulation_grid,
)
from neuroptimus.usecases import problem_path


def _spike_train(n: int, step_ms: float) -> np.ndarray:
    """A resting membrane at -65 mV with a few spikes to +30 mV (in mV)."""
    t = step_ms * np.arange(n)
    return -65 + 95 * np.exp(-(((t % 40) - 20) ** 2) / 0.5)


def _problem(tmp_path, target: dict, sweeps: int = 1):
    """The bundled hh problem with a target file of its own (the model is not built here)."""
    data = yaml.safe_load(problem_path("hh").read_text())
    data["model"]["hoc"] = str(problem_path("hh").parent / "model.hoc")
    data["protocol"]["stimulus"]["amplitudes"] = [0.3] * sweeps
    data["target"] = {"sampling_rate_hz": 40000, **target}
    path = tmp_path / "problem.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_problem(path)


def test_volts_without_time_column_read_as_mV(tmp_path):
    mV = _spike_train(40001, 0.025)
    np.savetxt(tmp_path / "v.dat", mV[:, None] / 1000)
    spec = _problem(tmp_path, {"file": "v.dat", "time_column": False, "unit": "V"})
    (trace,) = read_target_file(spec)
    assert np.allclose(trace, mV, atol=1e-9)


def test_time_column_is_dropped_and_columns_are_sweeps(tmp_path):
    first, second = _spike_train(40001, 0.025), _spike_train(40001, 0.025) - 5
    time = 0.025 * np.arange(40001)
    np.savetxt(tmp_path / "t.dat", np.column_stack([time, first, second]))
    spec = _problem(tmp_path, {"file": "t.dat", "time_column": True}, sweeps=2)
    traces = read_target_file(spec)
    assert len(traces) == 2
    assert all(np.allclose(t, e) for t, e in zip(traces, (first, second), strict=True))


@pytest.mark.parametrize(
    ("scale", "unit", "message"),
    [
        (1 / 1000, "mV", "values look like volts .* set target.unit: V"),
        (1.0, "V", "values look like millivolts .* set target.unit: mV"),
    ],
)
def test_a_target_in_the_other_unit_is_refused_in_one_line(tmp_path, scale, unit, message):
    np.savetxt(tmp_path / "x.dat", _spike_train(40001, 0.025)[:, None] * scale)
    spec = _problem(tmp_path, {"file": "x.dat", "time_column": False, "unit": unit})
    with pytest.raises(TargetError, match=message) as caught:
        read_target_file(spec)
    assert str(caught.value).startswith(f"target file {tmp_path / 'x.dat'}: ")
    assert "\n" not in str(caught.value)


def test_small_deviations_from_rest_in_mV_are_not_mistaken_for_volts(tmp_path):
    """UC3's target: mV relative to rest (baseline 0, peak 5 mV)."""
    spec = load_problem(problem_path("ca1-passive"))
    (trace,) = read_target_file(spec)
    assert len(trace) == 30000 and 4 < trace.max() < 6


def test_upsampling_is_the_originals_linspace_interpolation():
    rng = np.random.default_rng(3)
    coarse = rng.normal(size=5000)
    fine = upsample_to_simulation_grid(coarse, 1000.0, 5000.0, 0.05)
    # the original: x = linspace(0, tstop, int(tstop·rate/1000)), new x = linspace(0, tstop,
    # int(tstop/dt)) — both end at tstop, hence a slight stretch
    assert len(fine) == 20000
    assert fine[0] == coarse[0] and fine[-1] == coarse[-1]
    # sample 4·k of the fine grid is at time 1000·4k/19999, not at the coarse 0.2·k ms
    k = 2500
    t = 1000 * 4 * k / 19999
    position = t / (1000 / 4999)
    below = int(position)
    expected = coarse[below] + (position - below) * (coarse[below + 1] - coarse[below])
    assert fine[4 * k] == pytest.approx(expected, rel=1e-12)
    assert fine[4 * k] != pytest.approx(coarse[k], rel=1e-6)


def test_uc4_target_is_compared_at_20_kHz_like_the_original():
    spec = load_problem(problem_path("ca1-simplified"))
    (trace,) = read_target_file(spec)
    raw = np.loadtxt(fetch(spec.target.file)) * 1000
    expected = np.interp(np.linspace(0, 1000, 20000), np.linspace(0, 1000, 5000), raw)
    assert np.array_equal(trace, expected)
    assert spec.comparison_rate_hz == 20000 and expected_length(spec) == 20001


def test_upsampling_refuses_a_target_of_another_length():
    with pytest.raises(TraceFileError, match="4000 samples, expected 5000"):
        upsample_to_simulation_grid(np.zeros(4000), 1000.0, 5000.0, 0.05)


@pytest.mark.parametrize("samples", [100, 101])
def test_a_waveform_has_one_value_per_step(tmp_path, samples):
    np.savetxt(tmp_path / "w.dat", np.arange(samples) / 1000)
    assert len(read_waveform(tmp_path / "w.dat", 5.0, 0.05)) == samples


def test_a_waveform_of_the_wrong_length_is_refused_in_one_line(tmp_path):
    np.savetxt(tmp_path / "w.dat", np.zeros(150))
    with pytest.raises(TraceFileError, match=r"w.dat: 150 samples, .* needs 100 \(or 101\)"):
        read_waveform(tmp_path / "w.dat", 5.0, 0.05)


def test_stimulus_takes_amplitudes_or_waveforms(tmp_path):
    np.savetxt(tmp_path / "w.dat", np.zeros(40000))
    data = yaml.safe_load(problem_path("hh").read_text())
    data["model"]["hoc"] = str(problem_path("hh").parent / "model.hoc")
    data["protocol"]["stimulus"]["waveforms"] = ["w.dat"]
    path = tmp_path / "problem.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="amplitudes .* or waveforms .*, not both"):
        load_problem(path)
    for key in ("amplitudes", "delay_ms", "duration_ms"):
        del data["protocol"]["stimulus"][key]
    path.write_text(yaml.safe_dump(data))
    stimulus = load_problem(path).protocol.stimulus
    assert (stimulus.delay_ms, stimulus.duration_ms) == (0.0, 1e9)
