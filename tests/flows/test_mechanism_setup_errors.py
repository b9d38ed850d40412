"""A .mod file that does not compile stops `neuroptimus run` at setup: the real command line
(real nrnivmodl, a real LocalCluster), one line naming the .mod file and nrnivmodl's message,
exit code 2, no store left behind."""

from __future__ import annotations

import subprocess
import sys

import pytest
from commands import command_env
from mechanism_models import BAD_MOD, leak_problem

pytestmark = pytest.mark.slow


def test_a_mod_file_that_does_not_compile_stops_the_run_in_one_line(tmp_path):
    problem = leak_problem(tmp_path, extra_mods={"bad.mod": BAD_MOD})
    store = tmp_path / "runs" / "run.zarr"
    env = command_env(NEUROPTIMUS_CACHE=str(tmp_path / "cache"))  # cold: nrnivmodl runs
    result = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "run", str(problem), "--workers", "1",
         "--store", str(store)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: mechanism {tmp_path / 'mods'}/bad.mod does not compile with nrnivmodl "
        f"(NEURON {_neuron_version()}): Illegal block at line 9: g = = 2"
    ], result.stderr
    assert result.stdout.strip() == f"run store: {store}"
    assert not store.exists()
    assert not store.parent.exists() or list(store.parent.iterdir()) == []


def _neuron_version() -> str:
    from neuroptimus.optimization.simulators.nmodl_compiler import nrnivmodl_build

    return nrnivmodl_build().release
