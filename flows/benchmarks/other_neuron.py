"""The bare simulation of a model under this NEURON and under another installed beside it.

The other NEURON is a Python interpreter whose environment has it (``python -m venv nrn8 &&
nrn8/bin/pip install --no-deps neuron==8.2.6 packaging find-libpython``: its nrnivmodl needs
the last two; NEURON 8 asks for NumPy < 2 but runs on this one's). Everything else (this
project, NumPy, …) it takes from this environment, found after its own packages, so its
``neuron`` is its own. The model is built there as a run builds it, its mechanisms compiled by
that NEURON's nrnivmodl (the one beside that interpreter) into their own cache folder.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import tempfile
from pathlib import Path

import numpy as np

import neuroptimus
from neuroptimus.flows.benchmarks.loaded_model import bare_seconds, in_fresh_process
from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.mechanisms import neuron_version

# the folder holding the neuroptimus package (a clone's root, or site-packages)
_ROOT = str(Path(neuroptimus.__file__).resolve().parents[1])


def bare_times(spec: ProblemSpec, repeats: int) -> dict:
    """In this process: the NEURON version and the median of ``bare_seconds`` in ms."""
    median_s = float(np.median(bare_seconds(spec, repeats)))
    return {"neuron": neuron_version(), "bare_simulation_ms": median_s * 1000, "repeats": repeats}


def compare(spec: ProblemSpec, python: str, repeats: int) -> dict:
    """The bare simulation's median under this NEURON and under ``python``'s, each in a fresh
    process, this one's measured before and after the other's (load drifts)."""
    other_version = _in_other(python, "neuron_version")
    if other_version == neuron_version():
        raise UserError(
            f"--other-neuron {python} imports the same NEURON ({other_version}): install "
            "another version in its environment (pip install --no-deps neuron==VERSION)"
        )
    before = in_fresh_process(bare_times, spec, repeats)
    other = _in_other(python, "bare_times", spec.model_dump_json(), repeats)
    after = in_fresh_process(bare_times, spec, repeats)
    this_ms = (before["bare_simulation_ms"] + after["bare_simulation_ms"]) / 2
    return {
        "neuron": before["neuron"],
        "bare_simulation_ms": this_ms,
        "other_neuron": other["neuron"],
        "other_bare_simulation_ms": other["bare_simulation_ms"],
        "this_to_other_ratio": this_ms / other["bare_simulation_ms"],
        "repeats": repeats,
    }


def describe(name: str, f: dict) -> str:
    return "\n".join([
        f"bare NEURON simulation of {name} (median of {f['repeats']}, fresh processes):",
        f"  NEURON {f['neuron']:<12} {f['bare_simulation_ms']:10.1f} ms (before and after)",
        f"  NEURON {f['other_neuron']:<12} {f['other_bare_simulation_ms']:10.1f} ms",
        f"  ratio {f['this_to_other_ratio']:18.3f} ({f['neuron']} / {f['other_neuron']})",
    ])  # fmt: skip


def _in_other(python: str, name: str, *args):
    """``name(*args)`` of ``_SERVED`` run by ``python``, with this environment's packages
    after its own (arguments and answer as JSON)."""
    paths = os.pathsep.join([_ROOT, *site.getsitepackages()])
    bootstrap = (
        "import json, os, site, sys\n"
        "for path in sys.argv[1].split(os.pathsep): site.addsitedir(path)\n"
        "from neuroptimus.flows.benchmarks.other_neuron import _SERVED\n"
        "answer = _SERVED[sys.argv[2]](*json.loads(sys.argv[3]))\n"
        "open(sys.argv[4], 'w').write(json.dumps(answer))\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        answer = Path(folder) / "answer.json"
        command = [python, "-c", bootstrap, paths, name, json.dumps(args), str(answer)]
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except OSError as error:
            raise UserError(f"--other-neuron {python}: cannot run it ({error})") from None
        if result.returncode != 0 or not answer.is_file():
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise UserError(f"--other-neuron {python}: {name} failed there: {tail}")
        return json.loads(answer.read_text())


def _bare_times_of(spec_json: str, repeats: int) -> dict:
    return bare_times(ProblemSpec.model_validate_json(spec_json), repeats)


# what the other interpreter is asked for
_SERVED = {"neuron_version": lambda: neuron_version(), "bare_times": _bare_times_of}
