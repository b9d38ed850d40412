"""Snapshots read committed rows only, and re-read cheaply while a writer appends."""

from __future__ import annotations

import numpy as np

from neuroptimus.analysis.snapshot import read_snapshot, refresh
from neuroptimus.optimization.loop.runner import Checkpoint
from neuroptimus.storage.runs.run_store import RunStore
from tests.analysis import synthetic


def test_snapshot_holds_the_committed_rows(store):
    snapshot = read_snapshot(store.path)
    rows = RunStore.open(store.path).evaluations()
    assert snapshot.committed_evaluations == 60 and snapshot.committed_generations == 5
    for name in ("parameters", "errors", "total", "generation", "status"):
        assert np.array_equal(snapshot.rows[name], rows[name])
    assert snapshot.label == "CMA-ES (cmaes) · seed 1"
    assert np.all((snapshot.unit >= 0) & (snapshot.unit <= 1))
    assert np.array_equal(snapshot.front(), store.front())
    assert snapshot.best_row() == int(np.argmin(rows["total"]))
    assert snapshot.best_trace["trace"].shape == snapshot.target["trace"].shape


def test_uncommitted_rows_stay_invisible_until_the_commit(new_store):
    store = new_store(generations=2, finished=False)
    before = read_snapshot(store.path)
    spec, rng = store.attrs["spec"], np.random.default_rng(7)
    points, result = synthetic.population(spec, 2, 12, rng)
    store.write_generation(2, 24, points, result, seconds=0.01)  # written, not committed
    assert np.array_equal(store.group["evaluations"]["total"][24:36], result.total)  # on disk
    during = read_snapshot(store.path, before)
    assert during is before  # nothing committed: the same snapshot, nothing re-read
    store.commit(Checkpoint(3, 36, b"", {}))
    after = read_snapshot(store.path, before)
    assert after.committed_evaluations == 36 and after.committed_generations == 3
    assert np.array_equal(after.rows["parameters"][24:], points)
    assert np.array_equal(after.rows["parameters"][:24], before.rows["parameters"])


def test_refresh_reports_which_stores_changed(new_store):
    a = new_store(seed=1, generations=2, finished=False)
    b = new_store(seed=2, generations=2, finished=False)
    snapshots = {str(s.path): read_snapshot(s.path) for s in (a, b)}
    synthetic.append_generation(b, np.random.default_rng(3))
    fresh, changed = refresh(snapshots)
    assert changed == [str(b.path)]
    assert fresh[str(a.path)] is snapshots[str(a.path)]
    assert fresh[str(b.path)].committed_generations == 3
