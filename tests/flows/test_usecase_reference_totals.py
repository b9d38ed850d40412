"""UC3 (ca1-passive), UC4 (ca1-simplified) and UC6 (ca1-detailed) give the original tool's
numbers: the real command line, ``neuroptimus evaluate NAME --values … --json``, on the
reference vectors of ``tests/data/reference/usecase_totals.json`` (the original at a0d7c9d,
NEURON 9).

The round trip of ``neuroptimus import-settings`` is here too: the original tool's settings
files of use cases 3, 4, 5 (an external program) and 6, copied with their files to a folder of
their own and converted, give problems that evaluate to the bundled problems' numbers. Both
kinds of test read a bundled problem's evaluation from one cache, so each use case is simulated
once per test process (UC6 costs about 20 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.optimization.test_settings_import import UC3, UC4, UC5, UC6, copied
from tests.reference_numbers import usecase

ROOT = Path(__file__).resolve().parents[2]


def _evaluate(name: str, values: list[float]) -> dict:
    text = ",".join(repr(float(v)) for v in values)
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "evaluate", name, "--values", text,
         "--json"],
        capture_output=True, text=True, timeout=900, cwd=ROOT, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)  # stdout is the JSON alone (model output goes to stderr)
    assert got.get("status") is None, got  # simulated and scored, not a penalty
    return got


_BUNDLED: dict[tuple[str, tuple[float, ...]], dict] = {}


def _evaluate_bundled(name: str, values: list[float]) -> dict:
    """A bundled problem's evaluation, simulated once per test process."""
    key = (name, tuple(float(v) for v in values))
    if key not in _BUNDLED:
        _BUNDLED[key] = _evaluate(name, values)
    return _BUNDLED[key]


@pytest.mark.parametrize("name", ["ca1-passive", "ca1-simplified"])
def test_evaluate_gives_the_original_tools_total_and_components(name):
    reference = usecase(name)
    (trace,) = reference["per_trace"] if "per_trace" in reference else [reference]
    components = trace["components_unweighted"]
    got = _evaluate_bundled(name, reference["values"])
    assert got.get("status") is None
    assert got["total"] == pytest.approx(reference["total"], rel=1e-3)
    assert set(got["components"]) == set(components)
    for component, value in components.items():
        assert got["components"][component] == pytest.approx(value, rel=1e-3, abs=1e-12), component


def test_uc6_gives_the_original_tools_total_and_feature_errors():
    """UC6 end to end: patched mechanisms, the user function (with its accessed-section
    quirk), six sweeps from the features file, eFEL with the eFEL-4 rule."""
    reference = usecase("ca1-detailed")
    expected = reference["components"]["errors_efel4_compat"]
    got = _evaluate_bundled("ca1-detailed", reference["values"])
    assert got["total"] == pytest.approx(reference["total"], rel=1e-3)
    assert len(got["components"]) == 120
    for name, value in got["components"].items():
        feature, amplitude = name.removesuffix(" nA]").split(" [")
        wanted = expected[feature][f"stimAmp_{amplitude}"]
        assert value == pytest.approx(wanted, rel=1e-3, abs=1e-9), name


def test_values_are_positional_and_counted():
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "evaluate", "ca1-passive",
         "--values", "2.5,400"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--values: 2 value(s) for 3 parameters (cm, Ra, g_pas)" in result.stderr


@pytest.mark.parametrize(
    ("folder", "bundled"),
    [(UC3, "ca1-passive"), (UC4, "ca1-simplified"), (UC5, "adexp-external"),
     (UC6, "ca1-detailed")],
)  # fmt: skip
def test_converted_settings_evaluate_like_the_bundled_problem(tmp_path, folder, bundled):
    settings = copied(folder, tmp_path)
    problem = settings.parent / "problem.yaml"
    command = ["import-settings", str(settings), "--out", str(problem)]
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", *command],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    values = usecase(bundled.removesuffix("-external"))["values"]
    imported, original = _evaluate(str(problem), values), _evaluate_bundled(bundled, values)
    assert imported["total"] == pytest.approx(original["total"], rel=1e-9)
    assert imported["total"] == pytest.approx(
        usecase(bundled.removesuffix("-external"))["total"], rel=1e-3
    )
    assert json.dumps(sorted(imported["components"])) == json.dumps(sorted(original["components"]))
