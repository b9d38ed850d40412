"""`neuroptimus benchmark budget` runs serial and restarting algorithms to their budget and
writes what each used (the test function here; UC1's figures are in docs/benchmarks)."""

from __future__ import annotations

import csv as csv_module
import subprocess
import sys
from pathlib import Path

import numpy as np

from neuroptimus.flows.benchmarks.budget import SHIFT, budget_algorithms, rastrigin

ROOT = Path(__file__).resolve().parents[2]


def _budget(csv: Path, *options: str) -> tuple[str, dict[str, dict[str, str]]]:
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "benchmark", "budget",
         "--problems", "rastrigin",
         "--algorithms", "scipy-lbfgsb,pygmo-praxis,pygmo-abc", "--dimension", "3",
         "--evaluations", "400", "--output", str(csv), *options],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, {row["algorithm"]: row for row in csv_module.DictReader(csv.open())}


def test_serial_and_restarting_algorithms_use_their_budget(tmp_path):
    out, rows = _budget(tmp_path / "budget.csv")
    assert "3 of 3 runs" in out
    for row in rows.values():
        assert row["problem"] == "rastrigin-3d" and row["evaluations"] == "400"
        assert row["uses_budget"] == "True" and row["stop_reason"].startswith("evaluation budget")
    assert rows["pygmo-praxis"]["islands"] == "8" and rows["scipy-lbfgsb"]["islands"] == ""


def test_without_restarts_a_local_method_ends_with_budget_left(tmp_path):
    out, rows = _budget(tmp_path / "before.csv", "--restarts", "0")
    assert rows["scipy-lbfgsb"]["restarts"] == "0" and rows["pygmo-abc"]["restarts"] == ""
    assert int(rows["scipy-lbfgsb"]["evaluations"]) < 400
    assert rows["scipy-lbfgsb"]["uses_budget"] == "False"
    assert "not: rastrigin-3d scipy-lbfgsb" in out


def test_the_benchmark_covers_every_serial_and_restarting_algorithm():
    names = budget_algorithms()
    assert {"scipy-nelder-mead", "scipy-lbfgsb", "pygmo-de", "inspyred-sa"} <= set(names)
    assert "cmaes" not in names and "pygmo-cmaes" not in names


def test_the_test_function_has_its_minimum_off_the_cube_centre():
    optimum = np.full((1, 10), (5.12 + SHIFT) / 10.24)
    assert rastrigin(optimum)[0] < 1e-12 and rastrigin(np.full((1, 10), 0.5))[0] > 5
