"""NEURON simulator: regenerated surrogate targets match the upstream files (read through the
data registry: the mirror, or a verified download); user hoc files load by registry name;
failures are statuses."""

from __future__ import annotations

import re

import numpy as np
import pytest

from neuroptimus.optimization.evaluation.individual import FAILED, OK, TIMEOUT, evaluate_batch
from neuroptimus.optimization.evaluation.problem import (
    build_problem,
    load_targets,
    read_target_file,
    simulate_isolated,
)
from neuroptimus.optimization.problem.data import fetch
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.usecases import problem_path

UPSTREAM_TARGETS = {
    "hh": "data://testcase_1_hh_pas_surrogate/input_data2.dat",
    "vclamp": "data://testcase_2_VClamp_surrogate/iclamp_new_evendt.dat",
}


def _with_target_file(spec, uri):
    target = spec.target.model_copy(update={"regenerate": False, "file": uri})
    return spec.model_copy(update={"target": target})


@pytest.mark.parametrize("name", ["hh", "vclamp"])
def test_regenerated_target_equals_upstream_file(name):
    spec = load_problem(problem_path(name))
    regenerated = load_targets(spec)[0]
    upstream_spec = _with_target_file(spec, UPSTREAM_TARGETS[name])
    recorded = read_target_file(upstream_spec)[0]
    assert len(regenerated) == len(recorded)
    assert np.max(np.abs(regenerated - recorded)) < 1e-4
    # the upstream file's own time column agrees with the regenerated sampling
    table = np.loadtxt(fetch(UPSTREAM_TARGETS[name]))
    step = 1000 / spec.target.sampling_rate_hz
    offset = step / 2 if spec.protocol.recording.variable == "clamp_current" else 0.0
    assert np.allclose(table[:, 0], offset + step * np.arange(len(table)), atol=1e-9)


def test_user_hoc_file_from_the_registry_gives_the_same_trace():
    """The upstream hoc (diam only; NEURON's default length) is loaded as any user model."""
    spec = load_problem(problem_path("hh"))
    model = spec.model.model_copy(update={"hoc": "data://testcase_1_hh_pas_surrogate/hh_pas.hoc"})
    theirs = simulate_isolated(spec.model_copy(update={"model": model}), {"gnabar_hh": 0.12,
                               "gkbar_hh": 0.036, "gl_hh": 0.0003})  # fmt: skip
    ours = simulate_isolated(spec, {"gnabar_hh": 0.12, "gkbar_hh": 0.036, "gl_hh": 0.0003})
    assert np.array_equal(theirs[0].values, ours[0].values)


def _evaluate_in_fresh_process(spec, points):
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    problem = build_problem(spec)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return problem, pool.submit(evaluate_batch, problem, points).result()


def test_bad_individuals_become_statuses_with_the_penalty():
    spec = load_problem(problem_path("hh"))
    # a negative diameter makes NEURON raise inside the run: one crashing individual
    extra = {"name": "diam", "hoc": "soma.diam", "lower": -5.0, "upper": 20.0, "true_value": 10.0}
    parameters = [*[p.model_dump() for p in spec.parameters], extra]
    crashing = spec.model_validate({**spec.model_dump(), "parameters": parameters})
    points = np.array([[0.12, 0.036, 0.0003, 10.0], [0.12, 0.036, 0.0003, -5.0]])
    problem, result = _evaluate_in_fresh_process(crashing, points)
    assert result.status.tolist() == [OK, FAILED]
    assert result.total[0] < 1e-12
    assert result.total[1] == spec.evaluation.penalty
    assert np.all(result.errors[1] == spec.evaluation.penalty)
    # the exception of the crashing individual, named with its type, not an empty message
    assert result.message[0] == ""
    assert re.fullmatch(r"RuntimeError: .*soma diameter diam = 0\b.*", result.message[1])


def test_timeout_is_a_status():
    spec = load_problem(problem_path("hh"))
    quick = spec.model_copy(
        update={"evaluation": spec.evaluation.model_copy(update={"timeout_s": 1e-4})}
    )
    _, result = _evaluate_in_fresh_process(quick, np.array([[0.12, 0.036, 0.0003]]))
    assert result.status.tolist() == [TIMEOUT]
    assert "time limit" in result.message[0]
    assert result.total[0] == spec.evaluation.penalty
