"""Run stores written before the modules moved into ``neuroptimus`` still resume: their pickles
name ``optimization.runner`` and ``optimization.evaluation``, read from the package. The fixtures
in tests/data/legacy_store were written by the code before the rename (see its README)."""

from __future__ import annotations

import importlib.util
import io
import pickle
import pickletools
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from neuroptimus.optimization import pickles
from neuroptimus.optimization.algorithms import create_algorithm
from neuroptimus.optimization.evaluation.individual import BatchResult
from neuroptimus.optimization.loop.runner import Checkpoint, Stopping
from neuroptimus.storage.runs import journal as journals
from neuroptimus.storage.runs.inflight import InflightLog, read_records

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_store"
ALGORITHMS = ("cmaes", "random", "inspyred-ga", "pygmo-de", "scipy-nelder-mead")
VALUES = np.arange(6.0).reshape(2, 3)  # the streamed rows of generation 1


def _old_names(data: bytes) -> set[str]:
    """The old top-level module names a pickle refers to (protocol 4+: strings before
    STACK_GLOBAL)."""
    return {
        arg for _, arg, _ in pickletools.genops(io.BytesIO(data))
        if isinstance(arg, str) and arg.partition(".")[0] in pickles.OLD_LAYERS
    }  # fmt: skip


@pytest.fixture
def user_modules_first(tmp_path, monkeypatch):
    """A user's own ``optimization`` and ``storage`` first on sys.path: importing them fails."""
    for name in ("optimization", "storage"):
        (tmp_path / f"{name}.py").write_text(f"raise ImportError('the user {name}.py')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m.partition(".")[0] in pickles.OLD_LAYERS]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_checkpoint_written_before_the_rename_resumes_the_algorithm(name, user_modules_first):
    folder = LEGACY / name
    data = (folder / "checkpoint.pkl").read_bytes()
    assert _old_names(data) == {"optimization.runner"}  # the fixture really has the old names
    with open(folder / "checkpoint.pkl", "rb") as handle:
        checkpoint = pickles.load(handle)
    assert isinstance(checkpoint, Checkpoint) and checkpoint.generation == 1
    journal = journals.read(folder / "journal.bin", checkpoint.journal_bytes)
    assert len(journal) == checkpoint.journal_records
    restored = create_algorithm(name, 3, 8, 1)
    restored.restore_journal(checkpoint.algorithm_state, journal)
    uninterrupted = create_algorithm(name, 3, 8, 1)
    X = uninterrupted.ask()
    F = (X**2).sum(axis=1, keepdims=True)
    uninterrupted.tell(X, F, F[:, 0])
    try:
        np.testing.assert_array_equal(restored.ask(), uninterrupted.ask())
    finally:
        restored.close()
        uninterrupted.close()
    stopping = Stopping.from_state(checkpoint.stopping_state, 8)
    assert stopping.best == F.min()


def test_plain_unpickling_would_import_the_users_module(user_modules_first):
    """What the mapping prevents: the old name resolved through sys.path."""
    with pytest.raises(ImportError, match="the user optimization.py"):
        pickle.loads((LEGACY / "cmaes" / "checkpoint.pkl").read_bytes())


def test_streamed_results_written_before_the_rename_are_reused(tmp_path, user_modules_first):
    (path,) = (LEGACY / "inflight").iterdir()
    assert "optimization.evaluation" in _old_names(path.read_bytes()[12:])  # after the header
    records, length = read_records(path)
    assert length == path.stat().st_size  # a record that fails to load would count as torn
    ((generation, values, result),) = records
    assert generation == 1 and isinstance(result, BatchResult)
    np.testing.assert_array_equal(values, VALUES)
    # as a resumed run opens them (a copy: a torn record would be cut off the file)
    shutil.copytree(LEGACY / "inflight", tmp_path / "inflight")
    log = InflightLog(tmp_path / "inflight", 1)
    try:
        assert log.loaded == 2
        first, second = log.lookup(1, VALUES)
        assert first.total.tolist() == [0.5] and second.worker == ["w1"]
    finally:
        log.close()


def test_old_names_map_into_the_package_and_others_are_left_alone():
    assert pickles.new_name("optimization.runner") == "neuroptimus.optimization.loop.runner"
    assert pickles.new_name("storage.journal") == "neuroptimus.storage.runs.journal"
    assert pickles.new_name("neuroptimus.flows.run") == "neuroptimus.flows.run"
    assert pickles.new_name("numpy.core.multiarray") == "numpy.core.multiarray"
    assert pickles.new_name("optimizations.x") == "optimizations.x"


def test_every_moved_module_leads_to_a_module_that_exists():
    for old in pickles.MOVED:
        seen, module = set(), old
        while module in pickles.MOVED:  # what new_name walks, without looping for ever
            assert module not in seen, f"{old}: the moves loop at {module}"
            seen.add(module)
            module = pickles.MOVED[module]
        assert importlib.util.find_spec(module) is not None, f"{old} -> {module}: no such module"


def test_a_module_that_moved_twice_is_followed(monkeypatch):
    monkeypatch.setattr(pickles, "MOVED", {
        "neuroptimus.optimization.first_home": "neuroptimus.optimization.second.home",
        "neuroptimus.optimization.second.home": "neuroptimus.optimization.third.home",
    })  # fmt: skip
    assert pickles.new_name("optimization.first_home") == "neuroptimus.optimization.third.home"


# rename-imports: keep old names (this file is about them)
