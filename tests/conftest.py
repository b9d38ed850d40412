"""Shared fixtures: where the upstream data come from, Prefect's test harness.

The benchmark problems' upstream files are read through the product's own registry
(``neuroptimus.optimization.problem.data.fetch``). With ``../shared/usecases/upstream`` and
``../shared/usecases/bluepyopt`` present (or ``NEUROPTIMUS_SHARED`` pointing at a folder
holding them) the registry reads those mirrors; without them — a plain clone — the same tests
download each file once into the pooch cache and verify it. Nothing is skipped for a missing
mirror.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("NEUROPTIMUS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
UPSTREAM = SHARED / "usecases" / "upstream"
BLUEPYOPT = SHARED / "usecases" / "bluepyopt"  # BluePyOpt's files (names under bluepyopt/)
MIRRORS = [str(folder) for folder in (UPSTREAM, BLUEPYOPT) if folder.is_dir()]
if MIRRORS:
    os.environ.setdefault("NEUROPTIMUS_DATA_MIRROR", os.pathsep.join(MIRRORS))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The commands' shared Prefect server outlives the session by a minute, not ten.
os.environ.setdefault("NEUROPTIMUS_PREFECT_IDLE", "60")
# The temporary local server of a run can be slow to start on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def pytest_sessionstart(session: pytest.Session) -> None:
    # Most tests start processes that import the project (commands, Dask workers, report
    # processes). Where PYTHONDONTWRITEBYTECODE is set, as on many CI machines, each of them
    # would compile its modules again (a third of a second of CPU): compile them once, in the
    # controller, before the xdist workers start.
    if hasattr(session.config, "workerinput"):
        return
    import compileall

    root = Path(__file__).resolve().parents[1]
    for layer in ("optimization", "storage", "tasks", "flows", "analysis", "usecases"):
        compileall.compile_dir(root / layer, quiet=1)
    compileall.compile_dir(root / "neuroptimus", quiet=1, maxlevels=0)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Measurements a test records as ``record_property("printed", text)``, one line each
    (user properties reach the controller from xdist's workers, printed output does not)."""
    lines = [
        f"{report.nodeid}: {value}"
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for key, value in getattr(report, "user_properties", [])
        if key == "printed"
    ]
    if lines:
        terminalreporter.write_sep("=", "measured")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect server for the flows of this test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def hh_run_store(tmp_path_factory) -> Path:
    """One real, finished run store for the session's catalog tests (``hh``, CMA-ES,
    population 4 × 2 generations, seed 3): treat it as read-only."""
    from catalog_runs import hh_store

    return hh_store(tmp_path_factory.mktemp("catalog-run") / "hh.zarr")


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (skipped without Debian's postgresql)."""
    import shutil

    import postgres_server as servers

    if servers.binaries() is None:
        pytest.skip(
            "PostgreSQL tests need Debian's postgresql package (initdb, pg_ctl not found): "
            "apt-get install postgresql"
        )
    server = servers.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, tmp_path) -> str:
    """An empty catalog database: an SQLite file, or a fresh database of the session's
    PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    return request.getfixturevalue("postgres_server").fresh_database()


# Under pytest-xdist (`-n 2`), whole groups go to one worker: the tests of a file share their
# module fixtures, and every cluster test shares the session's one test SLURM. The groups that
# take longest are handed out first (in this order: --no-loadscope-reorder keeps xdist from
# sorting them by their number of tests), so neither worker is left with a long tail.
SLOWEST_FIRST = ("hpc", "deployments", "flows")


def _group(item: pytest.Item) -> str:
    path = Path(str(item.path)).relative_to(Path(__file__).resolve().parent)
    return path.parts[0] if path.parts[0] == "hpc" else path.as_posix()


def _loadgroup(config: pytest.Config) -> bool:
    """Whether this run hands out groups (``--dist loadgroup``). On the workers, which
    collect the tests, xdist sets ``dist`` to "no" and ``loadgroup`` to that."""
    return bool(getattr(config.option, "loadgroup", False))


def pytest_itemcollected(item: pytest.Item) -> None:
    # marked as it is collected: xdist names a test by its group before any later hook
    if _loadgroup(item.config):
        item.add_marker(pytest.mark.xdist_group(_group(item)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _loadgroup(config):
        return

    def rank(item: pytest.Item) -> int:
        top = Path(str(item.path)).relative_to(Path(__file__).resolve().parent).parts[0]
        return SLOWEST_FIRST.index(top) if top in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # stable: a file's tests keep their order
