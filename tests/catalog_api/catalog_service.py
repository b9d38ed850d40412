"""What the catalog API tests share: a catalog app on a fresh database with two users' tokens,
and the files a user uploads for one real run."""

from __future__ import annotations

import copy
import io
import json
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy
from fastapi.testclient import TestClient

from neuroptimus.storage.catalog.db.database import open_catalog
from neuroptimus.storage.catalog.web.app import create_app

SMALL_UPLOADS = 2 * 2**20  # the test apps' upload limit: "huge" files stay small


@dataclass(frozen=True)
class RealRun:
    """What a user uploads for the session's real run."""

    metadata: dict[str, Any]
    store_zip: bytes

    @property
    def run_id(self) -> str:
        return self.metadata["run_id"]

    def metadata_bytes(self) -> bytes:
        return json.dumps(self.metadata).encode()

    def variant(self, **changes: Any) -> dict[str, Any]:
        """The metadata of another run of the same problem (a new run id unless given)."""
        data = copy.deepcopy(self.metadata)
        data["run_id"] = str(uuid.uuid4())
        data.update(changes)
        return data


def zip_folder(folder: Path, top: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


@dataclass
class Service:
    """A catalog app on a fresh database, its files folder, and tokens of two users."""

    client: TestClient
    catalog: Any
    files: Path
    url: str
    alice: str  # read + upload
    bob: str  # read + upload
    _engine: sqlalchemy.Engine | None = None
    _tables: list[str] = field(default_factory=list)

    def auth(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def upload(
        self,
        metadata: bytes | dict,
        token: str | None,
        *,
        store: bytes | None = None,
        archive: tuple[str, bytes] | None = None,
        visibility: str | None = None,
        run_id: str | None = None,
    ):
        """POST (or PUT with ``run_id``) a run as the multipart form ``catalog push`` sends."""
        if isinstance(metadata, dict):
            metadata = json.dumps(metadata).encode()
        parts: dict[str, Any] = {"metadata": ("metadata.json", metadata, "application/json")}
        if store is not None:
            parts["store"] = ("run.zarr.zip", store, "application/zip")
        if archive is not None:
            parts["archive"] = (archive[0], archive[1], "application/octet-stream")
        data = {"visibility": visibility} if visibility else None
        if run_id is None:
            return self.client.post(
                "/api/v1/runs", files=parts, data=data, headers=self.auth(token)
            )
        return self.client.put(
            f"/api/v1/runs/{run_id}", files=parts, data=data, headers=self.auth(token)
        )

    def close(self) -> None:
        self.client.close()
        self.catalog.close()
        if self._engine is not None:
            self._engine.dispose()

    def leftovers(self) -> list[str]:
        """Every file under the files folder."""
        return sorted(
            p.relative_to(self.files).as_posix() for p in self.files.rglob("*") if p.is_file()
        )

    def row_counts(self) -> dict[str, int]:
        """Rows of every table (read with an engine of our own, not the catalog's code)."""
        if self._engine is None:
            url = self.url.replace("postgresql://", "postgresql+psycopg://")
            self._engine = sqlalchemy.create_engine(url)
        with self._engine.connect() as connection:
            if not self._tables:
                self._tables = sqlalchemy.inspect(connection).get_table_names()
            assert "runs" in self._tables, self._tables  # the catalog's tables are seen
            return {
                name: connection.execute(sqlalchemy.text(f'SELECT count(*) FROM "{name}"')).scalar()
                for name in self._tables
                if name != "alembic_version"
            }


def make_service(catalog_url: str, files: Path, **settings: Any) -> Service:
    catalog = open_catalog(catalog_url)
    app = create_app(catalog, files, max_upload_bytes=SMALL_UPLOADS, **settings)
    return Service(
        client=TestClient(app),
        catalog=catalog,
        files=files,
        url=catalog_url,
        alice=catalog.issue_token("alice"),
        bob=catalog.issue_token("bob"),
    )
