"""E-model problems (model.simulator: emodel): BluePyOpt's L5PC example scores as BluePyOpt
scores it, `neuroptimus import-bluepyopt` writes the bundled problem, and the pieces (morphology,
section lists, axon replacement, distributions, soma-distance recordings, the 250 rule) on a
small cell. NEURON models are built in spawned processes: a cell left in the test process
would join every later model's sections there."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import efel
import numpy as np
import pytest
import yaml

from neuroptimus.optimization.problem.bluepyopt_import import BluePyOptImportError, convert_folder
from neuroptimus.optimization.problem.data import fetch, file_url
from neuroptimus.optimization.problem.problem_file import load_problem, parse_problem
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.optimization.scoring.emodel_objective import ScoredFeature, score, scores
from neuroptimus.optimization.simulators.emodel import TimedTrace
from neuroptimus.usecases import problem_path

REFERENCE = Path(__file__).parents[1] / "data" / "reference" / "l5pc_bluepyopt_objectives.json"
EXAMPLE = "data://bluepyopt/examples/l5pc"


def test_l5pc_release_parameters_give_bluepyopt_objectives():
    """`neuroptimus evaluate l5pc --values …` at BluePyOpt's release parameters: the same 35
    objectives, by name and in order, each within 1e-4 relative, and their sum."""
    reference = json.loads(REFERENCE.read_text())
    spec = load_problem(problem_path("l5pc"))
    assert [p.name for p in spec.parameters] == reference["parameter_names"]
    values = ",".join(repr(v) for v in reference["values"])
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "evaluate", "l5pc", "--values", values,
         "--json"],
        capture_output=True, text=True, timeout=900, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert list(got["components"]) == list(reference["objectives"])
    for name, expected in reference["objectives"].items():
        assert math.isclose(got["components"][name], expected, rel_tol=1e-4, abs_tol=1e-12), name
    assert math.isclose(got["total"], 35.33248716882047, rel_tol=1e-4)


def _example(tmp_path: Path) -> Path:
    """A copy of BluePyOpt's example folder (from the registry: the mirror or a download)."""
    folder = tmp_path / "l5pc"
    shutil.copytree(fetch(EXAMPLE), folder)
    return folder


def test_the_bundled_l5pc_is_what_import_bluepyopt_writes(tmp_path):
    bundled = yaml.safe_load(problem_path("l5pc").read_text())
    imported = convert_folder(fetch(EXAMPLE), problem_path("l5pc"), files_prefix=EXAMPLE + "/")
    for field in ("model", "parameters", "protocols", "algorithm", "evaluation"):
        assert imported.problem[field] == bundled[field], field
    assert imported.problem["evaluation"]["penalty"] == 250 * 35


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "import-bluepyopt", *args],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip


def test_import_bluepyopt_writes_a_valid_problem_and_says_what_it_took(tmp_path):
    folder = _example(tmp_path)
    parameters = json.loads((folder / "config/parameters.json").read_text())
    parameters.append({"param_name": "tau", "type": "global", "value": 3})
    (folder / "config/parameters.json").write_text(json.dumps(parameters))
    result = _cli(str(folder))
    assert result.returncode == 0, result.stderr
    assert "carried   20 free parameters and 17 fixed values" in result.stdout
    assert "global tau not carried over" in result.stdout
    assert "is a valid problem" in result.stdout
    spec = load_problem(folder / "problem.yaml")
    assert spec.model.morphology == "morphology/C060114A7.asc"
    assert spec.model.distributions == {"exp": "(-0.8696 + 2.087*exp(distance*0.0031))*value"}
    assert [r.location.soma_distance_um for r in spec.protocols[0].recordings] == [None, 660, 800]
    assert spec.protocols[0].window_ms == (295, 600)  # bAP: the whole sweep
    assert spec.protocols[1].window_ms == (700, 2700)  # a step: its start and end
    refused = _cli(str(folder))
    assert refused.returncode == 2 and "--force" in refused.stderr


def test_import_bluepyopt_names_the_file_it_cannot_use(tmp_path):
    folder = _example(tmp_path)
    (folder / "config/protocols.json").write_text("{}")
    with pytest.raises(BluePyOptImportError, match="features.json: protocol bAP is not in"):
        convert_folder(folder, folder / "problem.yaml")
    shutil.copy(folder / "morphology/C060114A7.asc", folder / "morphology/other.swc")
    with pytest.raises(BluePyOptImportError, match="expected one morphology file"):
        convert_folder(folder, folder / "problem.yaml")


def _swc(path: Path) -> Path:
    """A small cell: a one-point soma, a branching axon (40 µm, then 100 µm and a side
    branch), a basal dendrite and a 200 µm apical dendrite."""
    rows = [(1, 1, 0, 0, 0, 10, -1)]

    def chain(parent: int, kind: int, points: list, radius: float) -> int:
        for x, y in points:
            rows.append((len(rows) + 1, kind, x, y, 0, radius, parent))
            parent = len(rows)
        return parent

    fork = chain(1, 2, [(0, -10), (0, -30), (0, -50)], 0.5)
    chain(fork, 2, [(0, -100), (0, -150)], 0.3)
    chain(fork, 2, [(10, -80)], 0.2)
    chain(1, 3, [(10, 0), (60, 0)], 1.0)
    chain(1, 4, [(0, 10), (0, 110), (0, 210)], 1.5)
    path.write_text("".join(" ".join(map(str, row)) + "\n" for row in rows))
    return path


def _small_problem(tmp_path: Path) -> dict:
    return {
        "name": "small",
        "model": {
            "simulator": "emodel",
            "morphology": str(_swc(tmp_path / "cell.swc")),
            "replace_axon": True,
            "insert": {"all": ["pas"], "somatic": ["hh"], "axonal": ["hh"]},
            "distributions": {"linear": "value*(1 + distance/100)"},
            "fixed": [
                {"hoc": "celsius", "value": 6.3},
                {"sections": "all", "property": "e_pas", "value": -65},
                {
                    "sections": "apical",
                    "property": "g_pas",
                    "distribution": "linear",
                    "value": 1e-4,
                },
            ],  # fmt: skip
        },
        "parameters": [
            {
                "name": "gnabar_hh.somatic",
                "sections": "somatic",
                "property": "gnabar_hh",
                "lower": 0.05,
                "upper": 0.2,
                "true_value": 0.12,
            },
            {
                "name": "g_pas.basal",
                "sections": "basal",
                "property": "g_pas",
                "lower": 1e-5,
                "upper": 1e-3,
                "true_value": 1e-4,
            },
        ],  # fmt: skip
        "protocols": [
            {
                "name": "Step",
                "stimuli": [
                    {
                        "amplitude_nA": 1.0,
                        "delay_ms": 20,
                        "duration_ms": 100,
                        "total_duration_ms": 150,
                    },
                    {
                        "amplitude_nA": -0.05,
                        "delay_ms": 0,
                        "duration_ms": 150,
                        "total_duration_ms": 150,
                    },
                ],  # fmt: skip
                "recordings": [
                    {"name": "soma", "features": [{"name": "Spikecount", "mean": 5, "std": 2}]},
                    {
                        "name": "dend",
                        "location": {"sections": "apical", "soma_distance_um": 150},
                        "threshold_mV": -55,
                        "features": [{"name": "AP_width", "mean": 1, "std": 1}],
                    },
                ],  # fmt: skip
            },
            {
                "name": "Fixed",
                "cvode": False,
                "dt_ms": 0.05,
                "stimuli": [
                    {
                        "amplitude_nA": 0.5,
                        "delay_ms": 10,
                        "duration_ms": 20,
                        "total_duration_ms": 40,
                    }
                ],  # fmt: skip
                "recordings": [
                    {"name": "soma", "features": [{"name": "Spikecount", "mean": 1, "std": 1}]}
                ],  # fmt: skip
            },
        ],
    }


def _build_and_run(data: dict) -> dict:
    """In a fresh process: the small cell built, run and measured."""
    from neuron import h

    from neuroptimus.optimization.simulators.emodel import EModelSimulator

    spec = parse_problem(data)
    simulator = EModelSimulator(spec)
    simulator.setup()
    traces = simulator.run({"gnabar_hh.somatic": 0.12, "g_pas.basal": 2e-4})
    cell = simulator._cell
    h.distance(0, 0.5, sec=cell.soma[0])
    dend = simulator._locations[("Step", "dend")]
    return {
        "lists": {
            name: [s.name().split(".")[-1] for s in getattr(cell, name)]
            for name in ("somatic", "axonal", "basal", "apical", "all")
        },  # fmt: skip
        "axon": [(s.L, s.nseg, s.diam) for s in cell.axon],
        "apical_nseg": cell.apic[0].nseg,
        "g_pas": [(h.distance(1, seg.x, sec=seg.sec), seg.g_pas) for seg in cell.apic[0]],
        "basal_g_pas": [seg.g_pas for seg in cell.dend[0]],
        "dend_distance": h.distance(1, dend.x, sec=dend.sec),
        "dend_section": dend.sec.name().split(".")[-1],
        "celsius": h.celsius,
        "traces": [(t.time_ms, t.values) for t in traces],
    }


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> dict:
    data = _small_problem(tmp_path_factory.mktemp("small"))
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_build_and_run, data).result(timeout=600)


def test_a_morphology_gets_section_lists_nseg_and_a_replaced_axon(small_run):
    lists = small_run["lists"]
    assert lists["somatic"] == ["soma[0]"]
    assert lists["basal"] == ["dend[0]"] and lists["apical"] == ["apic[0]"]
    assert lists["axonal"] == ["axon[0]", "axon[1]"]  # three axon sections replaced by two
    assert sorted(lists["all"]) == ["apic[0]", "axon[0]", "axon[1]", "dend[0]", "soma[0]"]
    assert small_run["apical_nseg"] == 1 + 2 * int(200 / 40)
    # stubs of 30 µm: the first axon section's diameter, then that of the first axonal
    # section whose middle lies beyond 60 µm (the 100 µm branch, Import3d's mean 0.62 µm)
    (l0, n0, d0), (l1, n1, d1) = small_run["axon"]
    assert (l0, n0, l1, n1) == (30, 1, 30, 1)
    assert d0 == pytest.approx(1.0) and d1 == pytest.approx(0.62)


def test_values_follow_their_distribution_and_parameters_their_list(small_run):
    for distance, g in small_run["g_pas"]:
        assert g == pytest.approx(1e-4 * (1 + distance / 100), rel=1e-12)
    assert len({round(d) for d, _ in small_run["g_pas"]}) == 11  # one value per segment
    assert small_run["basal_g_pas"] == [2e-4] * 3
    assert small_run["celsius"] == 6.3


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # eFEL 5 renames Spikecount
def test_a_recording_at_a_soma_distance_and_the_scores(small_run):
    assert small_run["dend_section"] == "apic[0]"
    # the segment holding the point 150 µm away (its middle is what NEURON records)
    assert abs(small_run["dend_distance"] - 150) <= 200 / 11 / 2
    (t, v), (t_dend, v_dend), (t_fixed, _) = small_run["traces"]
    assert np.array_equal(t_dend, t)
    assert np.allclose(t_fixed, np.arange(801) * 0.05)  # fixed steps: every dt_ms to 40 ms
    assert np.all(np.diff(t) > 0) and t[-1] == pytest.approx(150)
    assert len(np.unique(np.round(np.diff(t), 9))) > 10  # CVODE's own steps
    trace = {"T": t, "V": v, "stim_start": [20.0], "stim_end": [120.0]}
    efel.reset()
    efel.set_setting("Threshold", -20.0)
    count = efel.get_feature_values([trace], ["Spikecount"])[0]["Spikecount"][0]
    assert count > 1
    recorded = TimedTrace(v, 0.1, times=t)
    spikes = score(recorded, (20.0, 120.0), ScoredFeature("Spikecount", 5, 2, -20))
    assert spikes == pytest.approx(abs(count - 5) / 2)
    flat = TimedTrace(np.full(1501, -65.0), 0.1, times=np.linspace(0, 150, 1501))
    assert score(flat, (20.0, 120.0), ScoredFeature("AP_width", 1, 1, -20)) == 250


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # eFEL 5 renames Spikecount
def test_one_efel_call_per_threshold_scores_as_one_call_per_feature(small_run):
    """The objective's grouped eFEL calls give each feature's own call's score bit for bit,
    over two thresholds, missing features and a repeated one."""
    (t, v), (t_dend, v_dend), _ = small_run["traces"]
    features = tuple(
        ScoredFeature(name, mean, std, threshold)
        for threshold in (-20.0, 0.0)
        for name, mean, std in [
            ("Spikecount", 5, 2), ("AP_amplitude", 80, 5), ("mean_frequency", 20, 4),
            ("AP_width", 1, 0.2), ("ISI_CV", 0.1, 0.05), ("time_to_first_spike", 10, 3),
            ("AHP_depth_abs", -60, 4), ("voltage_base", -70, 2), ("AP_amplitude", 90, 5),
            ("burst_number", 1, 1), ("decay_time_constant_after_stim", 10, 2),
        ]
    )  # fmt: skip
    for trace in (TimedTrace(v, 0.1, times=t), TimedTrace(v_dend, 0.1, times=t_dend)):
        one_by_one = [score(trace, (20.0, 120.0), feature) for feature in features]
        assert scores(trace, (20.0, 120.0), features) == one_by_one
        assert 250 in one_by_one and len(set(one_by_one)) > 10  # missing ones, and real ones


def test_a_morphology_neuron_cannot_read_is_named():
    from neuroptimus.optimization.simulators.base import ModelError
    from neuroptimus.optimization.simulators.morphology import import_morphology

    with pytest.raises(ModelError, match=r"cell.h5: NEURON's Import3d reads .asc, .swc files"):
        import_morphology(None, None, Path("cell.h5"))


def test_an_emodel_problem_is_checked_field_by_field(tmp_path):
    data = _small_problem(tmp_path)
    assert parse_problem(data).protocols[0].window_ms == (20, 120)
    broken = [
        (("protocols",), None, "protocols: an emodel model needs its protocols"),
        (("model", "distributions"), {"linear": "value*__import__('os')"},
         "unknown name '__import__'"),
        (("model", "distributions"), {"linear": "value*distance.real"}, "of math only"),
        (("parameters", 0, "distribution"), "steep", "distribution 'steep' is not in"),
        (("parameters", 0, "sections"), "dendritic", "sections 'dendritic' is none of"),
        (("protocol",), {"tstop_ms": 100}, "protocol: an emodel problem's sweeps and scores"),
        (("model", "insert"), {"apic": ["hh"]}, "section list 'apic' is none of"),
    ]  # fmt: skip
    for path, value, message in broken:
        changed = json.loads(json.dumps(data))
        place = changed
        for key in path[:-1]:
            place = place[key]
        if value is None:
            del place[path[-1]]
        else:
            place[path[-1]] = value
        with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_problem(changed)
    hh = yaml.safe_load(problem_path("hh").read_text())
    hh["parameters"][0]["distribution"] = "linear"
    with pytest.raises(SpecError, match="for model.simulator: emodel"):
        parse_problem(hh, base_dir=str(problem_path("hh").parent))


def test_bluepyopt_files_come_from_bluepyopt_at_the_pinned_commit(tmp_path, monkeypatch):
    name = "bluepyopt/examples/l5pc/config/features.json"
    assert file_url(name) == (
        "https://raw.githubusercontent.com/BlueBrain/BluePyOpt/"
        "146bb019a866007d76eafcaca89d8b45e20be0f6/examples/l5pc/config/features.json"
    )
    monkeypatch.setenv("NEUROPTIMUS_DATA_URL", "https://example.org/data/")
    assert file_url(name) == "https://example.org/data/" + name
    # a mirror folder named after the source holds its files at their repository paths
    mirror = tmp_path / "bluepyopt" / "examples" / "l5pc" / "config"
    mirror.mkdir(parents=True)
    shutil.copy(fetch("data://" + name), mirror / "features.json")
    monkeypatch.setenv(
        "NEUROPTIMUS_DATA_MIRROR",
        os.pathsep.join([str(tmp_path / "none"), str(tmp_path / "bluepyopt")]),
    )
    assert fetch("data://" + name) == mirror / "features.json"


def test_traces_of_several_lengths_are_stored_on_one_grid():
    """A run store keeps an evaluation's traces as one table: CVODE traces of protocols of
    different durations are interpolated onto eFEL's 0.1 ms grid, NaN past their end."""
    from neuroptimus.optimization.simulators.base import Trace
    from neuroptimus.optimization.simulators.trace_grid import on_one_grid

    short = TimedTrace(np.array([0.0, 1.0, 3.0]), 0.5, times=np.array([0.0, 0.5, 1.5]))
    long = TimedTrace(np.array([2.0, 4.0]), 3.0, times=np.array([0.0, 3.0]))
    time, table = on_one_grid([short, long])
    assert time[-1] == pytest.approx(3.0) and len(time) == 31
    assert table[5, 0] == pytest.approx(1.0) and table[10, 0] == pytest.approx(2.0)
    assert np.isnan(table[16:, 0]).all() and table[15, 1] == pytest.approx(3.0)
    same = [Trace(np.arange(4.0), 0.5), Trace(np.arange(4.0) * 2, 0.5)]
    time, table = on_one_grid(same)
    assert list(time) == [0, 0.5, 1, 1.5] and table[:, 1].tolist() == [0, 2, 4, 6]


def test_the_catalog_knows_an_emodel_problem_by_its_content():
    """Components named as the objective names them; a changed feature statistic is another
    problem, another folder for the same files is not."""
    from neuroptimus.optimization.problem.identity import use_case_identity

    spec = load_problem(problem_path("l5pc")).model_dump(mode="json")
    identity = use_case_identity(spec)
    assert identity.components == list(json.loads(REFERENCE.read_text())["objectives"])
    assert identity.simulator == "emodel"
    moved = {**spec, "base_dir": "/elsewhere"}
    assert use_case_identity(moved).fingerprint == identity.fingerprint
    changed = json.loads(json.dumps(spec))
    changed["protocols"][1]["recordings"][0]["features"][0]["mean"] += 1
    assert use_case_identity(changed).fingerprint != identity.fingerprint
