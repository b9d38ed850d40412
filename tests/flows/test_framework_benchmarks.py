"""The framework benchmarks run end to end on a real LocalCluster and print their tables (their
figures are measurements, written down in docs/benchmarks.md and docs/hpc.md, not checked here)."""

from __future__ import annotations

import csv as csv_module
import math
import os
import re
import subprocess
import sys

import pytest
from mechanism_models import leak_problem, mechanisms_benchmark

from neuroptimus.flows.benchmarks.fronts import fronts_benchmark
from neuroptimus.flows.benchmarks.overhead import orchestration, overhead
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.usecases import problem_path

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


def test_overhead_reports_the_efficiency_of_a_whole_run(prefect_harness, capsys, tmp_path):
    csv = tmp_path / "overhead.csv"
    figures = overhead(load_problem(problem_path("hh")), population=4, generations=2,
                       workers=2, seed=3, csv=csv)  # fmt: skip
    assert figures["evaluations"] == 8 and figures["generations"] == 2
    assert 0 < figures["efficiency"] <= figures["efficiency_generations_only"] <= 1.0
    assert figures["bare_simulation_ms"] > 0 and figures["framework_evaluation_ms"] > 0
    assert figures["generation_to_bare_ratio"] > 0 and figures["run_evaluation_to_bare_ratio"] > 0
    for name in ("store_ms_per_generation", "artifacts_ms_per_generation",
                 "algorithm_ms_per_generation", "algorithm_percent_of_evaluation",
                 "cluster_start_seconds", "start_to_first_generation_seconds",
                 "last_generation_to_report_seconds", "rss_end_mb"):  # fmt: skip
        assert figures[name] >= 0, name
    assert math.isnan(figures["rss_growth_percent"])  # no generation 10 in a 2-generation run
    out = capsys.readouterr().out
    for line in ("framework evaluation", "bare NEURON", "ratio",
                 "parallel efficiency, whole optimize flow", "parallel efficiency, generations",
                 "store writes", "Prefect artifacts", "cluster start", "fixed cost",
                 "memory of the flow process", "streaming each result into the store",
                 "the algorithm's own time"):  # fmt: skip
        assert line in out, line
    # every result was handed over as it arrived (written behind unless its generation was
    # committed first, as these short ones may be)
    assert figures["stream_ms_per_generation"] > 0
    assert figures["stream_background_ms_per_generation"] >= 0
    rows = list(csv_module.DictReader(csv.open()))
    assert {row["figure"] for row in rows} == set(figures)
    assert "fronts_critical_seconds" not in figures  # CMA-ES keeps no fronts


def test_fronts_benchmark_measures_a_many_objective_run_and_a_worst_case(
    prefect_harness, capsys, tmp_path
):
    csv = tmp_path / "fronts.csv"
    scenarios = fronts_benchmark(load_problem(problem_path("hh")), population=8, generations=2,
                                 workers=2, worst_generations=3, pause_s=0.2, csv=csv)  # fmt: skip
    real, worst = scenarios["uc1-3x4-nsga2"], scenarios["worst-case-sphere-12d"]
    assert real["evaluations"] == 16 and real["fronts_critical_percent"] >= 0
    assert worst["final_front_size"] == 24  # every point of the sphere is on the front
    assert sum(worst[f"hypervolumes_{name}"] for name in ("exact", "bf_fpras", "skipped",
                                                           "pending", "failed")) == 3  # fmt: skip
    assert "fronts and hypervolumes" in capsys.readouterr().out
    rows = list(csv_module.DictReader(csv.open()))
    assert {row["scenario"] for row in rows} == set(scenarios)


def test_overhead_compares_an_evaluation_with_bare_neuron_on_any_problem(tmp_path):
    """A problem file with mechanisms of its own, through the command line: the framework's
    evaluation, the bare NEURON simulation of the same model and values, their ratio."""
    problem, csv = leak_problem(tmp_path), tmp_path / "overhead.csv"
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "benchmark", "overhead", str(problem),
         "--no-full-run", "--repeats", "3", "--csv", str(csv), "--profile", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "one evaluation of leak-soma (1 sweep(s), median of 3" in out
    framework = float(re.search(r"framework evaluation\s+([\d.]+) ms", out)[1])
    bare = float(re.search(r"bare NEURON\s+([\d.]+) ms", out)[1])
    ratio = float(re.search(r"ratio\s+([\d.]+)", out)[1])
    assert framework > 0 and bare > 0
    # the times are printed to 0.1 ms (a few ms each here), the ratio to 0.001
    low, high = (framework - 0.05) / (bare + 0.05), (framework + 0.05) / (bare - 0.05)
    assert low - 5e-4 <= ratio <= high + 5e-4
    figures = {row["figure"]: float(row["value"]) for row in csv_module.DictReader(csv.open())}
    assert figures["evaluation_repeats"] == 3 and figures["sweeps"] == 1
    assert figures["framework_to_bare_ratio"] == pytest.approx(ratio, abs=1e-3)
    # with a 100 ms protocol of one compartment, the simulation dominates the framework's cost
    assert figures["bare_scored_ms"] >= figures["bare_simulation_ms"]
    # --profile: where the bare simulation's time goes, NEURON's native functions included
    assert "where the time of a bare NEURON simulation goes (py-spy --native" in out
    profile = list(csv_module.DictReader(csv.with_name("overhead-profile.csv").open()))
    libraries = {row["name"]: float(row["share"]) for row in profile if row["kind"] == "library"}
    assert max(libraries, key=libraries.get) == "libnrniv.so"  # NEURON's core
    assert sum(libraries.values()) == pytest.approx(1, abs=0.01)
    functions = [row for row in profile if row["kind"] == "function"]
    assert len(functions) >= 5 and any(row["library"] == "libnrniv.so" for row in functions)


def test_mechanisms_benchmark_compares_the_tuned_build_with_neurons_own(tmp_path):
    """`neuroptimus benchmark mechanisms` on a problem with a mechanism of its own: both builds
    really compiled (NEUROPTIMUS_MECHANISM_FLAGS=default and the tuned flags), the same traces
    bit for bit, and each build's bare simulation timed."""
    problem, csv = leak_problem(tmp_path), tmp_path / "mechanisms.csv"
    env = {**os.environ, "NEUROPTIMUS_CACHE": str(tmp_path / "cache")}
    result = mechanisms_benchmark(problem, "--points", "3", "--repeats", "2", "--rounds", "1",
                                  "--csv", str(csv), env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "traces of 3 individuals: identical, bit for bit" in result.stdout
    figures = {row["figure"]: row["value"] for row in csv_module.DictReader(csv.open())}
    assert figures["identical_traces"] == "True"
    assert float(figures["largest_relative_total_difference"]) == 0.0
    assert float(figures["default_bare_ms"]) > 0 and float(figures["tuned_bare_ms"]) > 0
    builds = list((tmp_path / "cache" / "mechanisms").iterdir())
    assert len(builds) == 2  # NEURON's own build and the tuned one


def test_overhead_times_the_bare_simulation_under_another_neuron_too(tmp_path):
    """--other-neuron: a real NEURON 8.2.6 installed alone in a fresh environment; the model
    (with a mechanism of its own, compiled by that NEURON's nrnivmodl) is built and simulated
    there, and both versions' medians and their ratio are printed and written."""
    other = tmp_path / "nrn8"
    subprocess.run([sys.executable, "-m", "venv", str(other)], check=True)
    python = str(other / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "neuron==8.2.6",
                    "packaging", "find-libpython"],
                   check=True, capture_output=True)  # fmt: skip
    problem, csv = leak_problem(tmp_path), tmp_path / "overhead.csv"
    command = [sys.executable, "-m", "neuroptimus.flows.cli", "benchmark", "overhead",
               str(problem), "--no-full-run", "--repeats", "2", "--csv", str(csv)]  # fmt: skip
    env = {**os.environ, "NEUROPTIMUS_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([*command, "--other-neuron", python], capture_output=True,
                            text=True, timeout=600, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "NEURON 8.2.6" in result.stdout and "NEURON 9." in result.stdout
    figures = {row["figure"]: row["value"] for row in csv_module.DictReader(csv.open())}
    assert figures["versions_other_neuron"] == "8.2.6"
    this, old = (float(figures[f"versions_{k}bare_simulation_ms"]) for k in ("", "other_"))
    assert float(figures["versions_this_to_other_ratio"]) == pytest.approx(this / old, rel=1e-5)
    builds = [p.parent for p in (tmp_path / "cache").rglob(".complete")]
    assert len(builds) == 2  # one build per NEURON, each by its own nrnivmodl
    layouts = sorted("/.libs/" in str(p) for b in builds for p in b.rglob("libnrnmech.so"))
    assert layouts == [False, False, True]  # NEURON 9's, and 8's (libtool's .libs too)
    # the same interpreter is no other NEURON: one line saying what to install
    same = subprocess.run([*command, "--other-neuron", sys.executable], capture_output=True,
                          text=True, timeout=600, env=env)  # fmt: skip
    assert same.returncode == 2 and "imports the same NEURON" in same.stderr
    assert len(same.stderr.strip().splitlines()) == 1
