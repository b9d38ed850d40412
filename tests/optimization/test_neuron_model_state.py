"""What a user function changes is put back before the next evaluation — segmentation by the
d_lambda rule, inserted and uninserted mechanisms, a mechanism's GLOBAL — so vectors in any
order give the traces each gives in a fresh process; and a vector that cannot be applied is
that individual's failure, while one that fails at the setup check's values is a setup
error."""

from __future__ import annotations

import math
import re
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest
from mechanism_models import leak_problem

from neuroptimus.optimization.evaluation.individual import FAILED, OK, ProcessRuined, evaluate_batch
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.loop.preflight import prepare_isolated
from neuroptimus.optimization.problem.problem_file import load_problem, parse_problem
from neuroptimus.optimization.simulators import ModelError, create_simulator

CELL = """\
create soma, dend
soma { L = 20  diam = 20  insert hh }
dend { L = 1500  diam = 1  nseg = 1  insert pas  g_pas = 1e-4  e_pas = -65 }
connect dend(0), soma(1)
"""

# Ra and cm on every section, then nseg by the d_lambda rule (0.1 of the length constant at
# 100 Hz); a high cm also swaps the dendrite's leak for hh.
D_LAMBDA = """\
import math

def apply(h, v):
    ra, cm = v
    for sec in h.allsec():
        sec.Ra, sec.cm = ra, cm
        lam = 1e5 * math.sqrt(sec.diam / (4 * math.pi * 100 * sec.Ra * sec.cm))
        sec.nseg = int((sec.L / (0.1 * lam) + 0.9) / 2) * 2 + 1
    if cm > 1.5:
        h.dend.uninsert("pas")
        h.dend.insert("hh")
"""


def _problem(folder, parameters, function=None, model=CELL, amplitude=0.3):
    (folder / "model.hoc").write_text(model)
    extra = {}
    if function:
        (folder / "fun.py").write_text(function)
        extra = {"user_function": {"file": "fun.py", "function": "apply"}}
    data = {
        "name": "state",
        "model": {"hoc": "model.hoc", **extra},
        "parameters": parameters,
        "protocol": {
            "tstop_ms": 40,
            "dt_ms": 0.025,
            "v_init_mV": -65,
            "stimulus": {
                "type": "IClamp",
                "amplitudes": [amplitude],
                "delay_ms": 5,
                "duration_ms": 20,
            },
        },  # fmt: skip
        "target": {"regenerate": True, "sampling_rate_hz": 40000},
        "costs": {"functions": [{"name": "MSE"}]},
    }
    return parse_problem(data, base_dir=str(folder))


def _traces(spec, vectors):
    simulator = create_simulator(spec)
    simulator.setup()
    names = [p.name for p in spec.parameters]
    traces = [simulator.run(dict(zip(names, v, strict=True)))[0].values for v in vectors]
    return traces, [s.nseg for s in simulator._h.allsec()]


def _in_fresh_process(function, *args):
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _assert_order_independent(spec, a, b):
    (a_then_b, _), (b_then_a, _) = (
        _in_fresh_process(_traces, spec, [a, b]),
        _in_fresh_process(_traces, spec, [b, a]),
    )
    # the second vector of one process was the first (fresh) of the other
    assert np.array_equal(a_then_b[1], b_then_a[0])
    assert np.array_equal(b_then_a[1], a_then_b[0])
    assert not np.array_equal(a_then_b[0], b_then_a[0])  # the vectors differ, so can fail


def test_d_lambda_and_mechanism_changes_are_put_back(tmp_path):
    spec = _problem(
        tmp_path,
        [{"name": "Ra", "lower": 30, "upper": 300, "true_value": 100},
         {"name": "cm", "lower": 0.5, "upper": 3, "true_value": 1}],
        D_LAMBDA,
    )  # fmt: skip
    a, b = [300.0, 0.8], [35.0, 2.5]  # b also swaps the dendrite's pas for hh
    _assert_order_independent(spec, a, b)
    # the user function did change the segmentation (built with one dendritic segment)
    assert _in_fresh_process(_traces, spec, [b, a])[1] == [1, 83]
    assert _in_fresh_process(_traces, spec, [a, b])[1] == [1, 51]


SHIFTED_LEAK = """\
NEURON {
    SUFFIX neuroptimus_test_shifted
    NONSPECIFIC_CURRENT i
    RANGE g
    GLOBAL vshift
}
UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    g = 0.0005 (S/cm2)
    vshift = 0 (mV)
}
ASSIGNED {
    v (mV)
    i (mA/cm2)
}
BREAKPOINT {
    i = g * (v + 65 - vshift)
}
"""

# Sets the GLOBAL only for some vectors: without a restore it would leak into the next.
SETS_GLOBAL = """\
def apply(h, v):
    if v[0] > 0.15:
        h.vshift_neuroptimus_test_shifted = 15
"""


def test_a_mechanism_global_set_by_a_user_function_is_put_back(tmp_path):
    path = leak_problem(tmp_path, {"shifted.mod": SHIFTED_LEAK})
    (tmp_path / "model.hoc").write_text(
        "create soma\nsoma { L = 20  diam = 20  insert hh  insert neuroptimus_test_shifted }\n"
    )
    (tmp_path / "fun.py").write_text(SETS_GLOBAL)
    spec = load_problem(path)
    parameters = [{"name": "gnabar", "hoc": "soma.gnabar_hh", "lower": 0.05, "upper": 0.2,
                   "true_value": 0.12}]  # fmt: skip
    model = {**spec.model.model_dump(), "user_function": {"file": "fun.py", "function": "apply"}}
    spec = spec.model_validate({**spec.model_dump(), "model": model, "parameters": parameters})
    _assert_order_independent(spec, [0.1], [0.18])


def _evaluate(spec, points):
    problem = build_problem(spec)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(evaluate_batch, problem, np.array(points)).result()


# Raises for one value, deletes the dendrite for another.
UNEVEN_FUNCTION = """\
def apply(h, v):
    if v[1] > 0.9:
        raise ValueError("no cell has that")
    if v[1] > 0.8:
        h.delete_section(sec=h.dend)
"""

NSEG = {"name": "nseg", "hoc": "dend.nseg", "lower": 0.1, "upper": 9, "true_value": 3}
SPARE = {"name": "spare", "lower": 0, "upper": 1, "true_value": 0.5}


def test_a_vector_that_cannot_be_applied_is_that_individuals_failure(tmp_path):
    spec = _problem(tmp_path, [NSEG, SPARE], UNEVEN_FUNCTION)
    good = [3, 0.5]
    result = _evaluate(spec, [good, [0.5, 0.5], good, [math.nan, 0.5], [3, 0.95], good,
                              [3, 0.85]])  # fmt: skip
    assert result.status.tolist() == [OK, FAILED, OK, FAILED, FAILED, OK, FAILED]
    assert result.total[0] == result.total[2] == result.total[5]  # nothing left behind
    assert result.total[1] == spec.evaluation.penalty
    message = result.message
    assert message[1] == ("parameter nseg: NEURON refused the hoc statement 'dend.nseg = 0.5' "
                          "(its message is in the model output)")  # fmt: skip
    assert message[3] == "parameter nseg is nan"
    assert re.fullmatch(r"model.user_function: apply in .*fun.py raised ValueError: "
                        r"no cell has that", message[4])  # fmt: skip
    assert message[6].endswith("deleted section dend, which NEURON cannot rebuild")


def _evaluate_twice(spec, first, then):
    """Two batches in one process: the second's error message, if it raises."""
    problem = build_problem(spec)
    evaluate_batch(problem, np.array(first))
    try:
        evaluate_batch(problem, np.array(then))
    except ModelError as error:
        return str(error)
    return None


def test_after_a_deleted_section_the_rest_needs_a_fresh_process(tmp_path):
    """In one process (no Dask worker to replace), the batch ends and says what is left;
    a Dask worker retires instead (tests/hpc/test_ruined_models.py)."""
    spec = _problem(tmp_path, [NSEG, SPARE], UNEVEN_FUNCTION)
    with pytest.raises(ProcessRuined) as caught:
        _evaluate(spec, [[3, 0.5], [3, 0.85], [3, 0.5], [3, 0.4]])
    assert re.fullmatch(
        r"model.user_function: apply in .*fun.py deleted section dend while evaluating "
        r"individual 2 of 4 \(it failed\), and NEURON cannot rebuild it in this process: "
        r"the 2 left need a fresh process",
        str(caught.value),
    )
    assert caught.value.result.status.tolist() == [OK, FAILED]  # what was evaluated
    # deleted by the last individual of a batch: the next batch cannot start
    message = _in_fresh_process(_evaluate_twice, spec, [[3, 0.85]], [[3, 0.5]])
    assert message.endswith("deleted section dend in an earlier evaluation, and NEURON "
                            "cannot rebuild it in this process: the evaluations left need a "
                            "fresh process")  # fmt: skip


@pytest.mark.parametrize(
    ("true_value", "function", "message"),
    [
        (
            0.5,
            "def apply(h, v):\n    pass\n",
            r"parameter nseg: NEURON refused the hoc statement 'dend.nseg = 0.5'",
        ),
        (3, UNEVEN_FUNCTION.replace("0.8", "0.4"), r"deleted section dend"),
        (3, UNEVEN_FUNCTION.replace("0.9", "0.4"), r"raised ValueError: no cell has that"),
    ],
)
def test_a_vector_failing_at_the_setup_check_is_a_setup_error(tmp_path, true_value, function,
                                                              message):  # fmt: skip
    spec = _problem(tmp_path, [{**NSEG, "true_value": true_value}, SPARE], function)
    with pytest.raises(ModelError) as caught:
        prepare_isolated(spec)
    text = str(caught.value)
    assert "\n" not in text and "at the setup check's values" in text
    assert re.search(message, text)


def test_a_model_whose_run_fails_is_a_setup_error(tmp_path):
    broken = CELL + "proc init() { finitialize(v_init)  nothing_here() }\n"
    spec = _problem(tmp_path, [NSEG], model=broken)
    with pytest.raises(ModelError, match=r"the model cannot run at the setup check's values "
                       r"\(.*\): h.run\(\) raised .*nothing_here undefined"):  # fmt: skip
        prepare_isolated(spec)
