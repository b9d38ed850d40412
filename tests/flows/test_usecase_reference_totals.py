"""UC3 (ca1-passive), UC4 (ca1-simplified) and UC6 (ca1-detailed) give the original tool's
numbers: the real command line, ``neuroptimus evaluate NAME --values … --json``, on the
reference vectors of ``tests/data/reference/usecase_totals.json`` (the original at a0d7c9d,
NEURON 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("name", ["ca1-passive", "ca1-simplified"])
def test_evaluate_gives_the_original_tools_total_and_components(name):
    reference = usecase(name)
    (trace,) = reference["per_trace"] if "per_trace" in reference else [reference]
    components = trace["components_unweighted"]
    got = _evaluate(name, reference["values"])
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
    got = _evaluate("ca1-detailed", reference["values"])
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
