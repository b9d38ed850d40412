"""`neuroptimus features extract`: recordings per amplitude → a features file that scores the
same recordings near zero (the original tool's UC6 model traces stand in for recordings)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.scoring.feature_extraction import (
    ExtractionError,
    extract_features,
    load_recordings,
)
from tests.optimization.test_features import NAMES, model_traces, uc6_problem, write
from tests.reference_numbers import usecase_traces

AMPLITUDES = [-0.25, 0.05, 0.1, 0.15, 0.2, 0.25]


@pytest.fixture(scope="module")
def traces():
    return model_traces(usecase_traces())


def recordings_file(folder, files: dict, **fields) -> str:
    spec = {
        "stimulus": {"delay_ms": 200, "duration_ms": 300},
        "spike_threshold_mV": 0,
        "features": NAMES,
        "recordings": files,
    } | fields
    path = folder / "recordings.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def save(folder, name: str, trace, offsets=(0.0,), time_column=True, scale=1.0) -> str:
    columns = [(trace.values + offset) * scale for offset in offsets]
    table = np.column_stack(([trace.time_ms] if time_column else []) + columns)
    np.savetxt(folder / name, table)
    return name


def score(tmp_path, traces, features_json: dict, rule="efel5") -> dict[str, float]:
    (tmp_path / "extracted.json").write_text(json.dumps(features_json))
    problem = uc6_problem("extracted.json", efel_rule=rule)
    problem["costs"]["features"] = [{"name": n} for n in features_json["features"]]
    built = build_problem(load_problem(write(tmp_path, problem)))
    errors = built.objective.errors(traces)
    return dict(zip(built.component_names, errors, strict=True))


def has_statistic(features_json: dict, component: str) -> bool:
    feature, amplitude = component.removesuffix(" nA]").split(" [")
    return f"stimAmp_{float(amplitude)}" in features_json["features"][feature]


def test_one_recording_per_amplitude_with_a_floor_scores_zero(tmp_path, traces):
    files = {a: [save(tmp_path, f"{a}.dat", t)] for a, t in zip(AMPLITUDES, traces, strict=True)}
    spec = load_recordings(recordings_file(tmp_path, files, std_floor=0.001, efel_rule="efel4"))
    data, notes = extract_features(spec)
    assert data["stimuli"] == {"delay": 200, "duration": 300, "amplitudes": AMPLITUDES}
    spikes = data["features"]["Spikecount"]
    assert spikes["weight"] == "1"
    assert spikes["stimAmp_0.2"] == {"Mean": 1.0, "Std": 0.001}
    assert spikes["stimAmp_-0.25"] == {"Mean": 0.0, "Std": 0.001}
    assert "AP2_amp" not in data["features"]  # one spike at most: eFEL never gives it
    assert "AP2_amp: no statistic at any amplitude, left out of the file" in notes
    assert set(data["features"]["AP_amplitude"]) == {"weight", "stimAmp_0.2", "stimAmp_0.25"}
    errors = score(tmp_path, traces, data, rule="efel4")
    assert len(errors) == 6 * len(data["features"])
    assert max(errors.values()) < 1e-9  # every statistic is the recording's own value
    # the sweeps where eFEL gives nothing are 0 (no statistic there), not 250
    assert errors["AP_amplitude [0.1 nA]"] == 0


def test_without_a_floor_a_zero_spread_is_left_out(tmp_path, traces):
    files = {0.2: [save(tmp_path, "a.dat", traces[4])]}
    data, notes = extract_features(load_recordings(recordings_file(tmp_path, files)))
    assert data["features"] == {}
    assert (
        "Spikecount at 0.2 nA: left out, std 0 over 1 recording(s) (give std_floor to keep it)"
        in notes
    )


def test_mean_and_std_over_recordings(tmp_path, traces):
    """Three recordings per amplitude (the trace shifted by −1, 0, +1 mV, in volts without a
    time column): the mean is the unshifted value, so scoring the unshifted traces gives
    ~0 where the spread is positive."""
    files = {
        a: [save(tmp_path, f"{a}.dat", t, (-1.0, 0.0, 1.0), time_column=False, scale=1e-3)]
        for a, t in zip(AMPLITUDES, traces, strict=True)
    }
    path = recordings_file(tmp_path, files, unit="V", time_column=False, sampling_rate_hz=20000)
    data, _ = extract_features(load_recordings(path))
    base = data["features"]["voltage_base"]["stimAmp_0.05"]
    assert base["Std"] == pytest.approx(np.sqrt(2 / 3), rel=1e-6)  # numpy's std, ddof 0
    errors = score(tmp_path, traces, data)
    spread = [name for name in errors if has_statistic(data, name)]
    assert len(spread) == 16, spread  # voltage levels: voltage_base, AHP_depth_abs …
    assert max(errors[name] for name in spread) < 1e-9
    # shifting does not change these: std 0 up to rounding, no floor, so they are left out
    assert "Spikecount" not in data["features"] and "voltage_deflection" not in data["features"]


def test_a_feature_missing_in_some_recordings_uses_the_others(tmp_path, traces):
    """At 0.2 nA one recording spikes, one (the 0.05 nA sweep) does not: AP_amplitude
    comes from the spiking one; Spikecount from both."""
    files = {
        0.2: [save(tmp_path, "spiking.dat", traces[4]), save(tmp_path, "silent.dat", traces[1])]
    }
    data, _ = extract_features(load_recordings(recordings_file(tmp_path, files, std_floor=0.01)))
    spiking = extract_features(
        load_recordings(recordings_file(tmp_path, {0.2: ["spiking.dat"]}, std_floor=0.01))
    )[0]
    assert data["features"]["AP_amplitude"] == spiking["features"]["AP_amplitude"]
    assert data["features"]["Spikecount"]["stimAmp_0.2"] == {"Mean": 0.5, "Std": 0.5}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": ["Spikecount", "spikes"]}, "features: eFEL has no feature spikes"),
        ({"sampling_rate_hz": 20000}, "give time_column: true or a sampling_rate_hz"),
        ({"unit": "uV"}, "unit: Input should be 'mV' or 'V'"),
        ({"recordings": {0.2: ["nothere.dat"]}}, "nothere.dat: trace file not found"),
        ({"recordings": {0.2: ["recordings.yaml"]}}, "recordings.yaml: cannot read it as numbers"),
        ({"stimulus": {"delay_ms": 200}}, "stimulus.duration_ms: Field required"),
    ],
)
def test_bad_recordings_are_one_line(tmp_path, change, message):
    path = recordings_file(tmp_path, {0.2: ["a.dat"]}, **change)
    with pytest.raises(ExtractionError, match=message) as error:
        extract_features(load_recordings(path))
    assert "\n" not in str(error.value)


def test_the_command_line(tmp_path, traces):
    files = {a: [save(tmp_path, f"{a}.dat", t)] for a, t in zip(AMPLITUDES, traces, strict=True)}
    path = recordings_file(tmp_path, files, std_floor=0.001)
    out = tmp_path / "made.json"
    command = [
        sys.executable,
        "-m",
        "neuroptimus.flows.cli",
        "features",
        "extract",
        str(path),
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"features file: {out}" in done.stdout
    assert "note: AP2_amp: no statistic at any amplitude" in done.stdout
    assert json.loads(out.read_text())["features"]["Spikecount"]["stimAmp_0.25"]["Mean"] == 1
    (tmp_path / "bad.yaml").write_text("stimulus: [")
    done = subprocess.run(
        command[:5] + [str(tmp_path / "bad.yaml")], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {tmp_path / 'bad.yaml'}: line 1: not valid YAML")


def test_a_features_problem_end_to_end_on_a_real_neuron_model(tmp_path):
    """UC1's Hodgkin-Huxley soma: two sweeps simulated at the true values are the
    recordings; their features file, with the sweeps taken from it, scores the true values 0
    through `neuroptimus evaluate` (real NEURON, full-resolution sweeps) and others not."""
    from neuroptimus.optimization.evaluation.problem import simulate_isolated, true_values
    from neuroptimus.usecases import problem_path

    hh = yaml.safe_load(problem_path("hh").read_text())
    hh["model"]["hoc"] = str(problem_path("hh").parent / "model.hoc")
    hh["protocol"]["stimulus"]["amplitudes"] = [0.2, 0.3]
    spec = load_problem(write(tmp_path, hh))
    recorded = simulate_isolated(spec, true_values(spec))
    files = {a: [save(tmp_path, f"{a}.dat", t)] for a, t in zip([0.2, 0.3], recorded, strict=True)}
    names = ["Spikecount", "AP_amplitude", "mean_frequency", "voltage_base"]
    window = {"delay_ms": 200, "duration_ms": 500}
    path = recordings_file(tmp_path, files, features=names, std_floor=0.01, stimulus=window)
    data, notes = extract_features(load_recordings(path))
    assert notes == [] and data["features"]["Spikecount"]["stimAmp_0.3"]["Mean"] > 5
    (tmp_path / "features.json").write_text(json.dumps(data))
    stimulus = {k: hh["protocol"]["stimulus"][k] for k in ("type", "section", "position")}
    hh["protocol"]["stimulus"] = stimulus  # sweeps, delay and duration from the file
    hh["target"] = {"features": "features.json"}
    hh["costs"] = {"features": [{"name": n, "weight": 1} for n in names]}
    problem = write(tmp_path, hh)
    command = [sys.executable, "-m", "neuroptimus.flows.cli", "evaluate", str(problem), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    true = json.loads(done.stdout)
    assert list(true["components"])[:2] == ["Spikecount [0.2 nA]", "AP_amplitude [0.2 nA]"]
    assert len(true["components"]) == 8 and true["total"] < 1e-9
    other = subprocess.run(
        command + ["--param", "gnabar_hh=0.08"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(other.stdout)["total"] > 1
