"""What a model prints stays off the terminal: through the real command line (a LocalCluster,
a private Prefect server), a model that prints on every initialisation (hoc's printf and a
Python print, both to file descriptor 1) leaves the command's output to the command, and the
store keeps every printed line in ``model-output.log``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from commands import command_env

from neuroptimus.usecases import problem_path

pytestmark = pytest.mark.slow

PRINTING_HOC = """\
load_file("model.hoc")
proc neuroptimus_test_print() {
    printf("hoc says: gnabar %g\\n", soma.gnabar_hh(0.5))
    nrnpython("print('python says hello', flush=True)")
}
objref neuroptimus_test_fih
neuroptimus_test_fih = new FInitializeHandler("neuroptimus_test_print()")
"""


def test_model_prints_go_to_the_store_not_the_terminal(tmp_path):
    source = problem_path("hh")
    (tmp_path / "model.hoc").write_text((source.parent / "model.hoc").read_text())
    (tmp_path / "printing.hoc").write_text(PRINTING_HOC)
    data = yaml.safe_load(source.read_text())
    data["model"]["hoc"] = "printing.hoc"
    problem = tmp_path / "problem.yaml"
    problem.write_text(yaml.safe_dump(data))
    store = tmp_path / "run.zarr"
    env = command_env(HOME=str(tmp_path / "home"))
    command = [sys.executable, "-m", "neuroptimus.flows.cli", "run", str(problem),
               "--population", "4", "--generations", "2", "--workers", "2",
               "--store", str(store)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    for stream in (result.stdout, result.stderr):
        assert "says" not in stream, stream
    log = store / "model-output.log"
    assert f"model output: {log}" in result.stdout
    text = log.read_text()
    # each evaluation prints once per sweep, and so do the model check at setup and the best
    # individual's simulation at the end: at least the evaluations' lines
    sweeps = len(data["protocol"]["stimulus"]["amplitudes"])
    assert text.count("hoc says: gnabar") >= 8 * sweeps
    assert text.count("python says hello") == text.count("hoc says: gnabar")
    assert text.startswith("--- worker tcp://")
