"""The API's runs: upload (POST, or PUT by id), list and filter them (JSON pages or CSV),
read one run and its files, edit or delete it, and its verifications."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from neuroptimus.storage.catalog.bounds import RunQuery
from neuroptimus.storage.catalog.db.listing import MAX_CURSOR
from neuroptimus.storage.catalog.db.repository import Catalog, Forbidden, NotFound, Principal
from neuroptimus.storage.catalog.schema import Visibility
from neuroptimus.storage.catalog.web.auth import require
from neuroptimus.storage.catalog.web.request_helpers import (
    Uploader,
    Viewer,
    catalog_of,
    inside_files,
    remove_file,
    yaml_download,
)
from neuroptimus.storage.catalog.web.upload_intake import accept_upload

CSV_COLUMNS = (
    "run_id",
    "use_case_slug",
    "algorithm_key",
    "algorithm_label",
    "package",
    "seed",
    "budget",
    "population",
    "evaluations",
    "final_error",
    "evaluations_to_best",
    "wall_seconds",
    "stop_reason",
    "state",
    "verified",
    "uploader",
    "created_at",
    "uploaded_at",
)


class RunListQuery(RunQuery):
    """The run list's query: the filters the runs page reads too, and how to sort and page."""

    sort: str = Field(
        "-uploaded_at",
        max_length=20,
        description="final_error, evaluations, budget, seed, uploaded_at, created_at or "
        "wall_seconds; - first for descending",
    )
    limit: int = Field(50, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=MAX_CURSOR, description="a page's next_cursor")
    format: Literal["json", "csv"] | None = None


class RunChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    visibility: Visibility | None = None
    tags: list[Annotated[str, Field(max_length=100)]] | None = Field(None, max_length=50)
    notes: Annotated[str, Field(max_length=10_000)] | None = None


class Verification(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Annotated[str, Field(min_length=1, max_length=100)] = "resimulate-best"
    reported: float | None = Field(None, allow_inf_nan=False)
    reproduced: float | None = Field(None, allow_inf_nan=False)
    ok: bool
    details: dict[str, Any] = {}


# the files of an upload (POST and PUT take the same)
MetadataFile = Annotated[UploadFile, File(description="the run's metadata.json")]
StoreFile = Annotated[UploadFile | None, File(description="the run's .zarr folder, zipped")]
ArchiveFile = Annotated[UploadFile | None, File(description="model and target (zip/tar)")]


router = APIRouter(tags=["runs"])


@router.post("/runs", status_code=201)
def upload_run(
    request: Request,
    response: Response,
    background: BackgroundTasks,
    principal: Uploader,
    metadata: MetadataFile,
    store: StoreFile = None,
    archive: ArchiveFile = None,
    visibility: Annotated[Visibility, Form()] = "public",
) -> dict[str, Any]:
    """Upload a run: 201 when new, 200 when the same run is already there, 409 when a
    run of that id with other content (or another uploader) is."""
    result = accept_upload(
        request, principal, metadata, store, archive, visibility, background=background
    )
    response.status_code = 201 if result["created"] else 200
    return result


@router.put("/runs/{run_id}", status_code=201)
def put_run(
    run_id: str,
    request: Request,
    response: Response,
    background: BackgroundTasks,
    principal: Uploader,
    metadata: MetadataFile,
    store: StoreFile = None,
    archive: ArchiveFile = None,
    visibility: Annotated[Visibility, Form()] = "public",
) -> dict[str, Any]:
    """Upload run ``run_id`` (idempotent: what ``neuroptimus catalog push`` uses)."""
    result = accept_upload(
        request,
        principal,
        metadata,
        store,
        archive,
        visibility,
        run_id=run_id,
        background=background,
    )
    response.status_code = 201 if result["created"] else 200
    return result


@router.get("/runs")
def list_runs(
    request: Request,
    who: Viewer,
    query: Annotated[RunListQuery, Query()],
) -> Any:
    """Runs with filters, sorting (``sort=final_error``, ``-`` for descending) and keyset
    pagination (pass ``next_cursor`` back as ``cursor``); ``format=csv`` or ``Accept:
    text/csv`` streams every matching run as CSV."""
    filters = query.run_filter()
    sort, limit, cursor, format = query.sort, query.limit, query.cursor, query.format
    catalog = catalog_of(request)
    wants_csv = format == "csv" or (
        format is None and "text/csv" in request.headers.get("accept", "")
    )
    if wants_csv:
        first = _page(catalog, filters, sort, 1000, cursor, who)
        return StreamingResponse(
            _csv_rows(catalog, filters, sort, first, who),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="runs.csv"'},
        )
    page = _page(catalog, filters, sort, limit, cursor, who)
    return {"items": page.items, "next_cursor": page.next_cursor, "total": page.total}


@router.get("/runs/{run_id}")
def get_run(run_id: str, request: Request, who: Viewer) -> dict[str, Any]:
    return _readable(request, run_id, who)


@router.get("/runs/{run_id}/metadata.json")
def get_metadata(run_id: str, request: Request, who: Viewer) -> JSONResponse:
    """The metadata.json as it was uploaded."""
    _readable(request, run_id, who)
    return JSONResponse(
        catalog_of(request).run_record(run_id).metadata,
        headers={"Content-Disposition": f'attachment; filename="{run_id}-metadata.json"'},
    )


@router.get("/runs/{run_id}/curve")
def get_curve(run_id: str, request: Request, who: Viewer) -> list[dict[str, Any]]:
    """One row per generation: cumulative evaluations, best, best so far, median, …"""
    _readable(request, run_id, who)
    return [row.model_dump() for row in catalog_of(request).run_record(run_id).curve]


@router.get("/runs/{run_id}/problem.yaml")
def get_problem(run_id: str, request: Request, who: Viewer) -> Response:
    """The problem file that reruns this run (same algorithm, settings and seed)."""
    _readable(request, run_id, who)
    record = catalog_of(request).run_record(run_id)
    if record.problem is None:
        raise HTTPException(
            404,
            f"run {run_id} was uploaded in the original tool's format: "
            "it has no problem file to rerun it.",
        )
    problem = dict(record.problem)
    if record.seed is not None:
        problem["seed"] = record.seed
    return yaml_download(problem, f"{run_id}-problem.yaml")


@router.get("/runs/{run_id}/store.zip")
def get_store(run_id: str, request: Request, who: Viewer) -> FileResponse:
    """The run's Zarr store, zipped (if it was uploaded with the run)."""
    run = _readable(request, run_id, who)
    return _file(
        request,
        run.get("store_file"),
        f"{run_id}.zarr.zip",
        f"run {run_id} was uploaded without its store.",
    )


@router.get("/runs/{run_id}/archive")
def get_archive(run_id: str, request: Request, who: Viewer) -> FileResponse:
    """The archive of model and target uploaded with the run."""
    run = _readable(request, run_id, who)
    name = run.get("archive_file")
    suffix = "".join(Path(name).suffixes) if name else ""
    return _file(
        request,
        name,
        f"{run_id}-archive{suffix}",
        f"run {run_id} was uploaded without an archive.",
    )


@router.patch("/runs/{run_id}")
def edit_run(
    run_id: str, change: RunChange, request: Request, principal: Uploader
) -> dict[str, Any]:
    """Change a run's visibility, tags or notes (its uploader, or an admin)."""
    catalog_of(request).update_run(run_id, principal, **change.model_dump(exclude_unset=True))
    return catalog_of(request).get_run(run_id, principal)


@router.delete("/runs/{run_id}", status_code=204)
def delete_run(run_id: str, request: Request, principal: Uploader) -> Response:
    """Remove a run and its files (its uploader, or an admin)."""
    removed = catalog_of(request).delete_run(run_id, principal)
    for name in removed or ():
        remove_file(request.app.state.files, name)
    return Response(status_code=204)


@router.get("/runs/{run_id}/verifications")
def verifications(run_id: str, request: Request, who: Viewer) -> list[dict[str, Any]]:
    return catalog_of(request).verifications(run_id, who)


@router.post("/runs/{run_id}/verifications", status_code=201)
def add_verification(
    run_id: str,
    verification: Verification,
    request: Request,
    principal: Annotated[Principal, Depends(require("verify"))],
) -> list[dict[str, Any]]:
    """Record a check of the run's claimed best (needs the ``verify`` scope)."""
    catalog_of(request).record_verification(run_id, by=principal, **verification.model_dump())
    return catalog_of(request).verifications(run_id, principal)


def _readable(request: Request, run_id: str, who: Principal | None) -> dict[str, Any]:
    """The run if ``who`` may see it; a private run of someone else is "not found" (its
    existence is not revealed)."""
    try:
        return catalog_of(request).get_run(run_id, who)
    except Forbidden:
        raise NotFound(f"no run {run_id} in this catalog") from None


def _page(
    catalog: Catalog, filters: Any, sort: str, limit: int, cursor: str | None, who: Any
) -> Any:
    # an unknown sort key or a malformed cursor is the catalog's InvalidInput: 422
    return catalog.list_runs(filters, sort=sort, limit=limit, cursor=cursor, viewer=who)


def _csv_rows(
    catalog: Catalog, filters: Any, sort: str, page: Any, who: Principal | None
) -> Iterator[str]:
    """Every matching run, one page of 1000 at a time."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    while True:
        writer.writerows(page.items)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if page.next_cursor is None:
            return
        page = catalog.list_runs(
            filters, sort=sort, limit=1000, cursor=page.next_cursor, viewer=who
        )


def _file(request: Request, name: str | None, download: str, missing: str) -> FileResponse:
    if not name:
        raise HTTPException(404, missing)
    path = inside_files(request.app.state.files, name)
    if not path.is_file():
        raise HTTPException(404, missing)
    return FileResponse(path, filename=download)
