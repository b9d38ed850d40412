"""metadata.json records the settings an algorithm ran with, defaults included."""

from __future__ import annotations

import json

import numpy as np

from neuroptimus.optimization.algorithms import get_algorithm
from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.evaluation.problem import build_problem, expected_length
from neuroptimus.optimization.loop.runner import OptimizationRun, run_to_end
from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
from neuroptimus.storage.runs.create import create_run_store
from neuroptimus.storage.runs.metadata import write_metadata
from neuroptimus.usecases import problem_path


def _evaluate(values: np.ndarray) -> BatchResult:
    errors = np.abs(values - np.array([0.12, 0.036, 0.0003]))[:, [0, 1, 2, 0]]
    n = len(values)
    return BatchResult(errors, errors.mean(axis=1), np.zeros(n, np.int8), [""] * n,
                       np.zeros(n), ["here"] * n)  # fmt: skip


def test_metadata_records_the_effective_settings(tmp_path):
    spec = with_overrides(load_problem(problem_path("hh")), algorithm="pygmo-de", population=5,
                          generations=4, seed=2)  # fmt: skip
    given = {"islands": 3, "F": 0.5}
    spec = spec.model_copy(
        update={"algorithm": spec.algorithm.model_copy(update={"settings": given})}
    )
    problem = build_problem(spec, [np.zeros(expected_length(spec))])
    store = create_run_store(problem, tmp_path / "run.zarr")
    run_to_end(OptimizationRun(problem, store), _evaluate)
    metadata = json.loads(write_metadata(store, tmp_path / "metadata.json").read_text())
    algorithm = metadata["algorithm"]
    defaults = get_algorithm("pygmo-de").info.defaults
    assert algorithm["settings"] == {**defaults, "islands": 3, "F": 0.5}
    assert algorithm["settings"]["migration_interval"] == defaults["migration_interval"] == 10
    assert algorithm["settings_given"] == given
