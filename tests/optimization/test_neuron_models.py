"""Models as people write them, with real NEURON (each model in a fresh process): the entry
file loaded from its folder, the parameter forms, a user function called with the accessed
section left as the model left it, waveforms, the model's parameters put back before every
evaluation, and one-line setup errors for whatever does not exist."""

from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest

from neuroptimus.optimization.evaluation.problem import TargetError
from neuroptimus.optimization.loop.preflight import prepare_isolated
from neuroptimus.optimization.problem.problem_file import parse_problem
from neuroptimus.optimization.simulators import ModelError, create_simulator

# A soma with HH and a passive 5-segment dendrite; the entry file loads a sibling by a path
# relative to its folder, and leaves the dendrite accessed.
MODEL = """\
load_file("geometry.hoc")
soma { insert hh }
dend { insert pas  g_pas = 1e-4  e_pas = -65 }
objref somatic
somatic = new SectionList()
soma somatic.append()
access dend
"""
GEOMETRY = """\
create soma, dend
soma { L = 20  diam = 20  nseg = 1 }
dend { L = 300  diam = 2  nseg = 5 }
connect dend(0), soma(1)
"""
# Sets gnabar only for some values (a leak between evaluations unless the model is reset).
USER_FUNCTION = """\
accessed = []

def apply(h, v):
    accessed.append(h.cas().name())
    if v[0] > 0.2:
        h.soma.gnabar_hh = v[0]
    for seg in h.dend:
        seg.g_pas = v[1]
"""


def _problem(folder, parameters, stimulus=None, model=None, target=None):
    (folder / "model.hoc").write_text(MODEL)
    (folder / "geometry.hoc").write_text(GEOMETRY)
    data = {
        "name": "forms",
        "model": {"hoc": "model.hoc", **(model or {})},
        "parameters": parameters,
        "protocol": {
            "tstop_ms": 60,
            "dt_ms": 0.025,
            "v_init_mV": -65,
            "stimulus": stimulus
            or {"type": "IClamp", "amplitudes": [0.5], "delay_ms": 10, "duration_ms": 30},
        },
        "target": target or {"regenerate": True, "sampling_rate_hz": 40000},
        "costs": {"functions": [{"name": "MSE"}]},
    }
    return parse_problem(data, base_dir=str(folder))


def _forms(folder):
    """One parameter in each form, true values set for the regenerated target."""
    return _problem(
        folder,
        [
            {
                "name": "gna",
                "hoc": "soma.gnabar_hh",
                "lower": 0.01,
                "upper": 0.5,
                "true_value": 0.12,
            },
            {
                "name": "gk",
                "section": "soma",
                "segment": 0,
                "property": "gkbar_hh",
                "lower": 0.01,
                "upper": 0.1,
                "true_value": 0.036,
            },
            {
                "name": "ra",
                "sections": "all",
                "property": "Ra",
                "lower": 30,
                "upper": 300,
                "true_value": 100,
            },
            {
                "name": "gl",
                "sections": "somatic",
                "property": "gl_hh",
                "lower": 1e-5,
                "upper": 1e-3,
                "true_value": 3e-4,
            },
        ],  # fmt: skip
    )


def _in_process(function, *args):
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _run_all(spec, vectors):
    """Traces of each vector, one after the other in this process, and what the model sees."""
    names = [p.name for p in spec.parameters]
    simulator = create_simulator(spec)
    cwd = os.getcwd()
    simulator.setup()
    assert os.getcwd() == cwd, "loading the model left the working directory changed"
    traces = [simulator.run(dict(zip(names, v, strict=True)))[0].values for v in vectors]
    h = simulator._h
    seen = {
        "gk": h.soma(0.5).gkbar_hh,
        "Ra": sorted({s.Ra for s in h.allsec()}),
        "gl": h.soma(0.5).gl_hh,
        "gna": h.soma(0.5).gnabar_hh,
        "g_pas": [seg.g_pas for seg in h.dend],
    }
    function = simulator._user_function
    seen["accessed"] = function.__globals__["accessed"] if function else None
    return traces, seen


def test_each_parameter_form_reaches_the_model(tmp_path):
    spec = _forms(tmp_path)
    _, seen = _in_process(_run_all, spec, [[0.2, 0.05, 150.0, 2e-4]])
    assert seen["gna"] == 0.2 and seen["gk"] == 0.05 and seen["gl"] == 2e-4
    assert seen["Ra"] == [150.0]  # on every section


def test_a_user_function_runs_with_the_models_accessed_section_and_leaks_nothing(tmp_path):
    (tmp_path / "fun.py").write_text(USER_FUNCTION)
    spec = _problem(
        tmp_path,
        [
            {"name": "gna", "lower": 0.01, "upper": 0.5, "true_value": 0.3},
            {"name": "g_pas", "lower": 1e-5, "upper": 1e-3, "true_value": 1e-4},
        ],  # fmt: skip
        model={"user_function": {"file": "fun.py", "function": "apply"}},
    )
    high, low = [0.4, 2e-4], [0.1, 3e-4]
    traces, seen = _in_process(_run_all, spec, [high, low])
    alone, seen_alone = _in_process(_run_all, spec, [low])
    # the second evaluation keeps the model's gnabar (0.12), not the first one's 0.4
    assert np.array_equal(traces[1], alone[0])
    assert not np.array_equal(traces[0], traces[1])
    assert seen["gna"] == seen_alone["gna"] == 0.12
    assert seen["g_pas"] == [3e-4] * 5
    # the setup check and both evaluations ran with the model's own accessed section
    assert seen["accessed"] == ["dend", "dend", "dend"]


def test_a_waveform_plays_like_the_same_step(tmp_path):
    step = _forms(tmp_path)
    samples = np.zeros(2400)
    samples[400:1600] = 0.5  # 10–40 ms, one value per 0.025 ms step
    np.savetxt(tmp_path / "stim.dat", samples)
    played = _problem(
        tmp_path, [p.model_dump(exclude_none=True) for p in step.parameters],
        stimulus={"type": "IClamp", "waveforms": ["stim.dat"]},
    )  # fmt: skip
    values = [[0.12, 0.036, 100.0, 3e-4]]
    (stepped,), _ = _in_process(_run_all, step, values)
    (waveform,), _ = _in_process(_run_all, played, values)
    assert stepped.max() > 0  # it spikes
    # the same spikes; the two differ by at most the one step where the amplitude switches
    assert np.sum(np.abs(stepped - waveform) > 1.0) < 0.01 * len(stepped)
    assert abs(np.argmax(stepped) - np.argmax(waveform)) <= 2


def _setup_error(spec) -> str:
    with pytest.raises((ModelError, TargetError)) as caught:
        prepare_isolated(spec)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"section": "axon"}, r"parameter gk: section 'axon' does not exist"),
        ({"segment": 3}, r"parameter gk: section soma has 1 segment\(s\), so segment 3 does not"),
        ({"property": "gbar_kd"}, r"parameter gk: soma segment 0 has no range variable 'gbar_kd'"),
    ],
)
def test_a_missing_section_segment_or_variable_is_one_line_at_setup(tmp_path, change, message):
    spec = _forms(tmp_path)
    parameters = [p.model_dump(exclude_none=True) for p in spec.parameters]
    parameters[1].update(change)
    broken = _problem(tmp_path, parameters)
    assert re.search(message, _setup_error(broken))


def test_a_missing_range_variable_on_a_section_list_is_one_line(tmp_path):
    spec = _forms(tmp_path)
    parameters = [p.model_dump(exclude_none=True) for p in spec.parameters]
    parameters[3].update({"sections": "all"})  # gl_hh: the dendrite has no hh
    message = _setup_error(_problem(tmp_path, parameters))
    assert "parameter gl: section dend has no property or range variable 'gl_hh'" in message


@pytest.mark.parametrize(
    ("source", "function", "message"),
    [
        ("def other(h, v):\n    pass\n", "apply", "the file defines no function 'apply'"),
        ("def apply(h, v):\n    h.soma.nothing = v[0]\n", "apply", "apply in .*fun.py raised"),
        ("def apply(h, v:\n", "apply", "cannot run the file \\(SyntaxError"),
    ],
)
def test_a_user_function_that_is_missing_or_raises_is_one_line(tmp_path, source, function,
                                                                message):  # fmt: skip
    (tmp_path / "fun.py").write_text(source)
    spec = _problem(
        tmp_path, [{"name": "gna", "lower": 0.01, "upper": 0.5, "true_value": 0.3}],
        model={"user_function": {"file": "fun.py", "function": function}},
    )  # fmt: skip
    text = _setup_error(spec)
    assert text.startswith("model.user_function: ") and str(tmp_path / "fun.py") in text
    assert re.search(message, text)


def test_a_waveform_of_the_wrong_length_is_one_line_at_setup(tmp_path):
    np.savetxt(tmp_path / "stim.dat", np.zeros(1000))
    spec = _problem(
        tmp_path, [{"name": "gna", "hoc": "soma.gnabar_hh", "lower": 0.01, "upper": 0.5,
                    "true_value": 0.12}],
        stimulus={"type": "IClamp", "waveforms": ["stim.dat"]},
    )  # fmt: skip
    message = _setup_error(spec)
    assert f"waveform file {tmp_path / 'stim.dat'}: 1000 samples" in message
    assert "needs 2400 (or 2401)" in message


def test_a_python_entry_file_builds_the_same_model(tmp_path):
    """A .py entry file, run from its folder with ``h`` at hand (it loads a sibling hoc file
    by a relative path), gives the hoc entry file's traces."""
    spec = _forms(tmp_path)
    (tmp_path / "model.py").write_text(
        'h.load_file("geometry.hoc")\n'
        "h.soma.insert('hh')\n"
        "h.dend.insert('pas')\n"
        "for seg in h.dend:\n"
        "    seg.g_pas, seg.e_pas = 1e-4, -65\n"
        "h('objref somatic')\n"
        "h.somatic = h.SectionList()\n"
        "h.somatic.append(sec=h.soma)\n"
    )
    python = spec.model_copy(update={"model": spec.model.model_copy(update={"hoc": "model.py"})})
    values = [[0.2, 0.05, 150.0, 2e-4]]
    (from_hoc,), _ = _in_process(_run_all, spec, values)
    (from_python,), _ = _in_process(_run_all, python, values)
    assert np.array_equal(from_hoc, from_python)
