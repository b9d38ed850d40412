"""Fronts kept incrementally and hypervolumes computed beside the run: the same fronts as a
brute-force filter, exact volumes where cheap, a stated error past the budget, pending ones
recomputed after a kill, and nothing of it for runs that do not keep fronts."""

from __future__ import annotations

import time

import numpy as np
import pytest

from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.loop.runner import Checkpoint
from neuroptimus.optimization.scoring.pareto import hypervolume, non_dominated
from neuroptimus.storage.runs import hypervolume as hv
from neuroptimus.storage.runs.run_store import RunStore


def _result(errors, status=None):
    errors = np.asarray(errors, dtype=float)
    n = len(errors)
    status = np.zeros(n, np.int8) if status is None else np.asarray(status, np.int8)
    return BatchResult(errors, errors.sum(axis=1), status, [""] * n, np.zeros(n), ["w"] * n)


def _store(tmp_path, k, weights=None, **attributes):
    weights = [1.0] * k if weights is None else weights
    attributes.setdefault("hypervolume", {"finish_timeout_s": 300})  # a busy machine is slow
    return RunStore.create(
        tmp_path / "run.zarr", ["a"], [f"c{j}" for j in range(k)],
        {"weights": weights, "penalty": 10.0, "pareto_fronts": True, **attributes},
    )  # fmt: skip


def _sphere(n, k, seed=0):
    """Mutually non-dominated points: the positive part of a sphere (the worst case)."""
    points = np.abs(np.random.default_rng(seed).normal(size=(n, k)))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_incremental_fronts_match_a_brute_force_filter(tmp_path):
    rng = np.random.default_rng(1)
    weights = np.array([1.0, 0.5, 2.0])
    store = _store(tmp_path, 3, weights.tolist())
    everything, statuses, offset = [], [], 0
    for generation in range(8):
        for _attempt in range(1 + (generation == 3)):  # generation 3 is retried
            errors = rng.integers(0, 6, size=(7, 3)).astype(float)  # ties and duplicates
            status = (rng.random(7) < 0.2).astype(np.int8)
            store.write_generation(generation, offset, np.zeros((7, 1)), _result(errors, status),
                                   0.1)  # fmt: skip
        if generation == 5:  # killed before the commit: resumed from generation 5 again
            store = RunStore.open(store.path, mode="r+")
            store.rollback(store.checkpoint())
            store.write_generation(generation, offset, np.zeros((7, 1)),
                                   _result(errors, status), 0.1)  # fmt: skip
        everything.append(errors)
        statuses.append(status)
        offset += 7
        store.commit(Checkpoint(generation + 1, offset, b"", {}))
    reader = RunStore.open(store.path)
    for generation in range(8):
        errors = np.concatenate(everything[: generation + 1]) * weights
        ok = np.flatnonzero(np.concatenate(statuses[: generation + 1]) == 0)
        expected = ok[non_dominated(errors[ok])]
        assert sorted(reader.front(generation).tolist()) == sorted(expected.tolist())
        assert reader.generations()["front_size"][generation] == len(expected)
        volume = hypervolume(errors[expected], 10.0 * weights)
        assert reader.generations()["hypervolume"][generation] == pytest.approx(volume)


def test_many_objectives_exact_in_the_helper(tmp_path):
    store = _store(tmp_path, 5)
    fronts = []
    for generation in range(3):
        errors = _sphere(12, 5, seed=generation) * (3 - generation)
        store.write_generation(generation, 12 * generation, np.zeros((12, 1)), _result(errors),
                               0.1)  # fmt: skip
        store.commit(Checkpoint(generation + 1, 12 * (generation + 1), b"", {}))
        fronts.append(errors)
    store.set_attributes(finished="done")  # waits for the helper
    stats = RunStore.open(store.path).generations()
    assert stats["hypervolume_method"].tolist() == [hv.EXACT] * 3
    assert stats["hypervolume_error"].tolist() == [0.0] * 3
    rows = np.concatenate(fronts)
    for generation in range(3):
        front = rows[store.front(generation)]
        assert stats["hypervolume"][generation] == pytest.approx(hypervolume(front, [10.0] * 5))
    assert store.group["generations"]["hypervolume"].shape == (3,)  # cut when finished


def test_past_the_budget_an_approximation_with_its_error(tmp_path):
    """A 12-objective front of 300 points (exact: minutes) costs the generation nothing and
    ends approximate, with its relative error stored."""
    budgets = {
        "exact_budget_s": 0.3,
        "approx_budget_s": 0.5,
        "delta": 0.001,
        "finish_timeout_s": 300,
    }  # a busy machine starves the (lower-priority) helper
    store = _store(tmp_path, 12, hypervolume=budgets)
    errors = _sphere(300, 12)
    started = time.perf_counter()
    store.write_generation(0, 0, np.zeros((300, 1)), _result(errors), 0.1)
    store.commit(Checkpoint(1, 300, b"", {}))
    assert time.perf_counter() - started < 10  # the exact volume alone takes minutes
    store.set_attributes(finished="done")
    stats = store.generations()
    assert stats["hypervolume_method"].tolist() == [hv.FPRAS]
    eps = stats["hypervolume_error"][0]
    assert hv.EPS_RANGE[0] <= eps <= hv.EPS_RANGE[1]
    # bounds of a union of boxes: its largest box, the sum of its boxes
    boxes = np.prod(10.0 - errors, axis=1)
    assert boxes.max() * (1 - eps) <= stats["hypervolume"][0] <= boxes.sum() * (1 + eps)


def test_the_approximation_is_within_its_stated_error():
    points = _sphere(40, 6, seed=3)
    exact = hypervolume(points, [1.5] * 6)
    service = hv.HypervolumeService(np.full(6, 1.5), exact_budget_s=0.0, delta=0.001)
    service.submit(0, points)
    (volume,) = service.drain(120)
    service.close()
    assert volume.method == hv.FPRAS and 0 < volume.error
    assert abs(volume.value - exact) <= volume.error * exact


def test_a_helper_that_falls_behind_skips_to_the_newest_front():
    service = hv.HypervolumeService(np.full(4, 2.0), keep_up_s=0.0)
    for generation in range(4):  # queued while the helper starts
        service.submit(generation, _sphere(20, 4, seed=generation))
    volumes = {v.generation: v for v in service.drain(120)}
    service.close()
    assert volumes[0].method == hv.EXACT and volumes[3].method == hv.EXACT
    assert [volumes[g].method for g in (1, 2)] == [hv.SKIPPED] * 2
    assert np.isnan(volumes[1].value)


def test_a_volume_pending_when_the_run_was_killed_is_computed_on_resume(tmp_path):
    store = _store(tmp_path, 5)
    errors = _sphere(10, 5)
    store.write_generation(0, 0, np.zeros((10, 1)), _result(errors), 0.1)
    store.commit(Checkpoint(1, 10, b"", {}))
    store.close()  # the flow process dies: the helper's result never reaches the store
    killed = RunStore.open(store.path).generations()
    assert killed["hypervolume_method"].tolist() == [hv.PENDING]
    assert np.isnan(killed["hypervolume"][0])
    resumed = RunStore.open(store.path, mode="r+")
    resumed.rollback(resumed.checkpoint())
    resumed.set_attributes(finished="done")
    stats = RunStore.open(store.path).generations()
    assert stats["hypervolume_method"].tolist() == [hv.EXACT]
    assert stats["hypervolume"][0] == pytest.approx(hypervolume(errors, [10.0] * 5))


def test_runs_without_fronts_have_none_and_readers_cope(tmp_path):
    from neuroptimus.analysis.pareto_figures import hypervolume_figure
    from neuroptimus.analysis.snapshot import read_snapshot

    store = RunStore.create(
        tmp_path / "single.zarr", ["a"], ["c0", "c1"],
        {"weights": [1.0, 1.0], "penalty": 10.0, "pareto_fronts": False,
         "spec": {"name": "x", "parameters": []}, "algorithm": {"label": "A"}, "seed": 1},
    )  # fmt: skip
    store.write_generation(0, 0, np.zeros((3, 1)), _result(_sphere(3, 2)), 0.1)
    store.commit(Checkpoint(1, 3, b"", {}))
    assert "fronts" not in store.group and "hypervolume" not in store.generations()
    assert store.front().tolist() == []
    snapshot = read_snapshot(store.path)
    assert snapshot.front().tolist() == []
    layout = hypervolume_figure([snapshot])
    (curve,) = layout.values()
    assert len(curve) == 0 and "No Pareto fronts" in curve.opts.get().kwargs["title"]


def test_fronts_are_kept_for_multi_objective_algorithms_or_on_request():
    from neuroptimus.optimization.problem.problem_file import load_problem, with_overrides
    from neuroptimus.storage.runs.create import keeps_fronts
    from neuroptimus.usecases import problem_path

    spec = load_problem(problem_path("hh"))
    assert not keeps_fronts(spec)  # CMA-ES sees the weighted sum
    assert keeps_fronts(with_overrides(spec, algorithm="pygmo-nsga2"))
    assert keeps_fronts(spec.model_copy(update={"pareto_fronts": True}))
    nsga2 = with_overrides(spec, algorithm="pygmo-nsga2")
    assert not keeps_fronts(nsga2.model_copy(update={"pareto_fronts": False}))
