"""``neuroptimus benchmark mechanisms``: a problem's mechanisms compiled as NEURON compiles them
and with the tuned flags (``optimization.simulators.compile_flags``), or (``--engines``) its
sweeps integrated by NEURON and by CoreNEURON (``model.engine``), each in fresh processes: the
traces and totals of the same individuals compared (bit for bit, else the largest
differences), and the bare simulation timed, the two alternating."""

from __future__ import annotations

import os
import statistics

import numpy as np

from neuroptimus.flows.benchmarks.loaded_model import (
    bare_seconds,
    built_model,
    in_fresh_process,
)
from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.compile_flags import FLAGS_VARIABLE, TUNED

BUILDS = {"default": "default", "tuned": " ".join(TUNED)}
ENGINES = ("neuron", "coreneuron")  # model.engine, each with the tuned build


def _in_variant(flags: str, engine: str, function, spec: ProblemSpec, *args):
    """In a fresh process: ``function(spec, *args)`` with the mechanisms compiled with
    ``flags`` and the sweeps integrated by ``engine``."""
    os.environ[FLAGS_VARIABLE] = flags
    model = spec.model.model_copy(update={"engine": engine})
    return function(spec.model_copy(update={"model": model}), *args)


def _evaluated(spec: ProblemSpec, points: np.ndarray) -> tuple[list, np.ndarray]:
    """Each point's traces (values) and total, in this process."""
    simulator, problem, _, _ = built_model(spec)
    traces, totals = [], []
    for values in points:
        recorded = simulator.run(problem.space.as_dict(values))
        traces.append([np.array(t.values, dtype=float) for t in recorded])  # copies
        totals.append(problem.objective.total(problem.objective.errors(recorded)))
    return traces, np.asarray(totals, float)


def compare_builds(spec: ProblemSpec, points: int = 5, repeats: int = 5, rounds: int = 2,
                   seed: int = 1) -> dict:  # fmt: skip
    """The mechanisms compiled as NEURON does and with the tuned flags (``compare``)."""
    if spec.model.simulator != "neuron" or not getattr(spec.model, "mechanisms", None):
        raise UserError(f"{spec.name}: a NEURON model with a mechanisms folder is needed")
    engine = getattr(spec.model, "engine", "neuron")
    variants = {name: (flags, engine) for name, flags in BUILDS.items()}
    figures = compare(spec, variants, points, repeats, rounds, seed)
    return {**figures, "tuned_flags": BUILDS["tuned"]}


def compare_engines(spec: ProblemSpec, points: int = 5, repeats: int = 5, rounds: int = 2,
                    seed: int = 1) -> dict:  # fmt: skip
    """NEURON's and CoreNEURON's integration of the tuned build (``compare``); a model
    without mechanisms of its own runs on each engine's own."""
    if spec.model.simulator != "neuron":
        raise UserError(f"{spec.name}: model.engine is for NEURON models (simulator neuron)")
    refusal = spec.coreneuron_refusal()
    if refusal:
        raise UserError(f"{spec.name}: {refusal}")
    variants = {engine: (BUILDS["tuned"], engine) for engine in ENGINES}
    return compare(spec, variants, points, repeats, rounds, seed)


def compare(spec: ProblemSpec, variants: dict[str, tuple[str, str]], points: int, repeats: int,
            rounds: int, seed: int) -> dict:  # fmt: skip
    """Two ways to simulate (name: compiler flags, engine), the first the reference, each in
    fresh processes. The figures: ``identical`` (every trace of every point, bit for bit), the
    largest absolute difference of a trace sample and relative difference of a total, and
    each variant's median bare simulation, the variants' order alternating by round."""
    rng = np.random.default_rng(seed)
    lower = np.array([p.lower for p in spec.parameters])
    upper = np.array([p.upper for p in spec.parameters])
    chosen = lower + rng.random((points, len(lower))) * (upper - lower)
    (a, variant_a), (b, variant_b) = variants.items()
    traces_a, totals_a = in_fresh_process(_in_variant, *variant_a, _evaluated, spec, chosen)
    traces_b, totals_b = in_fresh_process(_in_variant, *variant_b, _evaluated, spec, chosen)
    pairs = [
        (x, y)
        for point_a, point_b in zip(traces_a, traces_b, strict=True)
        for x, y in zip(point_a, point_b, strict=True)
    ]
    scale = np.maximum(np.abs(totals_a), np.finfo(float).tiny)
    times: dict[str, list[float]] = {a: [], b: []}
    for round_ in range(rounds):  # alternating: the reference first, then the other first, …
        for name in (a, b) if round_ % 2 == 0 else (b, a):
            times[name] += in_fresh_process(_in_variant, *variants[name], bare_seconds, spec,
                                            repeats)  # fmt: skip
    a_ms, b_ms = (statistics.median(times[name]) * 1000 for name in (a, b))
    return {
        "problem": spec.name,
        "variants": f"{a},{b}",
        "points": points,
        "identical_traces": all(np.array_equal(x, y) for x, y in pairs),
        "largest_trace_difference": max(float(np.max(np.abs(x - y))) for x, y in pairs),
        "largest_relative_total_difference": float(np.max(np.abs(totals_b - totals_a) / scale)),
        f"{a}_bare_ms": a_ms,
        f"{b}_bare_ms": b_ms,
        f"{b}_to_{a}": b_ms / a_ms,
        "timed_simulations_each": rounds * repeats,
        "load_1min": os.getloadavg()[0],
    }


def describe(f: dict) -> str:
    a, b = f["variants"].split(",")
    same = (
        "identical, bit for bit"
        if f["identical_traces"]
        else f"not identical: samples within {f['largest_trace_difference']:.2g}, totals within "
        f"{f['largest_relative_total_difference']:.2g} relative"
    )
    what = (
        f"mechanisms compiled as NEURON does and with {f['tuned_flags']}"
        if "tuned_flags" in f
        else "sweeps integrated by NEURON and by CoreNEURON (model.engine), the tuned build"
    )
    return "\n".join([
        f"{f['problem']}: {what}",
        f"  traces of {f['points']} individuals: {same}",
        f"  bare simulation, median of {f['timed_simulations_each']}: {a} "
        f"{f[f'{a}_bare_ms']:.1f} ms, {b} {f[f'{b}_bare_ms']:.1f} ms "
        f"({f[f'{b}_to_{a}']:.3f}×)",
        f"  machine load {f['load_1min']:.2f} (1-min average at the end)",
    ])  # fmt: skip
