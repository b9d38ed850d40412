"""The round trip of `neuroptimus import-settings`: the original tool's settings files of use
cases 3, 4, 5 (an external program) and 6, copied with their files to a folder of their own
and converted, give problems that evaluate to the bundled problems' numbers (and so to the
original tool's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.flows.test_usecase_reference_totals import ROOT, _evaluate
from tests.optimization.test_settings_import import UC3, UC4, UC5, UC6, copied
from tests.reference_numbers import usecase


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
    imported, original = _evaluate(str(problem), values), _evaluate(bundled, values)
    assert imported["total"] == pytest.approx(original["total"], rel=1e-9)
    assert imported["total"] == pytest.approx(
        usecase(bundled.removesuffix("-external"))["total"], rel=1e-3
    )
    assert json.dumps(sorted(imported["components"])) == json.dumps(sorted(original["components"]))
