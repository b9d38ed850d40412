"""Shared fixtures: where the upstream data come from, Prefect's test harness.

The benchmark problems' upstream files are read through the product's own registry
(``optimization.data.fetch``). With ``../shared/usecases/upstream`` present (or
``NEUROPTIMUS_SHARED`` pointing at a folder holding it) the registry reads that mirror;
without it — a plain clone — the same tests download each file once into the pooch cache and
verify it. Nothing is skipped for a missing mirror.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("NEUROPTIMUS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
UPSTREAM = SHARED / "usecases" / "upstream"
if UPSTREAM.is_dir():
    os.environ.setdefault("NEUROPTIMUS_DATA_MIRROR", str(UPSTREAM))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary local server of a run can be slow to start on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


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
