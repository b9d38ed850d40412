"""eFEL feature statistics (use case 6): the original tool's numbers on its own model traces,
and one-line setup errors for bad features files."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.problem.data import fetch
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.simulators import Trace
from tests.reference_numbers import usecase, usecase_traces

UC6 = "data://testcase_6_Detailed_CA1_pyramidal_cell_model/"
ENTRY = UC6 + "load_model_na_inhomo_minimal_model+KM+KA+KD.hoc"
FEATURES = UC6 + "opt_data_JMakara_OUR_features_selected_stim.json"
NAMES = [
    "Spikecount", "inv_first_ISI", "inv_last_ISI", "inv_time_to_first_spike",
    "steady_state_voltage", "voltage_base", "voltage_deflection", "voltage_deflection_begin",
    "AHP_depth_abs", "AHP_time_from_peak", "AP2_amp", "AP_amplitude", "AP_begin_voltage",
    "AP_duration_half_width", "AP_fall_time", "AP_rise_time", "APlast_amp",
    "time_to_last_spike", "sag_amplitude", "sag_ratio1",
]  # fmt: skip


def uc6_problem(features: str = FEATURES, efel_rule: str | None = None, **stimulus) -> dict:
    """UC6's protocol, target and costs (the model is not run here)."""
    target = {"features": features} | ({"efel_rule": efel_rule} if efel_rule else {})
    return {
        "name": "ca1-detailed",
        "model": {"simulator": "neuron", "hoc": ENTRY},
        "parameters": [{"name": "gbar_kd", "hoc": "soma.gkd_kd", "lower": 0, "upper": 0.1}],
        "protocol": {
            "tstop_ms": 600, "dt_ms": 0.05, "v_init_mV": -65,
            "stimulus": {"type": "IClamp", "section": "soma", "position": 0.5, **stimulus},
        },
        "target": target,
        "costs": {"features": [{"name": n, "weight": 0.05} for n in NAMES]},
    }  # fmt: skip


def write(tmp_path, problem: dict):
    path = tmp_path / "problem.yaml"
    path.write_text(yaml.safe_dump(problem))
    return path


@pytest.fixture(scope="module")
def reference():
    return usecase("ca1-detailed"), usecase_traces()


def model_traces(traces) -> list[Trace]:
    voltages = traces["ca1-detailed__model_v_mV"]
    time = traces["ca1-detailed__t_efel_ms"]  # the original's eFEL time axis
    dt = float(np.diff(time).mean())
    assert np.allclose(time, dt * np.arange(len(time)), atol=1e-9)
    return [Trace(v, dt) for v in voltages]


def scored(problem, traces) -> dict[str, float]:
    errors = problem.objective.errors(model_traces(traces))
    return dict(zip(problem.component_names, errors, strict=True))


def test_the_protocol_comes_from_the_features_file(tmp_path):
    spec = load_problem(write(tmp_path, uc6_problem()))
    stimulus = spec.protocol.stimulus
    assert stimulus.amplitudes == [-0.25, 0.05, 0.1, 0.15, 0.2, 0.25]
    assert (stimulus.delay_ms, stimulus.duration_ms) == (200, 300)
    assert spec.target.sampling_rate_hz == 20000  # full resolution: 1000 / dt
    assert spec.target.efel_rule == "efel5"
    assert spec.protocol.sweeps == 6
    again = with_overrides(spec, seed=7)  # the completed spec validates as it is
    assert again.protocol == spec.protocol and again.target == spec.target


def test_the_problems_stimulus_wins_over_the_file(tmp_path):
    problem = uc6_problem(amplitudes=[0.25, 0.2, 0.15, 0.1, 0.05, -0.25, 0.3], delay_ms=100)
    spec = load_problem(write(tmp_path, problem))
    assert spec.protocol.stimulus.amplitudes[-1] == 0.3
    assert (spec.protocol.stimulus.delay_ms, spec.protocol.stimulus.duration_ms) == (100, 300)
    objective = build_problem(spec).objective
    assert objective.window_ms == (100, 400)
    names = objective.component_names
    assert names[:2] == ["Spikecount [0.25 nA]", "inv_first_ISI [0.25 nA]"]
    assert len(names) == 7 * 20 and names[-1] == "sag_ratio1 [0.3 nA]"


@pytest.mark.parametrize(
    ("rule", "total_key"),
    [("efel4", "total"), ("efel5", "total_efel5_raw"), (None, "total_efel5_raw")],
)
def test_the_original_tools_total_on_its_own_model_traces(tmp_path, reference, rule, total_key):
    expected, traces = reference
    problem = build_problem(load_problem(write(tmp_path, uc6_problem(efel_rule=rule))))
    errors = problem.objective.errors(model_traces(traces))
    assert len(errors) == 120
    assert problem.objective.total(errors) == pytest.approx(expected[total_key], rel=1e-3)
    assert (errors == 250).sum() == expected["n_terms_250"][
        "efel4_compat" if rule == "efel4" else "efel5_raw"
    ]


def test_the_original_tools_components(tmp_path, reference):
    expected, traces = reference
    problem = build_problem(load_problem(write(tmp_path, uc6_problem(efel_rule="efel4"))))
    errors = scored(problem, traces)
    components = expected["components"]["errors_efel4_compat"]
    assert len(errors) == sum(len(by_amplitude) for by_amplitude in components.values())
    for feature, by_amplitude in components.items():
        for key, value in by_amplitude.items():
            name = f"{feature} [{float(key.removeprefix('stimAmp_')):g} nA]"
            assert errors[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    values = problem.objective.values(model_traces(traces))
    assert [sweep[0] for sweep in values] == expected["spike_counts"]["model_efel_Spikecount"]


def test_efel5_scores_missing_spike_timing_with_250(tmp_path, reference):
    expected, traces = reference
    total = {}
    for rule in ("efel4", "efel5"):
        problem = build_problem(load_problem(write(tmp_path, uc6_problem(efel_rule=rule))))
        total[rule] = scored(problem, traces)
    for row in expected["components"]["errors_efel5_raw_where_different"]:
        name = f"{row['feature']} [{row['stim_amp_nA']:g} nA]"
        assert (total["efel4"][name], total["efel5"][name]) == (row["error_efel4_compat"], 250.0)


def test_a_wrong_number_of_sweeps_is_refused(tmp_path, reference):
    problem = build_problem(load_problem(write(tmp_path, uc6_problem())))
    with pytest.raises(ValueError, match="6 amplitudes"):
        problem.objective.errors(model_traces(reference[1])[:5])


# --- bad features files: one line naming the file and the field, when the problem is read ---


def _features() -> dict:
    return json.loads(fetch(FEATURES).read_text())


def _without(entry: str):
    def change(data):
        del data["features"]["Spikecount"]["stimAmp_0.1"][entry]

    return change


def _set_std(value):
    def change(data):
        data["features"]["AP_amplitude"]["stimAmp_0.2"]["Std"] = value

    return change


def _rename(old, new):
    def change(data):
        data["features"][new] = data["features"].pop(old)

    return change


def _extra_amplitude(data):
    data["features"]["voltage_base"]["stimAmp_0.3"] = {"Mean": -65, "Std": 1}


def _no_stimuli(data):
    del data["stimuli"]


BAD_FILES = [
    (_without("Std"), "features.Spikecount.stimAmp_0.1: needs numbers Mean and Std"),
    (_without("Mean"), "features.Spikecount.stimAmp_0.1: needs numbers Mean and Std"),
    (_set_std(0), "features.AP_amplitude.stimAmp_0.2.Std: must be positive, got 0"),
    (_set_std(-1.5), "features.AP_amplitude.stimAmp_0.2.Std: must be positive, got -1.5"),
    (_set_std("1"), "features.AP_amplitude.stimAmp_0.2: needs numbers Mean and Std"),
    (_rename("sag_ratio1", "sag_ratio_one"), "features.sag_ratio1: not in the file"),
    (_extra_amplitude, "features.voltage_base.stimAmp_0.3: the protocol has no sweep at 0.3 nA"),
    (_no_stimuli, "stimuli.amplitudes: missing (or give protocol.stimulus.amplitudes"),
]


@pytest.mark.parametrize(("change", "message"), BAD_FILES)
def test_bad_features_files_are_refused_with_the_file_and_field(tmp_path, change, message):
    data = _features()
    change(data)
    (tmp_path / "features.json").write_text(json.dumps(data))
    with pytest.raises(SpecError) as error:
        load_problem(write(tmp_path, uc6_problem("features.json")))
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith(f"{tmp_path / 'problem.yaml'}: target.features: ")
    assert f"{tmp_path / 'features.json'}: {message}" in text


def test_an_amplitude_the_problem_does_not_simulate_is_refused(tmp_path):
    problem = uc6_problem(amplitudes=[-0.25, 0.05, 0.1, 0.15, 0.2])  # 0.25 left out
    with pytest.raises(
        SpecError, match=r"features.Spikecount.stimAmp_0.25: the protocol has no sweep at 0.25 nA"
    ):
        load_problem(write(tmp_path, problem))


def test_a_feature_efel_does_not_know_is_refused(tmp_path):
    data = _features()
    data["features"]["spike_countt"] = data["features"]["Spikecount"]
    (tmp_path / "features.json").write_text(json.dumps(data))
    problem = uc6_problem("features.json")
    problem["costs"]["features"].append({"name": "spike_countt", "weight": 1})
    with pytest.raises(SpecError, match="features.spike_countt: eFEL has no such feature"):
        load_problem(write(tmp_path, problem))


def test_a_missing_or_unreadable_features_file_is_refused(tmp_path):
    with pytest.raises(SpecError, match=r"target.features: file .*nothere.json does not exist"):
        load_problem(write(tmp_path, uc6_problem("nothere.json")))
    (tmp_path / "broken.json").write_text('{"features": {')
    with pytest.raises(SpecError, match=r"target.features: .*broken.json: not a JSON file"):
        load_problem(write(tmp_path, uc6_problem("broken.json")))
    shutil.copy(fetch(UC6 + "user_fun.txt"), tmp_path / "text.json")
    with pytest.raises(SpecError, match=r"text.json: not a JSON file"):
        load_problem(write(tmp_path, uc6_problem("text.json")))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["costs"].update(functions=[{"name": "MSE"}]),
            "costs: a features target is scored by costs.features",
        ),
        (
            lambda p: p["costs"].pop("features"),
            "costs: a features target is scored by costs.features",
        ),
        (
            lambda p: p["target"].update(sampling_rate_hz=5000),
            "features are extracted at the simulation rate 20000 Hz",
        ),
        (lambda p: p["target"].update(file="x.dat"), "give exactly one of file"),
        (lambda p: p["target"].update(efel_rule="efel3"), "target.efel_rule"),
        (lambda p: p["protocol"].pop("stimulus"), "a features target needs an IClamp stimulus"),
    ],
)
def test_problem_fields_of_a_features_target(tmp_path, change, message):
    problem = uc6_problem()
    change(problem)
    with pytest.raises(SpecError, match=message):
        load_problem(write(tmp_path, problem))


def test_trace_targets_still_need_their_fields(tmp_path):
    problem = uc6_problem()
    problem["target"] = {"file": "t.dat", "sampling_rate_hz": 20000}
    (tmp_path / "t.dat").write_text("0\n")
    with pytest.raises(SpecError, match="costs: give functions"):
        load_problem(write(tmp_path, problem))
    problem["costs"] = {"functions": [{"name": "MSE"}]}
    with pytest.raises(SpecError, match="give amplitudes, delay_ms and duration_ms"):
        load_problem(write(tmp_path, problem))


def test_a_run_store_of_a_features_problem_gives_the_problem_back(tmp_path, reference):
    from neuroptimus.storage.runs.create import create_run_store, problem_from_store
    from neuroptimus.storage.runs.run_store import RunStore

    problem = build_problem(load_problem(write(tmp_path, uc6_problem(efel_rule="efel4"))))
    create_run_store(problem, tmp_path / "run").close()
    store = RunStore.open(tmp_path / "run")
    assert store.arrays("target") == {}  # no target traces
    again = problem_from_store(store)
    assert again.component_names == problem.component_names
    traces = model_traces(reference[1])
    assert again.objective.total(again.objective.errors(traces)) == pytest.approx(
        reference[0]["total"], rel=1e-3
    )


def test_the_best_so_far_table_shows_the_feature_weights(tmp_path):
    from neuroptimus.tasks.artifacts import best_markdown

    spec = load_problem(write(tmp_path, uc6_problem()))
    names = build_problem(spec).component_names
    best = {"generation": 1, "total": 2.0, "parameters": {"gbar_kd": 0.01}, "errors": {}}
    best["errors"] = dict.fromkeys(names, 0.5)
    assert "| Spikecount [0.1 nA] | 0.5 | 0.05 |" in best_markdown(spec, "x", best, 5, "done")
