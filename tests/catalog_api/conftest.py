"""The catalog API on a fresh catalog (SQLite and PostgreSQL, from ``catalog_url``), with the
files of one real run (the session's ``hh`` store: its metadata.json and its zipped store)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from catalog_service import RealRun, Service, make_service, zip_folder

from neuroptimus.storage.runs.metadata import run_metadata
from neuroptimus.storage.runs.run_store import RunStore


@pytest.fixture(scope="session")
def real_run(hh_run_store) -> RealRun:
    return RealRun(run_metadata(RunStore.open(hh_run_store)), zip_folder(hh_run_store, "hh.zarr"))


@pytest.fixture
def service(catalog_url, tmp_path) -> Iterator[Service]:
    service = make_service(catalog_url, tmp_path / "files")
    yield service
    service.close()
