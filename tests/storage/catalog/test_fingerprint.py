"""The use-case fingerprint: the same problem anywhere gets the same one; a changed weight,
bound, model file or penalty gets another."""

from __future__ import annotations

import shutil
import uuid

import pytest

from neuroptimus.optimization.problem.data import registry
from neuroptimus.optimization.problem.identity import (
    FingerprintError,
    component_names,
    use_case_identity,
    weak_identity,
)
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.storage.runs.run_store import RunStore, store_run_id
from neuroptimus.usecases import problem_path


def _spec(folder, name="hh"):
    """The bundled problem copied into ``folder`` and read from there (its own base_dir)."""
    folder.mkdir(parents=True)
    for path in problem_path(name).parent.iterdir():
        shutil.copy(path, folder / path.name)
    return load_problem(folder / "problem.yaml").model_dump(mode="json")


@pytest.fixture(scope="module")
def two_copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("fingerprint")
    return _spec(root / "lab-a" / "hh"), _spec(root / "elsewhere" / "deeper" / "copy")


def test_the_same_problem_in_two_folders_has_one_fingerprint(two_copies):
    a, b = two_copies
    assert a["base_dir"] != b["base_dir"]
    assert use_case_identity(a).fingerprint == use_case_identity(b).fingerprint


def test_name_algorithm_seed_stopping_and_timeout_do_not_count(two_copies):
    a, _ = two_copies
    b = {**a, "name": "mine", "description": "other words", "seed": 99,
         "algorithm": {**a["algorithm"], "name": "pygmo-de", "population": 7},
         "stopping": {**a["stopping"], "max_evaluations": 5},
         "evaluation": {**a["evaluation"], "timeout_s": 1.0}}  # fmt: skip
    assert use_case_identity(a).fingerprint == use_case_identity(b).fingerprint
    assert use_case_identity(b).name == "mine"


def _changed(spec, section, key, index, value):
    copy = {**spec, section: [dict(item) for item in spec[section]]}
    copy[section][index][key] = value
    return copy


def test_a_weight_a_bound_the_penalty_or_the_model_file_make_another_use_case(two_copies):
    a, b = two_copies
    reference = use_case_identity(a).fingerprint
    weight = {**a, "costs": {**a["costs"], "functions": [dict(f) for f in a["costs"]["functions"]]}}
    weight["costs"]["functions"][1]["weight"] = 0.5
    bound = _changed(a, "parameters", "upper", 2, 0.002)
    penalty = {**a, "evaluation": {**a["evaluation"], "penalty": 50.0}}
    log = _changed(a, "parameters", "log", 0, True)
    for other in (weight, bound, penalty, log):
        assert use_case_identity(other).fingerprint != reference
    hoc = b["base_dir"] + "/model.hoc"
    with open(hoc, "a") as handle:
        handle.write("\n// an edit\n")
    assert use_case_identity(b).fingerprint != reference


def test_registered_files_count_by_their_registered_hash_and_missing_files_are_named(two_copies):
    a, _ = two_copies
    name = "testcase_1_hh_pas_surrogate/input_data2.dat"
    spec = {**a, "target": {**a["target"], "regenerate": False, "file": f"data://{name}"}}
    identity = use_case_identity(spec)
    assert identity.core["target"]["file"] == registry()[name].removeprefix("sha256:")
    assert "true_values" not in identity.core["target"]
    gone = {**a, "model": {**a["model"], "hoc": "no-such-model.hoc"}}
    with pytest.raises(FingerprintError, match="no-such-model.hoc"):
        use_case_identity(gone)


def test_component_names_follow_the_sweeps(two_copies):
    a, _ = two_copies
    assert component_names(a) == [f["name"] for f in a["costs"]["functions"]]
    stimulus = {**a["protocol"]["stimulus"], "amplitudes": [0.1, 0.2]}
    two = {**a, "protocol": {**a["protocol"], "stimulus": stimulus}}
    assert component_names(two)[4] == "MSE (excl. spikes) [sweep 2]"


def test_the_store_records_its_identity_and_a_run_id(hh_run_store, tmp_path):
    store = RunStore.open(hh_run_store)
    attrs = store.attrs
    assert attrs["use_case"] == use_case_identity(attrs["spec"]).model_dump(mode="json")
    assert store_run_id(store) == attrs["run_id"]
    assert uuid.UUID(attrs["run_id"]).version == 4
    # a store older than run ids is given a random one, once, kept in the store
    legacy = tmp_path / "legacy.zarr"
    shutil.copytree(hh_run_store, legacy)
    RunStore.open(legacy, mode="r+").group.attrs.pop("run_id")
    assert "run_id" not in RunStore.open(legacy).attrs
    given = store_run_id(RunStore.open(legacy))
    assert uuid.UUID(given).version == 4 and given != attrs["run_id"]
    assert RunStore.open(legacy).attrs["run_id"] == given
    assert store_run_id(RunStore.open(legacy)) == given


def test_weak_identity_of_the_original_format_uses_names_and_bounds():
    data = {
        "models": {"model_name": "hh_pas", "model_author": "somehost"},
        "target_data": [{"file_name": "input_data2.dat"}],
        "parameters": [{"name": "gnabar", "min_boundary": 0.01, "max_boundary": 1}],
        "error_function": [{"name": "MSE", "weight": 1.0}],
    }
    identity = weak_identity(data)
    assert identity.kind == "weak" and identity.name == "hh_pas"
    other_host = {**data, "models": {"model_name": "hh_pas", "model_author": "elsewhere"}}
    assert weak_identity(other_host).fingerprint == identity.fingerprint
    wider = {**data, "parameters": [{"name": "gnabar", "min_boundary": 0.01, "max_boundary": 2}]}
    assert weak_identity(wider).fingerprint != identity.fingerprint
