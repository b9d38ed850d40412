"""Fixtures of the catalog tests: a migrated catalog on each database, the session's real run."""

from __future__ import annotations

import pytest

from neuroptimus.storage.catalog.db.database import open_catalog
from neuroptimus.storage.catalog.intake.ingest import run_from_store


@pytest.fixture
def catalog(catalog_url):
    opened = open_catalog(catalog_url)
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def hh_run(hh_run_store):
    """The session's real ``hh`` run as the catalog records it."""
    return run_from_store(hh_run_store)
