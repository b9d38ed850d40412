"""Use case 7 (`pathway`): the bundled problem is the original's settings (12 parameters in
order with their bounds, the 34-point target, MSE, CMA-ES 100 × 100, sigma 1.3) run through
the upstream run.py once per evaluation with the original file protocol. The model itself
takes minutes, so it is not run here: a stand-in run.py among the real siblings checks the
protocol, and a tiny script checks the PATH its os.system children see."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from blackbox_models import in_fresh_process, problem, setup_error, write

from neuroptimus.optimization.evaluation.problem import problem_key
from neuroptimus.optimization.problem.data import fetch
from neuroptimus.optimization.problem.problem_file import load_problem, parse_problem
from neuroptimus.usecases import problem_path

UC7 = "testcase_7_Biochemical_pathway_model"
NAMES = ["Caflux", "Lflux", "Gluflux", "GluR1_ratio", "IC_MGluRM1RGqPLC", "IC_RGsAC1AC8",
         "IC_CaMCK", "IC_NCX", "IC_PKC", "IC_PKA", "IC_PP1PP2B", "IC_PDE1PDE4"]  # fmt: skip


def _settings() -> dict:
    path = fetch(f"data://{UC7}/{UC7}_settings.json")
    return json.loads(path.read_text())["attributes"]


def test_pathway_is_the_original_settings():
    spec = load_problem(problem_path("pathway"))
    settings = _settings()
    assert spec.name == "pathway"
    assert [p.name for p in spec.parameters] == NAMES  # run.py's keys, in its order
    lower, upper = settings["boundaries"]
    assert [p.lower for p in spec.parameters] == lower
    assert [p.upper for p in spec.parameters] == upper
    model = spec.model
    assert model.simulator == "external" and model.command == ["python3", "run.py"]
    assert model.folder == f"data://{UC7}" and model.protocol == "neuroptimus"
    assert model.per_sweep and spec.protocol.sweeps == 1  # one call per evaluation
    assert model.trace_file == "trace{id}.dat" and model.spike_file is None
    assert [(c.name, c.weight) for c in spec.costs.functions] == [("MSE", 1.0)]
    algorithm = settings["current_algorithm"]["CMAES - Cmaes"]
    assert spec.algorithm.name == "cmaes"
    assert spec.algorithm.settings == {"sigma": algorithm["sigma"]}
    assert (spec.algorithm.population, spec.algorithm.generations) == (100, 100)
    assert spec.seed == settings["seed"]
    assert spec.evaluation.timeout_s >= 20 * 60
    assert spec.evaluation.setup_check_s is not None
    assert spec.evaluation.setup_check_s < spec.evaluation.timeout_s


def test_pathway_target_is_the_34_points_in_file_order():
    from neuroptimus.optimization.evaluation.problem import build_problem, load_targets

    spec = load_problem(problem_path("pathway"))
    (target,) = load_targets(spec)
    table = np.loadtxt(fetch(spec.target.file))
    assert table.shape == (34, 2)
    assert np.array_equal(target, table[:, 1])  # time column dropped, control then blocked
    build_problem(spec, [target])  # the protocol's grid has 34 points: lengths agree


# run.py's first lines, then what the real one does to the folder: the siblings it imports
# and spawns are there, the parameter file has the 12 values and the sweep index last; it
# writes trace<ID>.dat as "time value" rows, control then blocked, 17 each.
STAND_IN = """
import os, sys
import numpy as np
ident = sys.argv[1]
values = np.genfromtxt("params" + ident + ".param")
assert len(values) == 13 and values[-1] == 0, values
for sibling in ("model_file_simulation.py", "protocol_file.py", "calcconds.py",
                "EC_2_Ma_2008_exp_data.txt"):
    assert os.path.isfile(sibling), sibling
np.savetxt(os.path.join(os.environ["NEUROPTIMUS_MODEL_FOLDER"], "values.txt"), values)
times = 7200000 + 120000 * np.arange(17)
rows = [(t, 2.0 - k / 20) for k, t in enumerate(times)] + [(t, 1.5) for t in times]
np.savetxt("trace" + ident + ".dat", np.array(rows), delimiter=" ", fmt="%s")
"""


def _stand_in_problem(tmp_path: Path) -> Path:
    """pathway with its folder replaced by links to the real siblings and a stand-in run.py."""
    folder = tmp_path / "model"
    folder.mkdir()
    for entry in fetch(f"data://{UC7}").iterdir():
        if entry.name != "run.py":
            os.symlink(entry, folder / entry.name)
    write(folder, "run.py", STAND_IN)
    text = problem_path("pathway").read_text()
    path = tmp_path / "problem.yaml"
    path.write_text(text.replace(f"folder: data://{UC7}", "folder: model"))
    return path


def _evaluate(path: Path, values: list[float]):
    from neuroptimus.optimization.evaluation.individual import STATUSES, evaluate_one
    from neuroptimus.optimization.loop.preflight import prepare_here

    problem = prepare_here(load_problem(path))  # the setup check runs the stand-in too
    errors, status, message, _ = evaluate_one(problem, np.array(values))
    return errors.tolist(), STATUSES[status], message


def test_pathway_protocol_with_a_stand_in_run_py(tmp_path):
    path = _stand_in_problem(tmp_path)
    values = [100.0, 1.0, 10.0, 0.5, 1.0, 2.0, 3.0, 0.5, 1.5, 2.5, 3.5, 0.25]
    (error,), status, message = in_fresh_process(_evaluate, path, values)
    assert status == "ok", message
    written = np.loadtxt(tmp_path / "model" / "values.txt")
    assert written.tolist() == [*values, 0.0]  # the settings' order, then the sweep index
    target = np.loadtxt(fetch(f"data://{UC7}/EC_2_Ma_2008_exp_data.txt"))[:, 1]
    model = np.array([2.0 - k / 20 for k in range(17)] + [1.5] * 17)  # the last column
    expected = np.mean((model - target) ** 2) / np.ptp(target) ** 2
    assert error == pytest.approx(expected, rel=1e-12)


# A script in the style of run.py: it starts `python3` itself through the shell.
SPAWNER = """
import os, sys
status = os.system("python3 -c 'import neuron, sys; print(sys.executable)' > which.txt")
found = open("which.txt").read().strip()
os.replace("which.txt", os.path.join(os.environ["NEUROPTIMUS_MODEL_FOLDER"], "which.txt"))
if status != 0:
    sys.exit("python3 on PATH cannot import neuron")
with open("trace" + sys.argv[1] + ".dat", "w") as out:
    out.writelines(f"{k} 1.0 1.0\\n" for k in range(1501))
"""


def test_a_spawned_python3_is_the_interpreter_running_neuroptimus(tmp_path, monkeypatch):
    # a python3 that cannot import neuron comes first on the caller's PATH
    shadow = tmp_path / "bin"
    shadow.mkdir()
    write(shadow, "python3", "#!/bin/sh\necho 'the wrong python3' >&2\nexit 7\n").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shadow}{os.pathsep}{os.environ['PATH']}")
    write(tmp_path, "model.py", SPAWNER)
    model = {"simulator": "external", "command": ["python3", "model.py"], "per_sweep": False}
    path = problem(tmp_path, model)
    results = in_fresh_process(_evaluate_plain, path)
    assert results[1] == "ok", results
    found = Path((tmp_path / "which.txt").read_text().strip())
    assert found.parent == Path(sys.executable).parent


def _evaluate_plain(path: Path):
    from neuroptimus.optimization.evaluation.individual import STATUSES, evaluate_one
    from neuroptimus.optimization.evaluation.problem import build_problem

    problem = build_problem(load_problem(path), [np.ones(1501)] * 2)
    errors, status, message, _ = evaluate_one(problem, np.array([10.0, 60.0, 100.0]))
    return errors.tolist(), STATUSES[status], message


# setup_check_s: a slow model is checked for its first seconds only; 0 skips the check.
SLOW = """
import os, sys, time
with open(os.path.join(os.environ["NEUROPTIMUS_MODEL_FOLDER"], "started"), "a") as log:
    log.write("x")
if {fail}:
    sys.exit("cannot import the simulator")
time.sleep(60)
"""


def _slow_problem(tmp_path: Path, fail: bool, setup_check_s: float) -> Path:
    write(tmp_path, "model.py", SLOW.format(fail=fail))
    times = np.arange(1501) * 0.2
    np.savetxt(tmp_path / "target.dat", np.column_stack([times, np.ones(1501), np.ones(1501)]))
    return problem(
        tmp_path,
        {"simulator": "external", "command": ["python3", "model.py"], "per_sweep": False},
        target={"file": "target.dat", "sampling_rate_hz": 5000},
        evaluation={"timeout_s": 600, "setup_check_s": setup_check_s},
    )


def test_setup_check_of_a_slow_model_stops_after_setup_check_s(tmp_path):
    path = _slow_problem(tmp_path, fail=False, setup_check_s=2)
    started = time.monotonic()
    assert in_fresh_process(setup_error, path) is None
    assert time.monotonic() - started < 40  # not the 60 s the model runs
    assert (tmp_path / "started").read_text() == "x"  # it was run (and stopped)


def test_setup_check_cut_short_still_finds_a_model_failing_at_start(tmp_path):
    message = in_fresh_process(setup_error, _slow_problem(tmp_path, fail=True, setup_check_s=5))
    assert message is not None and "cannot import the simulator" in message, message


def test_setup_check_0_runs_no_evaluation(tmp_path):
    assert in_fresh_process(setup_error, _slow_problem(tmp_path, True, setup_check_s=0)) is None
    assert not (tmp_path / "started").exists()


def test_setup_check_s_is_no_part_of_the_problem_identity():
    spec = load_problem(problem_path("pathway")).model_dump(mode="json")
    other = json.loads(json.dumps(spec))
    other["evaluation"]["setup_check_s"] = None
    assert problem_key(spec) == problem_key(other)
    other["evaluation"]["timeout_s"] = 7200
    assert problem_key(spec) != problem_key(other)
    with pytest.raises(ValueError, match="setup_check_s"):
        parse_problem({**spec, "evaluation": {"setup_check_s": -1}})
