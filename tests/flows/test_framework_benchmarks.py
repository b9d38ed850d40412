"""The framework benchmarks run end to end on a real LocalCluster and print their tables (their
figures are measurements, written down in the READMEs, not checked here)."""

from __future__ import annotations

import re

import pytest

from flows.benchmark import orchestration, overhead
from optimization.spec import load_problem
from usecases import problem_path

pytestmark = pytest.mark.slow


def test_orchestration_prints_a_row_per_chunking(capsys):
    orchestration(load_problem(problem_path("hh")), 30, 2, 1, [1, 0])
    out = capsys.readouterr().out
    assert "2 workers on" in out and "the model alone:" in out
    rows = {
        match[0]: int(match[1])
        for match in re.findall(r"^\s*(\w+)\s+(\d+)(?:\s+[\d.]+){4}$", out, re.MULTILINE)
    }
    assert rows == {"1": 2, "individual": 30, "default": rows["default"]}
    assert 1 <= rows["default"] <= 8  # up to 4 chunks per worker


def test_overhead_reports_the_efficiency_of_a_whole_run(prefect_harness, capsys):
    figures = overhead(load_problem(problem_path("hh")), population=4, generations=2,
                       workers=2, seed=3)  # fmt: skip
    assert figures["evaluations"] == 8
    assert 0 < figures["efficiency"] <= figures["efficiency_generations_only"] <= 1.0
    assert figures["bare_simulation_ms"] > 0
    assert "parallel efficiency" in capsys.readouterr().out
