"""NMODL compilation: workers that start together compile a mechanism folder once, with flock
or with lock files (NEUROPTIMUS_LOCKS=file, as on Lustre mounted with localflock)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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
WORKER = """\
import sys
from pathlib import Path
from optimization.simulators.mechanisms import load_mechanisms, compile_mechanisms
from neuron import h
load_mechanisms(Path(sys.argv[1]))
soma = h.Section(name="soma")
soma.insert("neuroptimus_test_leak")
print(compile_mechanisms(Path(sys.argv[1])))
"""


@pytest.mark.skipif(shutil.which("nrnivmodl") is None, reason="NEURON's nrnivmodl not found")
@pytest.mark.parametrize("locks", ["flock", "file"])
def test_workers_starting_together_compile_once(tmp_path, locks):
    mod = tmp_path / "mod"
    mod.mkdir()
    (mod / "leak.mod").write_text(LEAK_MOD)
    # nrnivmodl itself, behind a script that counts its runs
    shim, runs = tmp_path / "bin", tmp_path / "runs"
    shim.mkdir()
    (shim / "nrnivmodl").write_text(
        f'#!/bin/sh\necho $$ >> "{runs}"\nexec "{shutil.which("nrnivmodl")}" "$@"\n'
    )
    (shim / "nrnivmodl").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "NEUROPTIMUS_CACHE": str(tmp_path / "cache"),
        "NEUROPTIMUS_LOCKS": locks,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(mod)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for _ in range(3)
    ]
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-2000:]
    libraries = {stdout.strip().splitlines()[-1] for stdout, _ in outputs}
    assert len(libraries) == 1 and Path(libraries.pop()).is_file()
    assert len(runs.read_text().split()) == 1  # the others waited, then found the library
    assert not list((tmp_path / "cache").rglob("*.held"))  # no lock file left behind
