"""A model loaded for timing in this process: built as a run builds it, and its bare NEURON
simulation beside the framework's evaluation; and a fresh process to load one in (NEURON
holds one model per process)."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.spec import ProblemSpec


def in_fresh_process(function, *args):
    """``function(*args)`` in a new (spawned) process, which ends with it."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _bare_neuron(spec: ProblemSpec):
    """A function running the bare simulation of what an evaluation left loaded:
    ``h.finitialize(v_init)`` and ``ParallelContext.psolve(tstop)`` (NEURON's compiled time
    loop) per sweep. The stimulus keeps the last sweep's amplitude: with a fixed step, a
    sweep costs the same at any."""
    from neuron import h  # noqa: PLC0415 (lazy: imported by the process that simulates)

    protocol, context = spec.protocol, h.ParallelContext()

    def simulate() -> None:
        for _ in range(protocol.sweeps):
            h.dt = protocol.dt_ms
            h.finitialize(protocol.v_init_mV)
            context.psolve(protocol.tstop_ms)
        if abs(h.t - protocol.tstop_ms) > protocol.dt_ms:
            raise RuntimeError(f"the bare simulation stopped at t = {h.t:g} ms")

    return simulate


def built_model(spec: ProblemSpec):
    """In this process: ``(simulator, problem, values, bare)``, the model of ``spec`` built,
    the middle of the bounds, and ``bare``, its bare NEURON simulation (``_bare_neuron``;
    None for other simulators)."""
    from neuroptimus.optimization.evaluation.individual import hosted_simulator  # noqa: PLC0415 (lazy: imported by the process that simulates)
    from neuroptimus.optimization.evaluation.problem import build_problem, true_values  # noqa: PLC0415 (lazy: imported by the process that simulates)

    simulator = hosted_simulator(spec)
    regenerate = spec.target is not None and spec.target.regenerate  # e-models have none
    targets = [t.values for t in simulator.run(true_values(spec))] if regenerate else None
    problem = build_problem(spec, targets)
    values = np.array([(p.lower + p.upper) / 2 for p in spec.parameters])
    bare = _bare_neuron(spec) if spec.model.simulator == "neuron" else None
    return simulator, problem, values, bare


def bare_seconds(spec: ProblemSpec, repeats: int) -> list[float]:
    """In this process: the model of ``spec`` built, one bare simulation to warm up, then the
    seconds of ``repeats`` more."""
    _, _, _, bare = built_model(spec)
    if bare is None:
        raise UserError(
            f"{spec.name}: only a model of simulator neuron has a bare simulation to time "
            f"(this one: {spec.model.simulator})"
        )
    bare()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        bare()
        seconds.append(time.perf_counter() - started)
    return seconds
