"""A tiny problem with mechanisms of its own (a leak .mod beside a one-compartment hh soma),
written into a test's folder: for the compile, patch, setup-error and benchmark tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

LEAK_MOD = """\
NEURON {
    SUFFIX neuroptimus_test_leak
    NONSPECIFIC_CURRENT i
    RANGE g, e
}
UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
}
PARAMETER {
    g = 0.001 (S/cm2)
    e = -70 (mV)
}
ASSIGNED {
    v (mV)
    i (mA/cm2)
}
BREAKPOINT {
    i = g * (v - e)
}
"""

# nocmodl refuses it: "Illegal block at line 9 in file bad.mod"
BAD_MOD = """\
NEURON {
    SUFFIX neuroptimus_test_bad
    RANGE g
}
PARAMETER {
    g = 0.001 (S/cm2)
}
BREAKPOINT {
    g = = 2
}
"""

# nocmodl translates it; the C++ compiler refuses the VERBATIM block
BAD_CXX_MOD = """\
NEURON {
    SUFFIX neuroptimus_test_verbatim
}
PROCEDURE f() {
VERBATIM
    this is not c++;
ENDVERBATIM
}
"""

MODEL_HOC = """\
create soma
soma {
    L = 20
    diam = 20
    insert hh
    insert neuroptimus_test_leak
}
"""


def leak_problem(folder: Path, extra_mods: dict[str, str] | None = None, **model) -> Path:
    """problem.yaml in ``folder``: the soma with its leak mechanism in ``mods/`` (and
    ``extra_mods``), a target regenerated from the true values; ``model`` adds model keys."""
    mods = folder / "mods"
    mods.mkdir(parents=True, exist_ok=True)
    (mods / "leak.mod").write_text(LEAK_MOD)
    for name, text in (extra_mods or {}).items():
        (mods / name).write_text(text)
    (folder / "model.hoc").write_text(MODEL_HOC)
    problem = {
        "name": "leak-soma",
        "model": {"hoc": "model.hoc", "mechanisms": "mods", **model},
        "parameters": [
            {
                "name": "gnabar_hh",
                "hoc": "soma.gnabar_hh",
                "lower": 0.05,
                "upper": 0.2,
                "true_value": 0.12,
            },
            {
                "name": "g_leak",
                "hoc": "soma.g_neuroptimus_test_leak",
                "lower": 1e-4,
                "upper": 1e-3,
                "true_value": 3e-4,
            },
        ],  # fmt: skip
        "protocol": {
            "tstop_ms": 100,
            "dt_ms": 0.025,
            "stimulus": {
                "type": "IClamp",
                "amplitudes": [0.2],
                "delay_ms": 10,
                "duration_ms": 80,
            },  # fmt: skip
        },
        "target": {"regenerate": True, "sampling_rate_hz": 40000},
        "costs": {"functions": [{"name": "MSE"}]},
        "algorithm": {"name": "cmaes", "population": 4, "generations": 1},
    }
    path = folder / "problem.yaml"
    path.write_text(yaml.safe_dump(problem, sort_keys=False))
    return path


def mechanisms_benchmark(problem, *options: str, env: dict | None = None):
    """``neuroptimus benchmark mechanisms PROBLEM OPTIONS…`` through the command line."""
    return subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "benchmark", "mechanisms", str(problem),
         *options],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
