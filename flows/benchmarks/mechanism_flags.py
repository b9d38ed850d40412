"""``neuroptimus benchmark mechanisms``: a problem's mechanisms compiled as NEURON compiles them
and with the tuned flags (``optimization.simulators.compile_flags``), each build in fresh
processes: the traces and totals of the same individuals compared (bit for bit, else the
largest relative difference), and the bare NEURON simulation timed, the builds alternating."""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

from neuroptimus.flows.benchmarks.loaded_model import built_model, in_fresh_process
from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.compile_flags import FLAGS_VARIABLE, TUNED

BUILDS = {"default": "default", "tuned": " ".join(TUNED)}


def _with_flags(flags: str, function, *args):
    """In a fresh process: ``function(*args)`` with its mechanisms compiled with ``flags``."""
    os.environ[FLAGS_VARIABLE] = flags
    return function(*args)


def _evaluated(spec: ProblemSpec, points: np.ndarray) -> tuple[list, np.ndarray]:
    """Each point's traces (values) and total, in this process."""
    simulator, problem, _, _ = built_model(spec)
    traces, totals = [], []
    for values in points:
        recorded = simulator.run(problem.space.as_dict(values))
        traces.append([np.array(t.values, dtype=float) for t in recorded])  # copies
        totals.append(problem.objective.total(problem.objective.errors(recorded)))
    return traces, np.asarray(totals, float)


def _bare_seconds(spec: ProblemSpec, repeats: int) -> list[float]:
    _, _, _, bare = built_model(spec)
    if bare is None:
        raise UserError(f"{spec.name} is not a NEURON model with mechanisms of its own")
    bare()  # warm-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        bare()
        seconds.append(time.perf_counter() - started)
    return seconds


def compare_builds(spec: ProblemSpec, points: int = 5, repeats: int = 5, rounds: int = 2,
                   seed: int = 1) -> dict:  # fmt: skip
    """The figures: ``identical`` (every trace of every point, bit for bit), the largest
    relative difference of the totals, and each build's median bare simulation."""
    if spec.model.simulator != "neuron" or not getattr(spec.model, "mechanisms", None):
        raise UserError(f"{spec.name}: a NEURON model with a mechanisms folder is needed")
    rng = np.random.default_rng(seed)
    lower = np.array([p.lower for p in spec.parameters])
    upper = np.array([p.upper for p in spec.parameters])
    chosen = lower + rng.random((points, len(lower))) * (upper - lower)
    results = {name: in_fresh_process(_with_flags, flags, _evaluated, spec, chosen)
               for name, flags in BUILDS.items()}  # fmt: skip
    (traces_a, totals_a), (traces_b, totals_b) = results["default"], results["tuned"]
    identical = all(
        np.array_equal(a, b)
        for point_a, point_b in zip(traces_a, traces_b, strict=True)
        for a, b in zip(point_a, point_b, strict=True)
    )
    scale = np.maximum(np.abs(totals_a), np.finfo(float).tiny)
    relative = float(np.max(np.abs(totals_b - totals_a) / scale))
    times: dict[str, list[float]] = {name: [] for name in BUILDS}
    order = list(BUILDS)
    for round_ in range(rounds):  # alternating: default first, then tuned first, …
        for name in order if round_ % 2 == 0 else order[::-1]:
            times[name] += in_fresh_process(_with_flags, BUILDS[name], _bare_seconds, spec,
                                            repeats)  # fmt: skip
    default_ms = statistics.median(times["default"]) * 1000
    tuned_ms = statistics.median(times["tuned"]) * 1000
    return {
        "problem": spec.name,
        "points": points,
        "identical_traces": identical,
        "largest_relative_total_difference": relative,
        "default_bare_ms": default_ms,
        "tuned_bare_ms": tuned_ms,
        "tuned_to_default": tuned_ms / default_ms,
        "tuned_flags": BUILDS["tuned"],
        "timed_simulations_each": rounds * repeats,
        "load_1min": os.getloadavg()[0],
    }


def describe(f: dict) -> str:
    same = (
        "identical, bit for bit"
        if f["identical_traces"]
        else f"not identical (totals within {f['largest_relative_total_difference']:.2g} relative)"
    )
    return "\n".join([
        f"{f['problem']}: mechanisms compiled as NEURON does and with {f['tuned_flags']}",
        f"  traces of {f['points']} individuals: {same}",
        f"  bare simulation, median of {f['timed_simulations_each']}: default "
        f"{f['default_bare_ms']:.1f} ms, tuned {f['tuned_bare_ms']:.1f} ms "
        f"({f['tuned_to_default']:.3f}×)",
        f"  machine load {f['load_1min']:.2f} (1-min average at the end)",
    ])  # fmt: skip
