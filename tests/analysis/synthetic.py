"""Synthetic run stores for the tests: small stores written through the store's own API
(the generator is the large-store benchmark's, ``neuroptimus.flows.benchmarks.large_store``),
generation by generation as the optimize loop writes them, and a stand-in simulator for their
traces."""

from __future__ import annotations

import numpy as np

from neuroptimus.flows.benchmarks.large_store import (
    create_store,
    problem_spec,
    synthetic_population,
    synthetic_trace,
)
from neuroptimus.optimization.loop.runner import Checkpoint
from neuroptimus.optimization.simulators import Trace
from neuroptimus.storage.runs.run_store import RunStore

population = synthetic_population


def simulate_synthetic(snapshot, row: int) -> list[Trace]:
    """Stands in for the simulator (tests, demos): a spike train whose rate depends on the
    row, sampled like the target."""
    time_ms, trace = synthetic_trace(snapshot.spec, jitter=0.1 * (row % 7))
    return [Trace(values=trace, dt_ms=float(time_ms[1] - time_ms[0]))]


def append_generation(store: RunStore, rng: np.random.Generator, size: int | None = None) -> None:
    """Write and commit the next generation exactly as the optimize loop does."""
    spec = store.attrs["spec"]
    size = size or spec["algorithm"]["population"]
    generation, offset = store.committed_generations, store.committed_evaluations
    points, result = synthetic_population(spec, generation, size, rng)
    store.write_generation(generation, offset, points, result, seconds=0.01)
    store.commit(Checkpoint(generation + 1, offset + size, b"", {}))


def finish(store: RunStore, reason: str = "budget reached") -> None:
    """Mark the run finished and store its best individual's (synthetic) trace."""
    best = store.best()
    time_ms, trace = synthetic_trace(store.attrs["spec"], jitter=0.2)
    store.write_arrays(
        "best",
        {
            "parameters": np.array(list(best["parameters"].values())),
            "errors": np.array(list(best["errors"].values())),
            "total": np.array(best["total"]),
            "trace": trace[:, None],
            "time": time_ms,
        },
    )
    store.set_attributes(finished=reason)


__all__ = [
    "append_generation",
    "create_store",
    "finish",
    "population",
    "problem_spec",
    "simulate_synthetic",
    "synthetic_trace",
]
