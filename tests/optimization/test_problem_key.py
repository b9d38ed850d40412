"""The model key covers everything the NEURON simulator bakes into a built model, so a worker
never reuses a model built for another protocol or sampling rate; the problem identity tells
apart problems that share a model but are scored differently."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest

from neuroptimus.optimization.evaluation.individual import simulate_traces
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length, model_key
from neuroptimus.optimization.problem.model_spec import UserFunctionSpec
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.simulators import ModelError
from neuroptimus.usecases import problem_path


def _spec():
    return load_problem(problem_path("hh"))


def _with(spec, section: str | None, **changes):
    """``spec`` with fields changed, in ``section`` (protocol, target, …) or at the top."""
    if section is None:
        return spec.model_copy(update=changes)
    part = getattr(spec, section)
    return spec.model_copy(update={section: part.model_copy(update=changes)})


def _protocol_with(spec, part: str, **changes):
    protocol = spec.protocol
    inner = getattr(protocol, part).model_copy(update=changes)
    return spec.model_copy(update={"protocol": protocol.model_copy(update={part: inner})})


def _key(spec) -> str:
    return model_key(spec.model_dump(mode="json"))


def _baked_variants(spec):
    parameters = [p.model_copy(update={"hoc": "soma.gl_hh(0.5)"}) if p.name == "gl_hh" else p
                  for p in spec.parameters]  # fmt: skip
    on_segment = [
        p.model_copy(update={"hoc": None, "section": "soma", "segment": 0, "property": p.name})
        if p.name == "gl_hh" else p
        for p in spec.parameters
    ]  # fmt: skip
    return {
        "sampling rate": _with(spec, "target", sampling_rate_hz=20000.0),
        "dt": _with(spec, "protocol", dt_ms=0.0125),
        "duration": _with(spec, "protocol", tstop_ms=spec.protocol.tstop_ms / 2),
        "initial voltage": _with(spec, "protocol", v_init_mV=-70.0),
        "stimulus amplitude": _protocol_with(spec, "stimulus", amplitudes=[0.2]),
        "stimulus delay": _protocol_with(spec, "stimulus", delay_ms=50.0),
        "stimulus place": _protocol_with(spec, "stimulus", position=0.25),
        "recorded variable": _protocol_with(spec, "recording", variable="ina"),
        "recorded place": _protocol_with(spec, "recording", position=0.25),
        "model file": _with(spec, "model", hoc="other.hoc"),
        "mechanisms": _with(spec, "model", mechanisms="mod"),
        "parameter target": spec.model_copy(update={"parameters": parameters}),
        "parameter form": spec.model_copy(update={"parameters": on_segment}),
        "compared on the simulation grid": _with(spec, "target", compare_on="simulation_grid"),
        "user function": _with(
            spec, "model", user_function=UserFunctionSpec(file="f.py", function="f")
        ),
        "file folder": _with(spec, None, base_dir="/elsewhere"),
    }


def test_everything_the_simulator_bakes_in_changes_the_model_key():
    spec = _spec()
    variants = _baked_variants(spec)
    keys = {name: _key(variant) for name, variant in variants.items()}
    for name, key in keys.items():
        assert key != _key(spec), f"{name} is baked into the model but not in its key"
    assert len(set(keys.values())) == len(keys)


def test_what_the_simulator_does_not_bake_in_shares_the_model():
    spec = _spec()
    costs = spec.costs.model_copy(update={"functions": spec.costs.functions[:1]})
    bounds = [p.model_copy(update={"upper": p.upper * 2}) for p in spec.parameters]
    same_model = [
        _with(spec, "evaluation", timeout_s=5.0, penalty=7.0),
        _with(spec, "algorithm", name="random", population=3),
        _with(spec, None, seed=99, name="other", costs=costs, parameters=bounds),
    ]
    for variant in same_model:
        assert _key(variant) == _key(spec)
    problem, scored_otherwise = (
        build_problem(s, [np.zeros(expected_length(s))]) for s in (spec, same_model[2])
    )
    assert problem.key == scored_otherwise.key
    assert problem.identity != scored_otherwise.identity


def _simulate_both(first, second):
    """One process: simulate ``first`` (which builds its model), then ``second``."""
    sample = np.array([0.12, 0.036, 0.0003])
    first_traces = simulate_traces(first, sample)
    try:
        return first_traces, simulate_traces(second, sample)
    except ModelError as error:
        return first_traces, error


@pytest.mark.parametrize("change", ["sampling rate", "dt"])
def test_a_worker_never_reuses_a_model_built_for_another_rate(change):
    """Real NEURON in one process: the second problem differs only in what the built model
    samples at; it is refused, not answered with traces at the first one's rate."""
    spec = _spec()
    variant = _baked_variants(spec)[change]
    first, second = (build_problem(s, [np.zeros(expected_length(s))]) for s in (spec, variant))
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        traces, outcome = pool.submit(_simulate_both, first, second).result()
    assert len(traces[0].values) == expected_length(spec)
    assert isinstance(outcome, ModelError), "a model built for another rate was reused"
    assert "already hosts another NEURON model" in str(outcome)
