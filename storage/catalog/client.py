"""Talk to a results catalog server (``neuroptimus catalog serve``) over its JSON API.

Used by ``neuroptimus catalog push/pull/reproduce/verify`` and by the flows' push at the end of
a run. Every failure (no route to the server, a refused token, a 4xx answer) becomes one
``CatalogClientError`` whose message is the server's own sentence, ready to print as one line.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import httpx

from neuroptimus.optimization.errors import InfrastructureError, NeuroptimusError
from neuroptimus.storage.catalog.intake.ingest import (
    IngestError,
    read_metadata_file,
    run_from_metadata,
    store_metadata,
)
from neuroptimus.storage.catalog.schema import CatalogRun
from neuroptimus.storage.runs.run_store import FROM_CATALOG

TOKEN_VARIABLE = "NEUROPTIMUS_CATALOG_TOKEN"
URL_VARIABLE = "NEUROPTIMUS_CATALOG_URL"
API = "/api/v1"
_RUN_URL = re.compile(
    r"^(?P<server>https?://.+?)(?:/api/v1)?/runs/(?P<run_id>[0-9a-fA-F-]{36})(?:[/?#].*)?$"
)
_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# written by a running or resuming process, meaningless elsewhere
_NOT_SHIPPED = ("writer.lock", "inflight/")
# a run's saved state (pickles): a store from a catalog is never resumed, so never unpacked
_RUN_STATE = ("checkpoint.pkl", "journal.bin", "inflight", "writer.lock")


class CatalogClientError(NeuroptimusError, RuntimeError):
    """The catalog could not be reached or refused a request, or what was to be sent is not a
    run (one line, for the user). ``status``: the HTTP status of a refusal, ``UNREACHABLE``
    when no answer came, None for a mistake found here."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CatalogUnavailable(CatalogClientError, InfrastructureError):
    """No answer came, or the server failed (5xx): worth trying again later."""


UNREACHABLE = 0


def run_reference(id_or_url: str, server: str | None = None) -> tuple[str, str]:
    """``(server, run_id)`` of a run given as ``<server>/runs/<id>`` (a page or API address)
    or as a bare id with ``server`` (or ``NEUROPTIMUS_CATALOG_URL``)."""
    text = id_or_url.strip()
    match = _RUN_URL.match(text)
    if match:
        return match["server"].rstrip("/"), match["run_id"].lower()
    if _RUN_ID.match(text.lower()):
        server = server or os.environ.get(URL_VARIABLE)
        if not server:
            raise CatalogClientError(
                f"{text}: give the catalog with --server URL (or {URL_VARIABLE}), "
                "or the run's address <server>/runs/<id>"
            )
        return server.rstrip("/"), text.lower()
    raise CatalogClientError(
        f"{text!r} is neither a run id (a UUID) nor a run address <server>/runs/<id>"
    )


def zip_store(path: str | Path) -> bytes:
    """A run store folder as a zip (its files at the zip's root, as Zarr's ZipStore reads it),
    without the files only a running process uses."""
    root = Path(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            name = file.relative_to(root).as_posix()
            if any(name == skip or name.startswith(skip) for skip in _NOT_SHIPPED):
                continue
            archive.write(file, name)
    return buffer.getvalue()


def unzip_store(data: bytes, folder: str | Path, source: str = "a results catalog") -> Path:
    """Unpack a downloaded store zip into ``folder``, refusing entries that would land outside
    it (absolute paths, ``..``) or links. The run's saved state (checkpoint, journal, in-flight
    records: pickles of its uploader's making) is left out, and the store is marked as
    ``source``'s so that ``neuroptimus resume`` refuses it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise CatalogClientError(f"the store download is not a zip file: {error}") from None
    with archive:
        for entry in archive.infolist():
            name = PurePosixPath(entry.filename)
            is_link = (entry.external_attr >> 16) & 0o170000 == 0o120000
            if name.is_absolute() or ".." in name.parts or is_link:
                raise CatalogClientError(f"the store zip holds an unsafe entry {entry.filename!r}")
        kept = [e for e in archive.infolist() if not _run_state(PurePosixPath(e.filename))]
        archive.extractall(folder, kept)
    root = store_root(folder)
    (root / FROM_CATALOG).write_text(json.dumps({"source": source}) + "\n")
    return root


def _run_state(name: PurePosixPath) -> bool:
    """A checkpoint, journal or in-flight record, at the store's top or in its one folder."""
    return bool({*name.parts[:2]} & set(_RUN_STATE))


def store_root(folder: Path) -> Path:
    """The store in an unpacked zip: at its top, or in its one top-level folder (a zipped
    ``run.zarr`` folder)."""
    if (folder / "zarr.json").is_file():
        return folder
    inside = [p for p in folder.iterdir() if (p / "zarr.json").is_file()]
    if len(inside) != 1:
        raise CatalogClientError("the store zip holds no Zarr store (no zarr.json at its top)")
    return inside[0]


class CatalogClient:
    """A session with one catalog server; ``token`` defaults to ``NEUROPTIMUS_CATALOG_TOKEN``."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.server = server.rstrip("/")
        self.token = token if token is not None else os.environ.get(TOKEN_VARIABLE)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.server + API, headers=headers, timeout=timeout)

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def run_url(self, run_id: str) -> str:
        """The page of a run (what ``push`` prints and ``pull`` accepts)."""
        return f"{self.server}/runs/{run_id}"

    # -- requests ------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:  # no route, refused connection, timeout
            raise CatalogUnavailable(
                f"cannot reach the catalog at {self.server}: {error or type(error).__name__}",
                UNREACHABLE,
            ) from None
        if response.status_code >= 400:
            refusal = CatalogUnavailable if response.status_code >= 500 else CatalogClientError
            raise refusal(
                f"the catalog at {self.server} answered {response.status_code}: "
                f"{_detail(response)}",
                response.status_code,
            )
        return response

    def put_run(
        self,
        run_id: str | None,
        metadata: bytes,
        store_zip: bytes | None = None,
        visibility: str = "public",
    ) -> tuple[dict[str, Any], bool]:
        """Upload a run (idempotent by ``run_id``; None: the catalog names it, as it does the
        original tool's runs): its answer and whether it was new."""
        files: dict[str, tuple[str, bytes, str]] = {
            "metadata": ("metadata.json", metadata, "application/json")
        }
        if store_zip is not None:
            files["store"] = ("store.zip", store_zip, "application/zip")
        method, path = ("PUT", f"/runs/{run_id}") if run_id else ("POST", "/runs")
        response = self._request(method, path, files=files, data={"visibility": visibility})
        return _json(response), response.status_code == 201

    def run(self, run_id: str) -> dict[str, Any]:
        return _json(self._request("GET", f"/runs/{run_id}"))

    def download(self, run_id: str, name: str, missing_ok: bool = False) -> bytes | None:
        """One of a run's files: ``metadata.json``, ``problem.yaml``, ``store.zip``,
        ``archive``; None for a file the run does not have, with ``missing_ok``."""
        try:
            return self._request("GET", f"/runs/{run_id}/{name}").content
        except CatalogClientError as error:
            if missing_ok and error.status == 404:
                return None
            raise

    def catalog_run(self, run_id: str) -> CatalogRun:
        """The run as the catalog records it, read from its metadata.json by our own ingest."""

        data = json.loads(self.download(run_id, "metadata.json") or b"null")
        try:
            return run_from_metadata(data)
        except IngestError as error:
            raise CatalogClientError(f"run {run_id}: {error}") from None

    def post_verification(self, run_id: str, result: dict[str, Any]) -> list[dict[str, Any]]:
        """Record ``verify_best``'s result (needs a token with the ``verify`` scope); the run's
        verifications."""
        body = {key: result.get(key) for key in ("method", "reported", "reproduced", "ok")}
        body["details"] = {**result.get("details", {}), "rel_diff": result.get("rel_diff")}
        return _json(self._request("POST", f"/runs/{run_id}/verifications", json=body))

    def me(self) -> dict[str, Any]:
        """Who the token belongs to: ``{handle, scopes, is_admin}``."""
        return _json(self._request("GET", "/me"))

    def verifications(self, run_id: str) -> list[dict[str, Any]]:
        return _json(self._request("GET", f"/runs/{run_id}/verifications"))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise CatalogClientError(
            f"the catalog answered {response.status_code} with something other than JSON"
        ) from None


def _detail(response: httpx.Response) -> str:
    """The server's one sentence (``{"detail": …}``), else the start of its answer."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # FastAPI's validation errors: the first one
        first = detail[0] if detail else {}
        where = ".".join(str(part) for part in first.get("loc", []))
        detail = f"{where}: {first.get('msg', '')}" if where else first.get("msg")
    text = str(detail or response.text or response.reason_phrase)
    return " ".join(text.split())[:300]


class Pushed(NamedTuple):
    run_id: str
    url: str
    created: bool  # False: the catalog had this run already (same content)
    warnings: list[str]  # what the catalog noted (an unfinished run, a store not added …)


def run_upload(path: str | Path) -> tuple[CatalogRun, bytes, Path | None]:
    """``(run, metadata.json bytes, store folder or None)`` of a run store or a metadata.json
    file (ours or the original tool's), checked here before anything is sent."""

    path = Path(path)
    if path.is_dir():
        try:  # written afresh: a store's metadata.json may predate its last generations
            data = store_metadata(path, hash_files=True)  # here, where its files are
        except IngestError as error:
            raise CatalogClientError(str(error)) from None
        try:
            run = run_from_metadata(data)
        except IngestError as error:
            raise CatalogClientError(str(error)) from None
        return run, json.dumps(data, allow_nan=False).encode(), path
    try:
        run = read_metadata_file(path)
    except IngestError as error:
        raise CatalogClientError(str(error)) from None
    return run, path.read_bytes(), None


def push_run(
    client: CatalogClient, path: str | Path, with_store: bool = False, visibility: str = "public"
) -> Pushed:
    """Upload one run store or metadata.json (with the store zipped if ``with_store``)."""
    run, metadata, store = run_upload(path)
    store_zip = zip_store(store) if with_store and store is not None else None
    # the original tool's runs get their id from the catalog
    # (neuroptimus.storage.catalog.db.run_ids)
    own_id = None if run.source_format == "original-neuroptimus" else run.run_id
    answer, created = client.put_run(own_id, metadata, store_zip, visibility)
    notes = [str(note) for note in answer.get("warnings") or []]
    run_id = answer.get("run_id") or run.run_id
    return Pushed(run_id, client.run_url(run_id), created, notes)
