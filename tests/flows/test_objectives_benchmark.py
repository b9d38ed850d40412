"""`neuroptimus benchmark objectives`: the two cases it builds, the arithmetic of its medians
and ratios (fast), and one short pair of real runs end to end (slow)."""

from __future__ import annotations

import csv as csv_module
import subprocess
import sys

import pytest

from neuroptimus.flows.benchmarks.objectives import (
    TreeCpu,
    cases,
    medians,
    objectives_benchmark,
    ratios,
)
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.usecases import problem_path


def _row(case: str, marginal: float, wall: float, cpu: float, sweeps: int) -> dict:
    return {"case": case, "sweeps": sweeps, "marginal_ms_per_evaluation": marginal,
            "wall_ms_per_evaluation": wall, "cpu_ms_per_evaluation": cpu,
            "flow_cpu_ms_per_evaluation": cpu / 10, "mean_evaluation_ms": marginal,
            "command_seconds": wall}  # fmt: skip


def test_the_cases_differ_in_sweeps_and_algorithm_and_share_the_budget():
    specs = cases(load_problem(problem_path("hh")), population=30, generations=4)
    many, single = specs["many"], specs["single"]
    assert (many.protocol.sweeps, single.protocol.sweeps) == (3, 1)
    assert (many.algorithm.name, single.algorithm.name) == ("pygmo-nsga2", "cmaes")
    assert many.algorithm.population == single.algorithm.population == 30
    assert many.budget == single.budget == 120
    # nothing but the budget stops either run (the bundled problem stops at an error target)
    for spec in (many, single):
        assert spec.stopping.error_target is None and spec.stopping.stagnation_generations is None


def test_cpu_of_a_grandchild_is_counted():
    """Like a LocalCluster's worker: a process started by a child of this one."""
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}])"
    with TreeCpu(every_s=0.05) as cpu:
        subprocess.run([sys.executable, "-c", child], check=True)
    own, others = cpu.seconds()
    assert own == 0.0  # no process here runs neuroptimus.flows.cli
    assert others >= 0.45  # sampled at most 0.05 s before the grandchild ended


def test_ratios_are_of_the_medians_with_the_single_case_scaled_by_the_sweeps():
    rows = [
        _row("single", 10.0, 20.0, 30.0, 1), _row("many", 45.0, 50.0, 60.0, 3),
        _row("many", 40.0, 70.0, 99.0, 3), _row("single", 12.0, 10.0, 20.0, 1),
        _row("single", 200.0, 15.0, 25.0, 1), _row("many", 36.0, 60.0, 75.0, 3),
    ]  # fmt: skip
    m = medians(rows)
    assert m["single"]["marginal_ms_per_evaluation"] == 12.0  # one outlier does not count
    assert m["many"]["marginal_ms_per_evaluation"] == 40.0
    r = ratios(rows)
    assert r["marginal_ms_per_evaluation_ratio"] == pytest.approx(40.0 / (3 * 12.0))
    assert r["wall_ms_per_evaluation_ratio"] == pytest.approx(60.0 / (3 * 15.0))
    assert r["cpu_ms_per_evaluation_ratio"] == pytest.approx(75.0 / (3 * 25.0))


@pytest.mark.slow
def test_a_pair_of_runs_gives_marginal_costs_and_a_ratio(prefect_harness, tmp_path):
    output, said = tmp_path / "objectives.csv", []
    rows = objectives_benchmark(load_problem(problem_path("hh")), population=8, generations=2,
                                workers=2, repeats=1, output=output, say=said.append)  # fmt: skip
    assert [row["case"] for row in rows] == ["single", "many"]
    for row in rows:
        assert row["evaluations"] == 16 and row["generations"] == 2
        # wall time from the end of the first generation to the end of the last, per
        # evaluation after the first generation: less than the whole command's
        assert 0 < row["marginal_ms_per_evaluation"] < row["wall_ms_per_evaluation"]
        assert row["cpu_ms_per_evaluation"] > row["flow_cpu_ms_per_evaluation"] > 0
    assert (rows[0]["error_components"], rows[1]["error_components"]) == (4, 12)
    written = list(csv_module.DictReader(output.open()))
    assert [w["case"] for w in written[:2]] == ["single", "many"]
    ratio = {w["case"]: float(w["ratio"]) for w in written[2:]}
    expected = rows[1]["marginal_ms_per_evaluation"] / (3 * rows[0]["marginal_ms_per_evaluation"])
    assert ratio["marginal_ms_per_evaluation_ratio"] == pytest.approx(expected, rel=1e-3)
    assert any("marginal cost ratio many / (3 × single)" in line for line in said)
