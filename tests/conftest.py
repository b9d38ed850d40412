"""Shared fixtures: the upstream data mirror, Prefect's test harness, problem files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("NEUROPTIMUS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
UPSTREAM = SHARED / "usecases" / "upstream"
os.environ.setdefault("NEUROPTIMUS_DATA_MIRROR", str(UPSTREAM))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary local server of a run can be slow to start on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@pytest.fixture(scope="session")
def upstream() -> Path:
    if not UPSTREAM.is_dir():
        pytest.skip(f"upstream mirror {UPSTREAM} not found (set NEUROPTIMUS_SHARED)")
    return UPSTREAM


@pytest.fixture(scope="session")
def prefect_harness():
    """A real, temporary Prefect server for the flows of this test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
