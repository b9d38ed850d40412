"""`neuroptimus benchmark overhead --no-full-run` on python and external models (UC5 both
ways): the framework's evaluation is timed, the bare-NEURON comparison is skipped and says
so, the machine load is recorded; the in-process NEST model is at least 5× faster per
evaluation than the same model as the original's script (an interpreter and a NEST import
per sweep)."""

from __future__ import annotations

import csv as csv_module
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _overhead(name: str, csv: Path) -> tuple[str, dict[str, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "benchmark", "overhead", name,
         "--no-full-run", "--repeats", "3", "--csv", str(csv)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = {row["figure"]: row["value"] for row in csv_module.DictReader(csv.open())}
    return result.stdout, figures


def test_python_and_external_models_time_the_framework_and_skip_bare_neuron(tmp_path):
    timed = {}
    for name, kind in (("adexp", "python"), ("adexp-external", "external")):
        out, figures = _overhead(name, tmp_path / f"{name}.csv")
        assert f"one evaluation of {name} (4 sweep(s), median of 3" in out
        assert f"bare NEURON           skipped: {kind} model, not NEURON" in out
        assert re.search(r"machine load\s+[\d.]+ → [\d.]+ \(1-min load average", out)
        assert figures["simulator"] == kind and figures["bare_simulation"].startswith("skipped")
        assert "bare_simulation_ms" not in figures and "framework_to_bare_ratio" not in figures
        assert float(figures["load_1min_before"]) >= 0 and int(figures["cores"]) >= 1
        timed[kind] = float(figures["framework_evaluation_ms"])
        printed = float(re.search(r"framework evaluation\s+([\d.]+) ms", out)[1])
        assert abs(timed[kind] - printed) <= 0.06, (timed[kind], printed)
    # measured about 100× on a loaded 2-core machine; 5× is the requirement
    assert timed["external"] >= 5 * timed["python"], timed
