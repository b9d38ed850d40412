"""Problems beyond the bundled single-sweep demos, with real NEURON simulations: several
stimulus amplitudes (one error component per sweep and cost function), log-scaled parameters
(the mapping and a real evaluation), and the library's errors for a bad target or model."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest

from neuroptimus.optimization.evaluation.individual import OK, evaluate_batch
from neuroptimus.optimization.evaluation.problem import (
    TargetError,
    build_problem,
    check_target_lengths,
    expected_length,
    read_target_file,
    simulate_isolated,
)
from neuroptimus.optimization.problem.model_spec import ParameterSpec
from neuroptimus.optimization.problem.parameters import ParameterSpace
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.scoring.costs import COST_FUNCTIONS
from neuroptimus.optimization.simulators import ModelError
from neuroptimus.usecases import problem_path

TRUE = {"gnabar_hh": 0.12, "gkbar_hh": 0.036, "gl_hh": 0.0003}
OTHER = {"gnabar_hh": 0.2, "gkbar_hh": 0.05, "gl_hh": 0.0001}
AMPLITUDES = [0.1, 0.3, 0.5]


def in_fresh_process(function, *args):
    """NEURON keeps one model per process: run ``function`` in a process of its own."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def hh(amplitudes=(0.3,), **changes):
    """Use case 1 shortened to 300 ms, with the given stimulus amplitudes (one sweep each)."""
    spec = load_problem(problem_path("hh"))
    stimulus = spec.protocol.stimulus.model_copy(
        update={"amplitudes": list(amplitudes), "delay_ms": 50.0, "duration_ms": 200.0}
    )
    protocol = spec.protocol.model_copy(update={"tstop_ms": 300.0, "stimulus": stimulus})
    return spec.model_copy(update={"protocol": protocol, **changes})


def with_target_file(spec, path, time_column=True):
    target = spec.target.model_copy(
        update={"regenerate": False, "file": str(path), "time_column": time_column}
    )
    return spec.model_copy(update={"target": target})


def write_table(path, columns, step_ms=0.025):
    time = step_ms * np.arange(len(columns[0]))
    np.savetxt(path, np.column_stack([time, *columns]))
    return path


# --- several sweeps ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweeps():
    """The traces of the three-sweep problem at OTHER, and of each amplitude on its own."""
    together = simulate_isolated(hh(AMPLITUDES), OTHER)
    alone = [simulate_isolated(hh([a]), OTHER)[0] for a in AMPLITUDES]
    return together, alone


def test_each_amplitude_is_one_sweep_simulated_as_if_alone(sweeps):
    together, alone = sweeps
    assert len(together) == 3
    for trace, single in zip(together, alone, strict=True):
        assert np.array_equal(trace.values, single.values)
    spikes = [int(np.sum((t.values[1:] > 0) & (t.values[:-1] <= 0))) for t in together]
    assert spikes[0] < spikes[2]  # a stronger step fires more: the amplitudes reached the model


def test_one_error_component_per_sweep_and_cost_function(sweeps):
    spec = hh(AMPLITUDES)
    problem = build_problem(spec)  # regenerates a target of three sweeps
    functions = [term.name for term in spec.costs.functions]
    assert problem.component_names == [
        f"{name} [sweep {k}]" for k in (1, 2, 3) for name in functions
    ]
    assert problem.objective.weights.tolist() == [0.25] * 12
    points = np.array([list(TRUE.values()), list(OTHER.values())])
    result = in_fresh_process(evaluate_batch, problem, points)
    assert result.status.tolist() == [OK, OK]
    assert result.errors.shape == (2, 12) and np.all(result.errors[0] == 0)
    together, _ = sweeps
    settings = problem.objective.settings
    expected = [
        COST_FUNCTIONS[name](trace.values, target, settings)
        for trace, target in zip(together, problem.objective.targets, strict=True)
        for name in functions
    ]
    assert result.errors[1].tolist() == expected
    assert result.total[1] == pytest.approx(0.25 * sum(expected), rel=1e-12)


def test_a_target_file_holds_one_column_per_sweep(tmp_path):
    spec = hh(AMPLITUDES)
    regenerated = build_problem(spec).objective.targets
    path = write_table(tmp_path / "three.dat", regenerated)
    read = read_target_file(with_target_file(spec, path))
    assert all(np.array_equal(a, b) for a, b in zip(read, regenerated, strict=True))
    plain = tmp_path / "no-time.dat"
    np.savetxt(plain, np.column_stack(regenerated))
    assert len(read_target_file(with_target_file(spec, plain, time_column=False))) == 3
    two = write_table(tmp_path / "two.dat", regenerated[:2])
    with pytest.raises(TargetError) as raised:
        read_target_file(with_target_file(spec, two))
    assert str(raised.value) == (
        f"target file {two}: 2 trace column(s) for 3 sweep(s) (time_column: True)"
    )


# --- log-scaled parameters -----------------------------------------------------------------


def test_log_parameters_are_uniform_in_log10_and_others_stay_linear():
    space = ParameterSpace.from_specs([
        ParameterSpec(name="g", lower=1e-5, upper=1e-1, log=True),
        ParameterSpec(name="x", lower=-1.0, upper=3.0),
    ])  # fmt: skip
    unit = np.array([[0.0, 0.0], [0.25, 0.25], [0.5, 0.5], [0.75, 0.75], [1.0, 1.0]])
    real = space.to_real(unit)
    assert np.allclose(real[:, 0], [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], rtol=1e-12, atol=0)
    assert real[:, 1].tolist() == [-1.0, 0.0, 1.0, 2.0, 3.0]
    assert np.allclose(space.to_unit(real), unit, rtol=0, atol=1e-12)
    # the bounds are hit exactly, and points outside the cube are clipped onto them
    assert space.to_real(np.array([[-0.5, 2.0]])).tolist() == [[1e-5, 3.0]]


def _log_spec():
    spec = hh()
    parameters = [
        p.model_copy(update={"log": True, "lower": 1e-5, "upper": 1e-2})
        if p.name == "gl_hh" else p
        for p in spec.parameters
    ]  # fmt: skip
    return spec.model_copy(update={"parameters": parameters})


def test_a_log_parameter_is_evaluated_at_its_real_value():
    logged, linear = _log_spec(), hh()
    problem = build_problem(logged)
    assert problem.space.log.tolist() == [False, False, True]
    true_unit = problem.space.to_unit(np.array([list(TRUE.values())]))[0]
    assert true_unit[2] == pytest.approx((np.log10(3e-4) + 5) / 3, abs=1e-12)
    unit = np.array([true_unit, [0.5, 0.5, 0.5], [0.5, 0.5, 0.0]])
    real = problem.space.to_real(unit)
    assert real[1, 2] == pytest.approx(10**-3.5, rel=1e-12)  # the geometric midpoint
    assert real[2, 2] == 1e-5
    logged_result = in_fresh_process(evaluate_batch, problem, real)
    assert logged_result.status.tolist() == [OK] * 3
    assert logged_result.total[0] < 1e-12  # the true conductances, through the log mapping
    # the mapping only chooses the values: the same real values score the same without it
    plain_result = in_fresh_process(evaluate_batch, build_problem(linear), real)
    assert np.array_equal(logged_result.errors, plain_result.errors)
    assert logged_result.total[1] > 1e-3  # gl = 3.2e-4 ≠ 3e-4 with other conductances off


# --- target and model errors -----------------------------------------------------------------


def test_target_file_errors_name_the_file_and_the_fix(tmp_path):
    spec = hh()
    missing = tmp_path / "missing.dat"
    with pytest.raises(TargetError, match=rf"^target file {missing}: not found$"):
        read_target_file(with_target_file(spec, missing))
    words = tmp_path / "words.dat"
    words.write_text("time voltage\n0 -65\n")
    with pytest.raises(TargetError, match=rf"^target file {words}: cannot read it as numbers"):
        read_target_file(with_target_file(spec, words))
    holes = write_table(tmp_path / "nan.dat", [np.array([-65.0, np.nan, -64.0])])
    with pytest.raises(TargetError, match="contains NaN or infinite values"):
        read_target_file(with_target_file(spec, holes))
    short = np.zeros(expected_length(spec) - 2)
    with pytest.raises(TargetError) as raised:
        check_target_lengths(spec, [short])
    assert str(raised.value) == (
        "target sweep 1 has 11999 samples but the protocol records 12001 (tstop_ms 300 at "
        "40000 Hz): fix tstop_ms or sampling_rate_hz"
    )
    check_target_lengths(spec, [np.zeros(expected_length(spec) - 1)])  # one sample: tolerated


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"parameter": "soma.gnabar_xx"},
            "parameter gnabar_hh: hoc target 'soma.gnabar_xx' does not exist in model.hoc",
        ),
        ({"section": "axon"}, "section 'axon' does not exist in the model"),
        ({"variable": "cai"}, "cannot record 'cai' at soma(0.5): no such range variable there"),
        # a hoc error: NEURON raises (it used to become a FAILED status of every individual)
        ({"hoc": "broken.hoc"}, "NEURON could not load the model file {tmp}/broken.hoc: "),
    ],
)
def test_model_errors_are_model_errors_with_the_reason(tmp_path, change, message):
    """Building the model fails with a ModelError saying what is wrong — when a target is
    regenerated and when a worker evaluates (never a bad individual's status)."""
    spec = hh()
    if "parameter" in change:
        parameters = [spec.parameters[0].model_copy(update={"hoc": change["parameter"]}),
                      *spec.parameters[1:]]  # fmt: skip
        spec = spec.model_copy(update={"parameters": parameters})
    if "section" in change:
        stimulus = spec.protocol.stimulus.model_copy(update={"section": change["section"]})
        protocol = spec.protocol.model_copy(update={"stimulus": stimulus})
        spec = spec.model_copy(update={"protocol": protocol})
    if "variable" in change:
        recording = spec.protocol.recording.model_copy(update={"variable": change["variable"]})
        protocol = spec.protocol.model_copy(update={"recording": recording})
        spec = spec.model_copy(update={"protocol": protocol})
    if "hoc" in change:
        (tmp_path / "broken.hoc").write_text("create soma\nsoma { insert nonexistent_mech }\n")
        model = spec.model.model_copy(update={"hoc": str(tmp_path / "broken.hoc")})
        spec = spec.model_copy(update={"model": model})
    expected = message.format(tmp=tmp_path)
    with pytest.raises(ModelError) as regenerating:
        simulate_isolated(spec, TRUE)
    assert str(regenerating.value).startswith(expected)
    problem = build_problem(spec, [np.zeros(expected_length(spec))])
    with pytest.raises(ModelError) as evaluating:
        in_fresh_process(evaluate_batch, problem, np.array([list(TRUE.values())]))
    assert str(evaluating.value) == str(regenerating.value)


def test_large_linear_bounds_beside_a_log_parameter_convert_without_overflow():
    """UC3's axial resistance (30 … 3000 Ω·cm) beside a log-scaled conductance: the power is
    taken only where the scale is log (10**3000 would overflow and warn on every point)."""
    space = ParameterSpace.from_specs([
        ParameterSpec(name="Ra", lower=30.0, upper=3000.0),
        ParameterSpec(name="g", lower=1e-5, upper=1e-2, log=True),
    ])  # fmt: skip
    with np.errstate(over="raise"):
        real = space.to_real(np.array([[1.0, 1.0], [0.0, 0.0]]))
    assert real.tolist() == [[3000.0, 1e-2], [30.0, 1e-5]]
