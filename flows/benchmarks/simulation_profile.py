"""Where a simulation's time goes: py-spy samples the process running a model's bare
simulation (NEURON models; other simulators: the framework's evaluation) with its native
frames, and the samples are counted by the function they were in (its own time) and by the
library that function belongs to (NEURON's core, the compiled mechanisms, the C maths
library, Python …)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from neuroptimus.flows.benchmarks.loaded_model import built_model, in_fresh_process
from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.spec import ProblemSpec

SAMPLES_PER_S = 200
_ADDRESS = re.compile(r"0x[0-9a-f]+ \(")  # a frame py-spy could not name
_FRAME = re.compile(r"(?P<function>.*) \((?P<where>[^()]*)\)$")


@dataclass
class SimulationProfile:
    samples: int
    seconds: float
    work: str  # what was sampled, in words
    functions: list[tuple[str, str, float]]  # (function, library, share of the samples)
    libraries: list[tuple[str, float]]  # (library, share of the samples)


def py_spy() -> str:
    """The py-spy program of this environment (a clear error when it is missing)."""
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(found, os.X_OK):
        raise UserError(
            "profiling needs py-spy: pip install 'neuroptimus[profile]' (or pip install py-spy)"
        )
    return found


def profile_simulation(spec: ProblemSpec, seconds: float = 10.0) -> SimulationProfile:
    """Sample ``seconds`` of the model's simulations, repeated, in a fresh process."""
    return in_fresh_process(_profile_here, spec, seconds, py_spy())


def _profile_here(spec: ProblemSpec, seconds: float, program: str) -> SimulationProfile:
    from neuroptimus.optimization.evaluation.individual import evaluate_one  # noqa: PLC0415 (lazy: the spawned process imports what it runs)

    _, problem, values, bare = built_model(spec)
    work = bare or (lambda: evaluate_one(problem, values))
    work()  # warm-up: first allocations are not what a run repeats
    with tempfile.TemporaryDirectory() as folder:
        stacks = Path(folder) / "stacks.txt"
        command = [program, "record", "--native", "--pid", str(os.getpid()), "--rate",
                   str(SAMPLES_PER_S), "--duration", f"{max(1, round(seconds))}", "--format",
                   "raw", "--output", str(stacks)]  # fmt: skip
        sampler = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while sampler.poll() is None:
            work()
        said = sampler.stdout.read().decode(errors="replace") if sampler.stdout else ""
        if sampler.returncode or not stacks.is_file():
            said = said[-2000:]
            raise UserError(f"py-spy could not sample this process (it needs ptrace): {said}")
        counted = count_samples(stacks.read_text())
    what = "bare NEURON simulation" if bare else f"framework evaluation ({spec.model.simulator})"
    return SimulationProfile(seconds=time.monotonic() - started, work=what, **counted)


def count_samples(raw: str, top: int = 15) -> dict:
    """``samples``, ``functions`` (the ``top`` by own time) and ``libraries`` of py-spy's raw
    output (a line per distinct stack: frames outermost first, separated by ``;``, then the
    count). A frame without a name counts for the nearest named frame above it."""
    functions: Counter[tuple[str, str]] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not _ADDRESS.match(f)]
        function, library = _named(frames[-1]) if frames else ("(unknown)", "(unknown)")
        functions[function, library] += int(count)
        libraries[library] += int(count)
        total += int(count)
    if not total:
        raise UserError("py-spy recorded no samples: the simulation ended before it started")
    return {
        "samples": total,
        "functions": [(f, lib, n / total) for (f, lib), n in functions.most_common(top)],
        "libraries": [(lib, n / total) for lib, n in libraries.most_common()],
    }


def _named(frame: str) -> tuple[str, str]:
    """``(function, library)`` of one frame: Python frames (``file.py:line``) are Python,
    native ones the shared library they are in."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, "(unknown)"
    where = match["where"]
    if re.search(r"\.py:\d+$", where):
        return match["function"], "Python"
    if re.search(r":\d+$", where):  # native code py-spy names by its source line (inlined)
        return match["function"], "inlined C/C++"
    return match["function"], where


def describe_profile(profile: SimulationProfile) -> str:
    """The lines the benchmark prints."""
    lines = [
        f"where the time of a {profile.work} goes (py-spy --native, {profile.samples} samples "
        f"over {profile.seconds:.1f} s; own time of each function):"
    ]
    lines += [f"  {share:6.1%}  {function}  ({library})" for function, library, share in
              profile.functions]  # fmt: skip
    lines.append(
        "  by library: " + ", ".join(f"{lib} {share:.1%}" for lib, share in profile.libraries)
    )
    return "\n".join(lines)


def profile_rows(profile: SimulationProfile) -> list[dict]:
    """CSV rows: each top function, then each library."""
    return [
        {"kind": "function", "name": f, "library": lib, "share": round(share, 4)}
        for f, lib, share in profile.functions
    ] + [
        {"kind": "library", "name": lib, "library": lib, "share": round(share, 4)}
        for lib, share in profile.libraries
    ]
