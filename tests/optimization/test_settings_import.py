"""`neuroptimus import-settings`: the original tool's settings files, copied (with the files
they name, fetched through the data registry) to a folder of their own, convert into the
problem files of this project. The settings carry placeholder paths (/PATH_TO_…/) of their
author's machine, so every file is found by name beside the settings file.

Structure only here: that the converted problems evaluate to the bundled ones' numbers is
checked once the simulator understands every field (the round-trip test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from neuroptimus.optimization.algorithms import CATALOGUE
from neuroptimus.optimization.original.algorithms import ORIGINAL_ALGORITHMS, original_algorithm_id
from neuroptimus.optimization.original.settings import (
    SettingsImportError,
    convert_settings,
    import_settings,
)
from neuroptimus.optimization.problem.data import fetch, registry
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.simulators.sampled import expected_samples
from neuroptimus.usecases import problem_path

UC1 = "testcase_1_hh_pas_surrogate"
UC2 = "testcase_2_VClamp_surrogate"
UC3 = "testcase_3_ca1pc_anat"
UC4 = "testcase_4_ca1_pc_simplification"
UC5 = "testcase_5_adexpif_external_ca3_pc"
UC6 = "testcase_6_Detailed_CA1_pyramidal_cell_model"
UC7 = "testcase_7_Biochemical_pathway_model"


def copied(folder: str, destination: Path) -> Path:
    """The settings file of an upstream use case, copied with every file of its folder."""
    for name in registry():
        if name.startswith(f"{folder}/"):
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fetch(f"data://{name}"), destination / name)
    return destination / folder / f"{folder}_settings.json"


def edited(settings: Path, **changes) -> Path:
    data = json.loads(settings.read_text())
    data["attributes"].update(changes)
    settings.write_text(json.dumps(data))
    return settings


def convert(settings: Path):
    return convert_settings(settings, settings.parent / "problem.yaml")


def test_uc3_waveform_user_function_and_trace(tmp_path):
    settings = copied(UC3, tmp_path)
    result = import_settings(settings, settings.parent / "problem.yaml")
    problem = result.problem
    assert problem["model"] == {
        "simulator": "neuron",
        "hoc": "morphology_131117-C2.hoc",  # model_spec_dir holds no .mod file: no mechanisms
        "user_function": {"file": "user_function.py", "function": "usr_fun"},
    }
    assert problem["parameters"] == [
        {"name": "cm", "lower": 1, "upper": 10},
        {"name": "Ra", "lower": 30, "upper": 3000},
        {"name": "g_pas", "lower": 1.0e-5, "upper": 0.01},
    ]
    assert problem["protocol"] == {
        "tstop_ms": 1500,
        "dt_ms": 0.05,
        "v_init_mV": 0,
        # the settings point at …/new_test_files/ca1pc_anat/cell2_stim.dat, a folder that
        # does not exist: found by name beside the settings
        "stimulus": {
            "type": "IClamp", "section": "soma", "position": 0.5,
            "waveforms": ["cell2_stim.dat"],
        },
        "recording": {"variable": "v", "section": "soma", "position": 0.5},
    }  # fmt: skip
    assert problem["target"] == {
        "file": "131117-C2_short_evendt.dat",
        "sampling_rate_hz": 20000,
        "time_column": True,
        "unit": "mV",
    }  # dt 0.05 ms = the target's step: no up-sampling
    assert problem["costs"] == {
        "functions": [{"name": "MSE", "weight": 1}],
        "spike_threshold_mV": 0,
        "spike_window_samples": 20,
    }
    assert problem["algorithm"] == {"name": "cmaes", "population": 100, "generations": 100}
    assert problem["seed"] == 1235
    resolved = "\n".join(result.resolved)
    assert "stim_amp[0]: /PATH_TO_STIMULI_FILE/" in resolved
    assert f"-> {settings.parent / 'cell2_stim.dat'} (found beside the settings file)" in resolved
    written = settings.parent / "problem.yaml"
    assert yaml.safe_load(written.read_text()) == problem
    assert (settings.parent / "user_function.py").read_text() == result.user_function


def test_uc3_user_function_file_runs_as_the_schema_says(tmp_path):
    """The written file, executed with NEURON's h in its globals and called as
    function(h, values) after the model is built, sets what the original's did."""
    settings = copied(UC3, tmp_path)
    import_settings(settings, settings.parent / "problem.yaml")
    script = """
import sys
from neuron import h
h.load_file(sys.argv[1])
scope = {"h": h}
exec(open(sys.argv[2]).read(), scope)
scope["usr_fun"](h, [2.5, 150.0, 3e-4])
values = {(s.cm, s.Ra, s(0.5).g_pas, s(0.5).e_pas) for s in h.allsec()}
print(len(list(h.allsec())), sorted(values))
"""
    out = subprocess.run(
        [sys.executable, "-c", script, "morphology_131117-C2.hoc", "user_function.py"],
        cwd=settings.parent, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert out.stdout.strip().splitlines()[-1] == "144 [(2.5, 150.0, 0.0003, 0.0)]"


def test_uc4_segment_parameters_volts_and_simulation_grid(tmp_path):
    problem = convert(copied(UC4, tmp_path)).problem
    assert problem["model"] == {
        "simulator": "neuron",
        "hoc": "ca1pc_model.hoc",
        "mechanisms": "mod_files",
    }
    names = [
        "CaN", "CaL", "H_CA1pyr_prox", "K_AHP", "K_C_1D", "K_M", "K_A_prox", "K_DR", "Na_soma",
    ]  # fmt: skip
    assert [p["name"] for p in problem["parameters"]] == [f"gmax_{n}" for n in names]
    assert problem["parameters"][0] == {
        "name": "gmax_CaN", "section": "soma", "segment": 0, "property": "gmax_CaN",
        "lower": 1.0e-4, "upper": 0.01,
    }  # fmt: skip
    assert [p["upper"] for p in problem["parameters"]] == [0.01, 0.1, 0.1, 0.01, 0.1, 0.1, 1, 1, 1]
    assert problem["protocol"]["stimulus"] == {
        "type": "IClamp", "section": "soma", "position": 0.5,
        "amplitudes": [0.2], "delay_ms": 200, "duration_ms": 600,
    }  # fmt: skip
    assert (problem["protocol"]["tstop_ms"], problem["protocol"]["v_init_mV"]) == (1000, -65)
    assert problem["target"] == {
        "file": "Vinj48_2c_1.dat",
        "sampling_rate_hz": 5000,
        "time_column": False,  # one column: the 5th line has no time
        "unit": "V",
        "compare_on": "simulation_grid",  # dt 0.05 ms < 0.2 ms: the original up-samples
    }
    assert problem["costs"] == {
        "functions": [
            {"name": "MSE (excl. spikes)", "weight": 0.2},
            {"name": "Spike count", "weight": 0.4},
            {"name": "Latency to 1st spike", "weight": 0.1},
            {"name": "AP amplitude", "weight": 0.1},
            {"name": "AHP depth", "weight": 0.1},
            {"name": "AP width", "weight": 0.1},
        ],
        "spike_threshold_mV": -10,
        "spike_window_samples": 5,
    }


def test_uc6_features_user_function_and_mechanisms(tmp_path):
    settings = copied(UC6, tmp_path)
    result = import_settings(settings, settings.parent / "problem.yaml")
    problem = result.problem
    assert problem["model"] == {
        "simulator": "neuron",
        "hoc": "load_model_na_inhomo_minimal_model+KM+KA+KD.hoc",
        "mechanisms": "mod_files",
        # kd_params3.mod's RANGE names three of its FUNCTIONs: NEURON 9 refuses it
        "patches": ["kd_params3_neuron9.patch"],
        "user_function": {"file": "user_function.py", "function": "usr_fun"},
    }
    patch = (settings.parent / "kd_params3_neuron9.patch").read_text(encoding="latin-1")
    assert patch.endswith(
        "--- a/kd_params3.mod\n+++ b/kd_params3.mod\n@@ -16,7 +16,7 @@\n NEURON {\n"
        "   SUFFIX kd_params3\n   USEION k READ ek WRITE ik\n"
        "-  RANGE gkd, g, ainfi, binfi, theta_a, theta_b, sigma_a, sigma_b, tau_a, tau_b, ik, "
        "b_kt\n"
        "+  RANGE gkd, g, theta_a, theta_b, sigma_a, sigma_b, tau_a, ik, b_kt\n }\n \n UNITS {\n"
    )
    assert any(
        n.startswith("kd_params3.mod: its RANGE lists ainfi, binfi, tau_b") for n in result.notes
    )
    assert [p["name"] for p in problem["parameters"]] == [
        "Na_BG_act_inact_shift", "gmax_K_DRS4_params_voltage_dep_dend", "gmax_Na_BG_soma",
        "gmax_K_DRS4_params_voltage_dep_soma", "gmax_K_DRS4_params_voltage_dep_axon",
        "gmax_Leak_pyr", "H_ratio", "e_Leak_pyr", "gbar_km_soma_dend", "gbar_km_axon",
        "KA_ratio", "gbar_kd",
    ]  # fmt: skip
    assert problem["parameters"][7] == {"name": "e_Leak_pyr", "lower": -70, "upper": -40}
    # no amplitudes: the six sweeps, their delay and duration come from the features file
    assert problem["protocol"]["stimulus"] == {"type": "IClamp", "section": "soma", "position": 0.5}
    assert problem["target"] == {
        "features": "opt_data_JMakara_OUR_features_selected_stim.json",
        "efel_rule": "efel4",
    }
    assert problem["costs"]["spike_threshold_mV"] == 0
    assert "functions" not in problem["costs"] and "spike_window_samples" not in problem["costs"]
    assert len(problem["costs"]["features"]) == 20
    assert problem["costs"]["features"][0] == {"name": "Spikecount", "weight": 0.05}
    assert {f["weight"] for f in problem["costs"]["features"]} == {0.05}
    assert any("efel4" in note for note in result.notes)
    assert "# - efel_rule: efel4" in result.text  # the notes head the file as comments
    source = result.user_function
    assert "h('soma distance()')" in source and "def usr_fun(self,v):" in source


def test_uc1_and_uc2_match_the_bundled_problems(tmp_path):
    """Modulo the surrogate choice (the bundled ones regenerate their target) and the way a
    parameter is addressed (the settings' segment form, the VClamp use case's user function)."""
    for folder, bundled_name in ((UC1, "hh"), (UC2, "vclamp")):
        problem = convert(copied(folder, tmp_path)).problem
        bundled = yaml.safe_load(problem_path(bundled_name).read_text())
        # vclamp spells out the default series resistance (0.01 MOhm)
        assert bundled["protocol"]["stimulus"].pop("series_resistance_MOhm", 0.01) == 0.01
        bounds = [(p["name"], p["lower"], p["upper"]) for p in problem["parameters"]]
        assert bounds == [(p["name"], p["lower"], p["upper"]) for p in bundled["parameters"]]
        assert problem["protocol"] == bundled["protocol"], folder
        assert problem["costs"] == {
            "spike_threshold_mV": 0, "spike_window_samples": 40, **bundled["costs"],
        }, folder  # fmt: skip
        assert problem["target"]["sampling_rate_hz"] == bundled["target"]["sampling_rate_hz"]
        assert problem["seed"] == bundled["seed"]
    assert problem["model"]["user_function"] == {"file": "user_function.py", "function": "usr_fun"}
    assert "unit" not in problem["target"]  # a current trace: the settings' "mV" means nothing


def test_the_problem_file_is_commented_readable_yaml(tmp_path):
    settings = edited(
        copied(UC4, tmp_path),
        current_algorithm={"GA (Pygmo)": {"size_of_population": 10}},
        input_cont_t=True,
    )
    result = convert(settings)
    text = result.text
    assert yaml.safe_load(text) == result.problem
    header = text[: text.index("\nname:")]
    assert all(line.startswith("#") for line in header.splitlines())
    assert "input_cont_t is True but the file's 5th line has no time column" in header
    assert "algorithm 'GA (Pygmo)' (GA) has no counterpart" in header
    lines = text.splitlines()
    parameters = [line for line in lines if line.startswith("  - {name: gmax_")]
    # one line per parameter, in adjusted_params order
    assert [line.split(",")[0] for line in parameters][:2] == [
        "  - {name: gmax_CaN",
        "  - {name: gmax_CaL",
    ]
    assert "  compare_on: simulation_grid  # the original up-samples" in text
    assert result.problem["algorithm"] == {"name": "cmaes", "population": 10}


def test_algorithm_ids_and_settings(tmp_path):
    assert original_algorithm_id("CMAES - Cmaes") == "CMAES_CMAES"
    assert original_algorithm_id("Cmaes_cmaes") == "CMAES_CMAES"
    assert original_algorithm_id("L-BFGS-B (Scipy)") == "L_BFGS_B"
    assert original_algorithm_id("PSO - Pygmo") == "PSO_PYGMO"
    assert set(ORIGINAL_ALGORITHMS.values()) <= set(CATALOGUE)
    settings = copied(UC4, tmp_path)
    options = {"number_of_cpu": 1, "number_of_generations": 7, "sigma": 1.3,
               "size_of_population": 12}  # fmt: skip
    result = convert(edited(settings, current_algorithm={"CMAES - Cmaes": options}))
    assert result.problem["algorithm"] == {
        "name": "cmaes", "population": 12, "generations": 7, "settings": {"sigma": 1.3},
    }  # fmt: skip
    options = {"number_of_generations": 5, "size_of_population": 10, "omega": 0.5,
               "variant": 5, "memory": False, "number_of_islands": 1}  # fmt: skip
    result = convert(edited(settings, current_algorithm={"PSO_PYGMO": options}))
    assert result.problem["algorithm"]["name"] == "pygmo-pso"
    assert result.problem["algorithm"]["settings"] == {"omega": 0.5, "variant": 5, "islands": 1}
    assert "algorithm settings not carried over to pygmo-pso: memory" in result.notes


def test_paths_that_exist_are_kept_and_relative_ones_follow_the_settings(tmp_path):
    settings = copied(UC4, tmp_path)
    model = settings.parent / "ca1pc_model.hoc"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / "target.dat"
    shutil.copyfile(settings.parent / "Vinj48_2c_1.dat", moved)
    edited(
        settings,
        model_path=str(model),
        input_dir=str(moved),
        model_spec_dir="C:\\Users\\someone\\uc4\\mod_files\\",  # a Windows author's
    )
    result = convert(settings)
    assert result.problem["model"]["mechanisms"] == "mod_files"
    assert result.problem["model"]["hoc"] == "ca1pc_model.hoc"
    assert result.problem["target"]["file"] == str(moved)  # outside the problem's folder
    assert f"input_dir: {moved} -> {moved}" in result.resolved


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"input_dir": "/PATH_TO_EXP_DATA/gone.dat"},
            "input_dir: file /PATH_TO_EXP_DATA/gone.dat not found, nor gone.dat beside the "
            "settings file",
        ),
        ({"model_spec_dir": "/x/no_mods"}, "model_spec_dir: folder /x/no_mods not found"),
        ({"adjusted_params": ["soma 0 CaN"] * 9}, "adjusted_params[0]: 'soma 0 CaN': expected"),
        ({"boundaries": [[0.1], [1.0]]}, "boundaries: expected [[lower…], [upper…]] with 9"),
        ({"weights": [1.0]}, "weights: expected 6 weights, one per feats entry"),
        ({"feats": ["MSE"] * 5 + ["Spike rate"]}, "feats: unknown cost function 'Spike rate'"),
        ({"stim_type": "SEClamp"}, "stim_type: 'SEClamp': expected IClamp or VClamp"),
        ({"u_fun_string": "def f(self, v):\n  x = (\n"}, "u_fun_string: the user function is"),
        ({"run_controll_dt": "0.05"}, "run_controll_dt: expected a number, got '0.05'"),
        ({"seed": "abc"}, "seed: expected a whole number, got 'abc'"),
    ],
)
def test_bad_settings_are_one_line_naming_the_field(tmp_path, change, message):
    settings = edited(copied(UC4, tmp_path), **change)
    with pytest.raises(SettingsImportError) as error:
        convert(settings)
    assert str(error.value).startswith(f"{settings}: ")
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert not (settings.parent / "problem.yaml").exists()


def test_malformed_missing_and_external_settings(tmp_path):
    broken = tmp_path / "broken_settings.json"
    broken.write_text('{"attributes": {"seed": 1,}}')
    with pytest.raises(SettingsImportError, match=r"not valid JSON \(line 1, column 27: "):
        convert(broken)
    broken.write_text('{"seed": 1}')
    with pytest.raises(SettingsImportError, match="attributes: required field is missing"):
        convert(broken)
    with pytest.raises(SettingsImportError, match="settings file not found"):
        convert(tmp_path / "absent_settings.json")
    with pytest.raises(
        SettingsImportError, match="simulator: 'Brian': expected Neuron or External \\(Python\\)"
    ):
        convert(edited(copied(UC5, tmp_path), simulator="Brian"))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "import-settings", *args],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip


def test_command_line_writes_checks_and_keeps_existing_files(tmp_path):
    """A settings file whose parameters are hoc assignments ("sec param") converts into a
    problem this version validates; an existing, different file is never overwritten."""
    settings = edited(
        copied(UC2, tmp_path),
        adjusted_params=["nc weight[0]", "nc delay", "ampasyn tau1", "ampasyn tau2"],
        u_fun_string="",
    )
    out = tmp_path / "imported" / "problem.yaml"
    done = cli(str(settings), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "resolved  model_path: /PATH_TO_MODEL_FILE/" in done.stdout
    assert "check     problem.yaml is a valid problem" in done.stdout
    problem = yaml.safe_load(out.read_text())
    assert [p.get("hoc") for p in problem["parameters"]] == [
        "nc.weight[0]", "nc.delay", "ampasyn.tau1", "ampasyn.tau2",
    ]  # fmt: skip
    assert problem["parameters"][0]["name"] == "weight_0_"
    assert "fallback to a point process at section(0.5) is not carried over" in done.stdout
    assert problem["model"]["hoc"] == str(settings.parent / "simple_hh_syn_vclamp_toopt2.hoc")
    out.write_text(out.read_text() + "# my edit\n")
    again = cli(str(settings), "--out", str(out))
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: {out}: exists already (use --force to overwrite it)"
    assert cli(str(settings), "--out", str(out), "--force").returncode == 0
    assert "# my edit" not in out.read_text()

    edited(settings, boundaries=[[0.5, 0, 0.001, 0.1], [0.1, 5, 1, 5]])
    invalid = cli(str(settings), "--out", str(tmp_path / "invalid.yaml"))
    assert invalid.returncode == 1
    assert "the problem does not validate" in invalid.stdout
    assert "parameters[0]: lower bound 0.5 must be below upper bound 0.1" in invalid.stdout


UC5_BOUNDS = [
    [0.001, 10, -70, 0, -40, 0.5, -5, 0, 0.5, 10],
    [0.01, 100, -40, 30, -10, 5, 5, 1, 5, 500],
]


def test_uc5_external_settings_become_an_external_problem(tmp_path):
    """The original's "External (Python)": the program and model file of sim_command, its
    last word the parameter count; one call per trace (input_size); the settings' bounds
    (the reset offset 0 … 30, not boundaries.txt's); no stimulus, so that "Spike count
    (stim.)" counts the whole trace as the original's stim_dur 0 does."""
    settings = copied(UC5, tmp_path)
    problem = import_settings(settings, settings.parent / "problem.yaml").problem
    assert problem["model"] == {
        "simulator": "external",
        "command": ["python3", "teststeps_optim5.py"],
        "folder": ".",
        "protocol": "neuroptimus",
        "per_sweep": True,
        "trace_file": "trace{id}.dat",
        "spike_file": "spike{id}.dat",
    }
    assert [p["name"] for p in problem["parameters"]] == [f"parameter{k}" for k in range(10)]
    assert [[p["lower"] for p in problem["parameters"]], [p["upper"] for p in
            problem["parameters"]]] == UC5_BOUNDS  # fmt: skip
    assert problem["protocol"] == {"tstop_ms": 1100, "dt_ms": 0.2, "sweeps": 4}
    assert problem["target"] == {
        "file": "ca3_pc_v2_4.csv", "sampling_rate_hz": 5000, "time_column": False, "unit": "mV",
    }  # fmt: skip
    assert problem["costs"] == {
        "functions": [
            {"name": "MSE (excl. spikes)", "weight": 0.3333},
            {"name": "Spike count (stim.)", "weight": 0.3333},
            {"name": "Latency to 1st spike", "weight": 0.3333},
        ],
        "spike_threshold_mV": 0,
        "spike_window_samples": 5,
    }
    assert problem["algorithm"] == {"name": "cmaes", "population": 100, "generations": 100}
    assert problem["seed"] == 1235
    spec = load_problem(settings.parent / "problem.yaml")
    assert spec.protocol.sweeps == 4 and spec.protocol.stimulus is None


def test_uc5_stimulus_window_and_a_wrong_parameter_count(tmp_path):
    """A non-zero stim_del/stim_dur is kept as the window of "Spike count (stim.)"; a
    sim_command whose last word is not the parameter count is one line naming the field."""
    settings = edited(copied(UC5, tmp_path), stim_del=100, stim_dur=800)
    result = convert(settings)
    stimulus = result.problem["protocol"]["stimulus"]
    assert (stimulus["delay_ms"], stimulus["duration_ms"]) == (100, 800)
    assert stimulus["amplitudes"] == [0, 0, 0, 0]
    assert any("only set the window of 'Spike count (stim.)'" in n for n in result.notes)
    edited(settings, sim_command="python3 /x/teststeps_optim5.py 9")
    with pytest.raises(SettingsImportError, match=r"sim_command: its last word '9' must be the "
                       r"number of parameters, 10 \(adjusted_params\)"):  # fmt: skip
        convert(settings)
    edited(settings, sim_command="python3 /x/absent.py 10")
    with pytest.raises(SettingsImportError, match=r"sim_command \(model file\): file "):
        convert(settings)


def test_uc7_external_settings_convert_to_a_valid_problem(tmp_path):
    """UC7 is the same mechanism (its run.py is not run here: minutes of NEURON rxd). Its
    settings' tstop (154 min at the target's 2-min-ish step) would mean 158 samples while
    run.py writes the target's 34: tstop_ms is set so that they compare one to one, as the
    original compares them, with a note."""
    settings = copied(UC7, tmp_path)
    result = import_settings(settings, settings.parent / "problem.yaml")
    problem = result.problem
    assert problem["model"]["command"] == ["python3", "run.py"]
    assert problem["model"]["per_sweep"] is True and problem["protocol"]["sweeps"] == 1
    assert len(problem["parameters"]) == 12
    assert problem["parameters"][0] == {"name": "parameter0", "lower": 0.1, "upper": 20000}
    assert problem["target"]["time_column"] is True
    assert problem["costs"]["functions"] == [{"name": "MSE", "weight": 1}]
    assert problem["algorithm"]["settings"] == {"sigma": 1.3}
    assert any("the target has 34" in note for note in result.notes)
    spec = load_problem(settings.parent / "problem.yaml")
    assert expected_samples(spec) in (34, 35)  # run.py writes 34 rows, as the target has
