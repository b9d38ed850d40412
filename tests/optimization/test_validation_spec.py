"""The problem file's validation: section, read and checked without simulating: a malformed
section is refused in one line naming its field; an e-model problem's protocols can be held
out by name; UC6 fitted at four steps validates on the other two with the same features file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.optimization.problem.spec import validation_spec
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.usecases import problem_path
from tests.flows import validation_runs

HELD_OUT_UC6 = Path(__file__).parents[1] / "data" / "problems" / "ca1_detailed_held_out.yaml"


def _wave(tmp_path, validation: dict) -> Path:
    return validation_runs.write_problem(tmp_path / "wave", validation)


def test_a_validation_is_read_as_a_problem_of_its_own(tmp_path):
    spec = load_problem(_wave(tmp_path, validation_runs.validation_section(best=3)))
    assert spec.validation.best == 3
    held_out = validation_spec(spec)
    assert held_out.protocol.tstop_ms == validation_runs.HELD_OUT_MS
    assert held_out.target.file == "held_out.txt" and held_out.costs == spec.costs
    assert [p.name for p in held_out.parameters] == [p.name for p in spec.parameters]
    # the validation's problem is a problem to evaluate: its target is the held-out recording
    assert len(build_problem(held_out).objective.targets[0]) == 301
    assert with_overrides(spec, validate_best=0).validation.best == 0


def _section(**changes) -> dict:
    section = validation_runs.validation_section()
    for key, value in changes.items():
        if value is None:
            section.pop(key)
        elif key == "target" and isinstance(value, dict):
            section["target"] = {**section["target"], **value}
        else:
            section[key] = value
    return section


MALFORMED = [
    (_section(target={"file": "missing.txt"}), "validation.target.file: file "),
    (_section(target={"fle": "x.txt"}), "validation.target.fle: unknown field"),
    (_section(target=None), "validation.target: required field is missing"),
    (_section(best=-1), "validation.best: Input should be greater than or equal to 0"),
    (
        _section(target={"sampling_rate_hz": 3000}),
        "validation: target sampling_rate_hz 3000 must divide the simulation rate",
    ),  # fmt: skip
    (
        _section(protocol={"tstop_ms": 150, "dt_ms": 200}),
        "validation.protocol: dt_ms 200 must be smaller than tstop_ms 150",
    ),  # fmt: skip
    ({"best": 2}, "validation: give a protocol and a target"),
    (_section(protocols=[]), "validation.protocols: protocols are for model.simulator: emodel"),
    (_section(hold_out=["step"]), "validation.hold_out: names protocols of an emodel problem"),
    ("soon", "validation: Input should be a valid dictionary"),
]


@pytest.mark.parametrize(("section", "message"), MALFORMED)
def test_a_malformed_validation_is_refused_in_one_line_naming_its_field(tmp_path, section, message):
    with pytest.raises(SpecError) as error:
        load_problem(_wave(tmp_path, section))
    text = str(error.value)
    assert "\n" not in text and message in text, text
    assert text.startswith(str(tmp_path / "wave" / "problem.yaml"))


def test_the_training_itself_is_no_validation(tmp_path):
    path = _wave(tmp_path, {})
    data = yaml.safe_load(path.read_text())
    data["validation"] = {"protocol": data["protocol"], "target": data["target"]}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="validation: the same protocol and target as the "):
        load_problem(path)


def _l5pc(tmp_path, validation: dict) -> Path:
    data = yaml.safe_load(problem_path("l5pc").read_text())
    data["validation"] = validation
    data["base_dir"] = str(problem_path("l5pc").parent)
    path = tmp_path / "l5pc.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_emodel_problem_holds_protocols_out_by_name(tmp_path):
    spec = load_problem(_l5pc(tmp_path, {"hold_out": ["Step2"], "best": 5}))
    assert [p.name for p in spec.protocols] == ["bAP", "Step3", "Step1"]
    assert [p.name for p in spec.validation.protocols] == ["Step2"]
    assert spec.validation.hold_out is None  # moved: what is stored is what runs
    held_out = validation_spec(spec)
    assert [p.name for p in held_out.protocols] == ["Step2"]
    # stored and read again (a run store's spec), it is the same problem
    assert type(spec).model_validate(spec.model_dump(mode="json")) == spec


@pytest.mark.parametrize(
    ("validation", "message"),
    [
        ({"hold_out": ["Step9"]}, "validation.hold_out: no protocol named Step9 (protocols: bAP"),
        ({"protocols": "from hold_out", "hold_out": ["Step2"]}, "validation.protocols: "),
    ],
)
def test_held_out_protocols_must_exist_and_not_collide(tmp_path, validation, message):
    if validation.get("protocols") == "from hold_out":  # Step1 given again under its name
        data = yaml.safe_load(problem_path("l5pc").read_text())
        step1 = next(p for p in data["protocols"] if p["name"] == "Step1")
        validation = {"protocols": [step1]}
        message = "validation.protocols: Step1 also fitted: a held-out protocol needs a name"
    with pytest.raises(SpecError) as error:
        load_problem(_l5pc(tmp_path, validation))
    assert "\n" not in str(error.value) and message in str(error.value)


def test_uc6_fits_four_steps_and_validates_on_the_other_two():
    spec = load_problem(HELD_OUT_UC6)
    assert spec.protocol.stimulus.amplitudes == [-0.25, 0.05, 0.15, 0.25]
    held_out = validation_spec(spec)
    assert held_out.protocol.stimulus.amplitudes == [0.1, 0.2]
    # the held-out protocol took the step's timing from the features file, as UC6's does
    assert (spec.validation.protocol.stimulus.delay_ms, spec.protocol.stimulus.delay_ms) == (
        200.0, 200.0,
    )  # fmt: skip
    training, validation = build_problem(spec), build_problem(held_out)
    assert len(training.component_names) + len(validation.component_names) == len(
        build_problem(load_problem(problem_path("ca1-detailed"))).component_names
    )
    assert all("[0.1 nA]" in n or "[0.2 nA]" in n for n in validation.component_names)
    assert not any("[0.1 nA]" in n or "[0.2 nA]" in n for n in training.component_names)
