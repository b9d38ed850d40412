"""Problem files: the bundled ones load; malformed ones give one clear line and exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.usecases import names, problem_path


@pytest.mark.parametrize("name", ["hh", "vclamp"])
def test_bundled_problems_load(name):
    spec = load_problem(problem_path(name))
    assert spec.name == name
    assert spec.budget == spec.algorithm.population * spec.algorithm.generations
    assert all(p.true_value is not None for p in spec.parameters)


def test_use_case_names():
    assert {"hh", "vclamp", "ca1-passive", "ca1-simplified"} <= set(names())


def test_real_model_problems_keep_the_original_parameter_order():
    """The order of the original settings' adjusted_params (positional --values rely on it)."""
    passive = load_problem(problem_path("ca1-passive"))
    assert [p.name for p in passive.parameters] == ["cm", "Ra", "g_pas"]
    assert passive.model.user_function.function == "usr_fun"
    simplified = load_problem(problem_path("ca1-simplified"))
    mechanisms = ["CaN", "CaL", "H_CA1pyr_prox", "K_AHP", "K_C_1D", "K_M", "K_A_prox", "K_DR",
                  "Na_soma"]  # fmt: skip
    assert [p.property for p in simplified.parameters] == [f"gmax_{m}" for m in mechanisms]
    assert {(p.section, p.segment) for p in simplified.parameters} == {("soma", 0)}
    assert simplified.comparison_rate_hz == 20000


def _broken(tmp_path, change):
    data = yaml.safe_load(problem_path("hh").read_text())
    data["model"]["hoc"] = str(problem_path("hh").parent / "model.hoc")
    change(data)
    path = tmp_path / "problem.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _set(path, value):
    def change(data):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return change


CASES = [
    (_set(["protocol"], KeyError), "protocol: required field is missing"),
    (_set(["parameters", 0, "lower"], "abc"), "parameters[0].lower"),
    (_set(["parameters", 1, "lower"], 2.0), "lower bound 2 must be below upper bound 1"),
    (_set(["costs", "functions", 0, "name"], "MSE2"), "costs.functions[0].name"),
    (_set(["algorithm", "name"], "genetic-magic"), "unknown algorithm 'genetic-magic'"),
    (_set(["algorithm", "settings"], {"sigmaa": 0.2}), "has no setting sigmaa"),
    (_set(["target"], {"file": "missing.dat", "sampling_rate_hz": 40000}), "does not exist"),
    (_set(["target", "sampling_rate_hz"], 40), "not kHz"),
    (_set(["protocol", "stimulus", "amplitudes"], [300]), "did you give pA?"),
    (_set(["protocol", "dt_ms"], 25), "did you give µs?"),
    (_set(["protocol", "v_init_mV"], -0.065), "did you give volts?"),
    (_set(["protocol", "celsius"], 307), "did you give kelvin?"),
    (_set(["protocol", "celsius"], 34), None),
    (_set(["protocol", "atol"], 1e-4), "give cvode: true too"),
    (_set(["protocol", "cvode"], True), None),
    (_set(["protocol", "stimulus", "delay_ms"], 2000), "starts after the simulation ends"),
    (_set(["parameters", 0, "log"], True), None),  # positive lower bound: fine
    (_set(["parameters", 0, "lowr"], 1), "parameters[0].lowr: unknown field"),
    (_set(["target", "regenerate"], False), "give exactly one of file"),
    (_set(["parameters", 0, "section"], "soma"), "has hoc, section: give exactly one of hoc"),
    (_set(["parameters", 0, "hoc"], KeyError), "need a target (hoc, section+segment+property"),
    (_set(["target", "unit"], "mV2"), "target.unit"),
    (_set(["target", "compare_on"], "simulation_grid"), None),
    (_set(["target", "sampling_rate_hz"], 80000), "must divide the simulation rate"),
    (_set(["protocol", "stimulus", "waveforms"], ["w.dat"]), "not both"),
    (_set(["model", "user_function"], {"file": "nope.py", "function": "f"}), "nope.py does not"),
]


@pytest.mark.parametrize(("change", "expected"), CASES)
def test_malformed_problem_names_file_field_and_fix(tmp_path, change, expected):
    path = _broken(tmp_path, change)
    if expected is None:
        load_problem(path)
        return
    with pytest.raises(SpecError) as raised:
        load_problem(path)
    message = str(raised.value)
    assert message.startswith(str(path)), message
    assert expected in message, message
    assert "\n" not in message


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_problem(bad)
    with pytest.raises(SpecError, match="problem file not found"):
        load_problem(tmp_path / "nope.yaml")


def test_overrides_are_validated():
    spec = load_problem(problem_path("hh"))
    changed = with_overrides(spec, algorithm="random", population=7, generations=3, seed=9)
    assert (changed.algorithm.name, changed.budget, changed.seed) == ("random", 21, 9)
    with pytest.raises(SpecError, match="population"):
        with_overrides(spec, population=0)


def test_cli_reports_one_line_and_exit_code_2(tmp_path):
    path = _broken(tmp_path, _set(["parameters", 2, "upper"], 1e-6))
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "evaluate", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "parameters[2]" in lines[0] and "must be below upper bound" in lines[0]
    assert "Traceback" not in result.stderr


def test_unset_celsius_and_cvode_are_left_out_of_the_stored_spec():
    """Problems that give no temperature or integrator keep the spec (and so the keys) they had."""
    spec = load_problem(problem_path("hh"))
    protocol = spec.model_dump(mode="json")["protocol"]
    assert not {"celsius", "cvode", "atol", "rtol"} & set(protocol)
    warm = spec.model_validate(
        {**spec.model_dump(), "protocol": {**spec.protocol.model_dump(), "celsius": 34}}
    )
    assert warm.model_dump(mode="json")["protocol"]["celsius"] == 34
