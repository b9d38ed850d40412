"""Helpers of the cluster tests: the UC1 run they all repeat and the comparison with it."""

from __future__ import annotations

import time

import numpy as np

# The UC1 run every fault test repeats: small, deterministic (same seed, same result).
POPULATION, GENERATIONS, SEED = 6, 3, 5


def uc1_spec():
    from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
    from neuroptimus.usecases import problem_path

    return with_overrides(
        load_problem(problem_path("hh")),
        population=POPULATION, generations=GENERATIONS, seed=SEED,
    )  # fmt: skip


def assert_same_run(ours_path, theirs_path) -> dict[str, np.ndarray]:
    """Every evaluation stored exactly once, and the same result bit for bit (the evaluation
    seconds, messages and worker names may differ)."""
    from neuroptimus.storage.runs.run_store import RunStore

    ours, theirs = RunStore.open(ours_path), RunStore.open(theirs_path)
    a, b = ours.evaluations(), theirs.evaluations()
    n = ours.committed_evaluations
    assert n == theirs.committed_evaluations
    for name, values in a.items():
        assert len(values) == n, name  # no duplicated or left-over rows
    generations = ours.committed_generations
    population = n // generations
    assert np.array_equal(a["generation"], np.repeat(np.arange(generations), population))
    for name in ("parameters", "errors", "total", "generation", "status"):
        assert np.array_equal(a[name], b[name]), name
    assert ours.best() == theirs.best()
    assert ours.attrs["finished"] == theirs.attrs["finished"]
    assert np.array_equal(ours.arrays("best")["trace"], theirs.arrays("best")["trace"])
    for name in ("best", "cumulative_best", "evaluations", "failed"):
        assert np.array_equal(ours.generations()[name], theirs.generations()[name]), name
    return a


def wait_until(condition, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def committed(path) -> int:
    from neuroptimus.storage.runs.run_store import RunStore

    try:
        return RunStore.open(path).committed_generations
    except Exception:
        return 0


def worker_evaluating(client, names: set[str] | None = None):
    """The pid of a worker process whose watchdog slot shows an evaluation running now (of one
    of the individuals ``names``, ``hang_watchdog.fingerprint``, if given), or None: a worker
    busy with a chunk may still be building its model or handing results over."""
    from neuroptimus.optimization.execution.hang_watchdog import SLOT, open_slot, slot_path

    workers = client.run_on_scheduler(
        lambda dask_scheduler: [(s.nanny, s.pid) for s in dask_scheduler.workers.values()]
    )
    for nanny, pid in workers:
        slot = open_slot(slot_path(nanny, pid), create=False) if nanny and pid else None
        if slot is None:
            continue
        running, _, name, owner = SLOT.unpack_from(slot)
        slot.close()
        if running and owner == pid and (names is None or name.decode() in names):
            return pid
    return None
