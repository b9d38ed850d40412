"""The catalog's JSON API (``/api/v1``): upload runs, list and filter them, read one run and
its files, use cases with their leaderboards, comparisons, tokens. OpenAPI docs at ``/docs``.

Endpoints are plain ``def``: the catalog's sessions are synchronous, and FastAPI runs such
endpoints in its thread pool. Every error is ``{"detail": "<one sentence>"}``.
"""

from __future__ import annotations

import csv
import io
import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

import sqlalchemy
import sqlalchemy.exc
import yaml
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from storage.catalog import uploads
from storage.catalog.auth import SecretMiddleware, app_secret, has_scope, require, viewer
from storage.catalog.repository import (
    Catalog,
    CatalogError,
    Forbidden,
    InvalidInput,
    NotFound,
    Principal,
    RunConflict,
    RunFilter,
)
from storage.catalog.schema import CatalogRun, Visibility

log = logging.getLogger(__name__)

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
STAGING = ".staging"  # scratch folders of uploads being checked, inside ``files``
# An upload's multipart framing and form fields on top of its files.
FORM_OVERHEAD = 2**20

Verifier = Callable[[CatalogRun], dict]
Viewer = Annotated[Principal | None, Depends(viewer)]
Uploader = Annotated[Principal, Depends(require("upload"))]
Reader = Annotated[Principal, Depends(require("read"))]


def create_app(
    catalog: Catalog,
    files: Path,
    *,
    max_upload_bytes: int = 200 * 2**20,
    verifier: Verifier | None = None,
) -> FastAPI:
    """The catalog service: ``catalog`` holds the records, ``files`` the uploaded store zips
    and archives; ``verifier(run) -> dict`` (``verify_best``'s result) runs after each new
    upload, in the background."""
    files = Path(files)
    files.mkdir(parents=True, exist_ok=True)
    app = FastAPI(
        title="Neuroptimus results catalog",
        description="Optimization runs of neuron models, comparable across users and "
        "reproducible from their entries.",
        version="1",
    )
    app.state.catalog = catalog
    app.state.files = files
    app.state.catalog_secret = app_secret(catalog)
    app.state.limits = uploads.UploadLimits(
        max_bytes=max_upload_bytes, max_metadata_bytes=min(16 * 2**20, max_upload_bytes)
    )
    app.state.verifier = verifier
    # one verification at a time (each simulates a model), in the order of the uploads
    app.state.verifications = ThreadPoolExecutor(1, thread_name_prefix="catalog-verify")
    app.router.on_shutdown.append(
        lambda: app.state.verifications.shutdown(wait=False, cancel_futures=True)
    )
    # One upload at a time places its files and writes its row: two uploads of the same run
    # must not both take the same file name.
    app.state.upload_lock = threading.Lock()
    # every request, the pages' upload form too: all files of one upload together
    app.add_middleware(uploads.BodyLimitMiddleware, max_bytes=max_upload_bytes + FORM_OVERHEAD)
    app.add_middleware(SecretMiddleware, secret=app.state.catalog_secret)
    _add_error_handlers(app)

    @app.get("/health", tags=["meta"])
    def health() -> Any:
        """``ok`` when the database answers (for load balancers and ``catalog serve``)."""
        try:
            with catalog.engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
        except sqlalchemy.exc.SQLAlchemyError:
            log.exception("the catalog's database does not answer")
            return _error(503, "the catalog's database does not answer.")
        return {"status": "ok", "database": catalog.dialect}

    app.include_router(_runs_router(), prefix="/api/v1")
    app.include_router(_use_cases_router(), prefix="/api/v1")
    app.include_router(_accounts_router(), prefix="/api/v1")
    return app


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    statuses = {NotFound: 404, Forbidden: 403, RunConflict: 409, InvalidInput: 422}

    @app.exception_handler(CatalogError)
    def catalog_error(request: Request, error: CatalogError) -> JSONResponse:
        return _error(statuses.get(type(error), 400), _sentence(str(error)))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # Starlette's own ("Not Found", "Method Not Allowed") read as sentences too
        return _error(error.status_code, _sentence(str(error.detail)), error.headers)

    @app.exception_handler(uploads.UploadError)
    def upload_error(request: Request, error: uploads.UploadError) -> JSONResponse:
        return _error(error.status, error.detail)

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        kind, *names = [str(part) for part in first.get("loc", ())] or ["request"]
        where = {"body": "", "query": "query parameter ", "path": "address part "}.get(kind, kind)
        return _error(422, _sentence(f"{where}{'.'.join(names)}: {first.get('msg', 'invalid')}"))


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def _catalog(request: Request) -> Catalog:
    return request.app.state.catalog


# ---------------------------------------------------------------- runs


# the files of an upload (POST and PUT take the same)
MetadataFile = Annotated[UploadFile, File(description="the run's metadata.json")]
StoreFile = Annotated[UploadFile | None, File(description="the run's .zarr folder, zipped")]
ArchiveFile = Annotated[UploadFile | None, File(description="model and target (zip/tar)")]


def _runs_router() -> APIRouter:
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
        use_case: str | None = None,
        algorithm: str | None = None,
        package: str | None = None,
        uploader: str | None = None,
        seed: int | None = None,
        min_budget: Annotated[int | None, Query(ge=0)] = None,
        max_budget: Annotated[int | None, Query(ge=0)] = None,
        verified: bool | None = None,
        state: Literal["complete", "partial"] | None = None,
        q: Annotated[str | None, Query(max_length=200)] = None,
        sort: Annotated[
            str,
            Query(
                description="final_error, evaluations, budget, seed, uploaded_at, "
                "created_at or wall_seconds; - first for descending"
            ),
        ] = "-uploaded_at",
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
        format: Literal["json", "csv"] | None = None,
    ) -> Any:
        """Runs with filters, sorting (``sort=final_error``, ``-`` for descending) and keyset
        pagination (pass ``next_cursor`` back as ``cursor``); ``format=csv`` or ``Accept:
        text/csv`` streams every matching run as CSV."""
        filters = RunFilter(
            use_case=use_case,
            algorithm=algorithm,
            package=package,
            uploader=uploader,
            seed=seed,
            min_budget=min_budget,
            max_budget=max_budget,
            verified=verified,
            state=state,
            q=q,
        )
        catalog = _catalog(request)
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
            _catalog(request).run_record(run_id).metadata,
            headers={"Content-Disposition": f'attachment; filename="{run_id}-metadata.json"'},
        )

    @router.get("/runs/{run_id}/curve")
    def get_curve(run_id: str, request: Request, who: Viewer) -> list[dict[str, Any]]:
        """One row per generation: cumulative evaluations, best, best so far, median, …"""
        _readable(request, run_id, who)
        return [row.model_dump() for row in _catalog(request).run_record(run_id).curve]

    @router.get("/runs/{run_id}/problem.yaml")
    def get_problem(run_id: str, request: Request, who: Viewer) -> Response:
        """The problem file that reruns this run (same algorithm, settings and seed)."""
        _readable(request, run_id, who)
        record = _catalog(request).run_record(run_id)
        if record.problem is None:
            raise HTTPException(
                404,
                f"run {run_id} was uploaded in the original tool's format: "
                "it has no problem file to rerun it.",
            )
        problem = dict(record.problem)
        if record.seed is not None:
            problem["seed"] = record.seed
        return _yaml(problem, f"{run_id}-problem.yaml")

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
        _catalog(request).update_run(run_id, principal, **change.model_dump(exclude_unset=True))
        return _catalog(request).get_run(run_id, principal)

    @router.delete("/runs/{run_id}", status_code=204)
    def delete_run(run_id: str, request: Request, principal: Uploader) -> Response:
        """Remove a run and its files (its uploader, or an admin)."""
        removed = _catalog(request).delete_run(run_id, principal)
        for name in removed or ():
            _remove_file(request.app.state.files, name)
        return Response(status_code=204)

    @router.get("/runs/{run_id}/verifications")
    def verifications(run_id: str, request: Request, who: Viewer) -> list[dict[str, Any]]:
        return _catalog(request).verifications(run_id, who)

    @router.post("/runs/{run_id}/verifications", status_code=201)
    def add_verification(
        run_id: str,
        verification: Verification,
        request: Request,
        principal: Annotated[Principal, Depends(require("verify"))],
    ) -> list[dict[str, Any]]:
        """Record a check of the run's claimed best (needs the ``verify`` scope)."""
        _catalog(request).record_verification(run_id, by=principal, **verification.model_dump())
        return _catalog(request).verifications(run_id, principal)

    return router


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


def _readable(request: Request, run_id: str, who: Principal | None) -> dict[str, Any]:
    """The run if ``who`` may see it; a private run of someone else is "not found" (its
    existence is not revealed)."""
    try:
        return _catalog(request).get_run(run_id, who)
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


def _yaml(data: dict[str, Any], filename: str) -> Response:
    return Response(
        yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
        media_type="application/yaml",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _inside(files: Path, name: str) -> Path:
    """A stored file name as a path that cannot leave the files folder."""
    path = (files / name).resolve()
    if not path.is_relative_to(files.resolve()):
        raise HTTPException(404, "the file is not in this catalog.")
    return path


def _file(request: Request, name: str | None, download: str, missing: str) -> FileResponse:
    if not name:
        raise HTTPException(404, missing)
    path = _inside(request.app.state.files, name)
    if not path.is_file():
        raise HTTPException(404, missing)
    return FileResponse(path, filename=download)


def _remove_file(files: Path, name: str) -> None:
    path = _inside(files, name)
    path.unlink(missing_ok=True)
    # the run's folder, once empty
    if path.parent != files.resolve() and not any(path.parent.iterdir()):
        path.parent.rmdir()


# ---------------------------------------------------------------- uploading


def accept_upload(
    request: Request,
    principal: Principal,
    metadata: UploadFile,
    store: UploadFile | None = None,
    archive: UploadFile | None = None,
    visibility: str = "public",
    *,
    run_id: str | None = None,
    background: BackgroundTasks | None = None,
) -> dict[str, Any]:
    """Check an upload, then place its files and write its row together: a refused upload
    leaves neither a row nor a file. Raises ``UploadError``, ``HTTPException`` or the
    catalog's errors (the API turns them into JSON; the pages' upload form may show them).
    Returns ``{run_id, created, use_case, fingerprint, url, warnings}``; with ``background``,
    a new run is verified afterwards when the app has a verifier."""
    limits: uploads.UploadLimits = request.app.state.limits
    files: Path = request.app.state.files
    run = uploads.read_run(
        _read_limited(metadata, "metadata.json", limits.max_metadata_bytes), limits
    )
    if run_id is not None and run_id != run.run_id:
        raise HTTPException(
            422, f"the address names run {run_id}, but metadata.json describes run {run.run_id}."
        )
    staging = files / STAGING / uuid.uuid4().hex
    staging.mkdir(parents=True)
    try:
        staged: dict[str, tuple[Path, str]] = {}  # kind → (staged file, final name)
        if store is not None and store.filename:
            path = _save(store, staging / "store.zip", "store.zip", limits.max_bytes)
            uploads.check_same_run(run, uploads.read_store(path, staging, limits))
            staged["store"] = (path, f"runs/{run.run_id}/store.zip")
        if archive is not None and archive.filename:
            suffix = uploads.archive_suffix(archive.filename)
            path = _save(archive, staging / f"archive{suffix}", "the archive", limits.max_bytes)
            uploads.check_archive(path, archive.filename, limits)
            staged["archive"] = (path, f"runs/{run.run_id}/archive{suffix}")
        with request.app.state.upload_lock:
            result, dropped = _place_and_record(request, run, principal, visibility, staged)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(files / STAGING)
    if background is not None:
        _schedule_verification(request, background, result.run_id, result.created, principal)
    warnings = []
    if run.use_case.kind == "weak":
        warnings.append(
            "the original tool's metadata names its problem but does not hash its "
            "files: runs of it are grouped by names and bounds only."
        )
    if run.state == "partial":
        warnings.append("the run is unfinished: it is listed but left out of leaderboards.")
    for kind in dropped:
        warnings.append(
            f"the run was already in the catalog without this {kind}, and a re-upload does "
            f"not change a run: the {kind} was not added (delete the run, then upload both)."
        )
    return {
        "run_id": result.run_id,
        "created": result.created,
        "use_case": result.use_case_slug,
        "fingerprint": run.use_case.fingerprint,
        "url": f"/api/v1/runs/{result.run_id}",
        "warnings": warnings,
    }


def _place_and_record(
    request: Request,
    run: CatalogRun,
    principal: Principal,
    visibility: str,
    staged: dict[str, tuple[Path, str]],
) -> tuple[Any, list[str]]:
    """Move the staged files to their names (unless a file of the same run is already there),
    write the row, and undo the moves if the catalog refuses the run. Returns the catalog's
    answer and the kinds of file it did not keep (a re-upload does not change a run)."""
    files: Path = request.app.state.files
    catalog = _catalog(request)
    placed: list[Path] = []
    names: dict[str, str | None] = {"store": None, "archive": None}
    for kind, (path, name) in staged.items():
        final = files / name
        names[kind] = name
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            path.replace(final)
            placed.append(final)
    referenced: set[str | None] = set()
    try:
        result = catalog.put_run(
            run,
            principal,
            visibility=visibility,
            store_file=names["store"],
            archive_file=names["archive"],
        )
        kept = catalog.get_run(run.run_id, principal)
        referenced = {kept.get("store_file"), kept.get("archive_file")}
    finally:
        # a file the catalog did not keep (a refused run, or a re-upload of a run that has
        # its files already) does not stay behind
        for final in placed:
            name = final.relative_to(files).as_posix()
            if name not in referenced:
                _remove_file(files, name)
    return result, [kind for kind, name in names.items() if name and name not in referenced]


def _read_limited(upload: UploadFile, what: str, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise uploads.UploadError(413, f"{what} is larger than {uploads.size_text(limit)}.")
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise uploads.UploadError(413, f"{what} is larger than {uploads.size_text(limit)}.")
    return data


def _save(upload: UploadFile, path: Path, what: str, limit: int) -> Path:
    if upload.size is not None and upload.size > limit:
        raise uploads.UploadError(413, f"{what} is larger than {uploads.size_text(limit)}.")
    written = 0
    with open(path, "wb") as sink:
        while block := upload.file.read(2**20):
            written += len(block)
            if written > limit:
                raise uploads.UploadError(413, f"{what} is larger than {uploads.size_text(limit)}.")
            sink.write(block)
    if written == 0:
        raise uploads.UploadError(400, f"{what} is empty.")
    return path


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: another upload is being checked


def _schedule_verification(
    request: Request, background: BackgroundTasks, run_id: str, created: bool, uploader: Principal
) -> None:
    verifier: Verifier | None = request.app.state.verifier
    if verifier is not None and created:  # queued after the response: uploads never wait
        queue = request.app.state.verifications
        background.add_task(queue.submit, _verify, _catalog(request), verifier, run_id, uploader)


def _verify(catalog: Catalog, verifier: Verifier, run_id: str, uploader: Principal) -> None:
    """Re-simulate a new run's claimed best (recorded as the server's check of the upload);
    a failing verifier is logged, not raised."""
    try:
        run = catalog.run_record(run_id)
        outcome = verifier(run)
        catalog.record_verification(
            run_id,
            by=uploader,
            method=outcome.get("method", "resimulate-best"),
            reported=outcome.get("reported"),
            reproduced=outcome.get("reproduced"),
            ok=bool(outcome.get("ok")),
            details={**outcome, "checked_by": "server"},
        )
    except Exception as error:  # a model that cannot run here, its data unreachable …
        log.warning("run %s not verified: %s: %s", run_id, type(error).__name__, error)


# ---------------------------------------------------------------- use cases, comparisons


def _use_cases_router() -> APIRouter:
    router = APIRouter(tags=["use cases"])

    @router.get("/use-cases")
    def use_cases(request: Request) -> list[dict[str, Any]]:
        """Every use case with its counts of runs, algorithms, uploaders and best error."""
        return _catalog(request).use_cases()

    @router.get("/use-cases/{slug}")
    def use_case(slug: str, request: Request) -> dict[str, Any]:
        return _catalog(request).use_case(slug)

    @router.get("/use-cases/{slug}/leaderboard")
    def leaderboard(
        slug: str,
        request: Request,
        budget: Annotated[int | None, Query(ge=1)] = None,
        target: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
        grid: Annotated[int, Query(ge=2, le=10_000)] = 100,
        group_by: Annotated[
            str, Query(description="algorithm, algorithm,package, package or uploader")
        ] = "algorithm",
        verified_only: bool = False,
        package: str | None = None,
        uploader: str | None = None,
    ) -> dict[str, Any]:
        """Algorithms ranked at an equal evaluation budget (runs with less are left out and
        counted): final error and convergence score over seeds, success rate for a target;
        ``package`` and ``uploader`` narrow the runs."""
        return _catalog(request).leaderboard(
            slug,
            budget=budget,
            target=target,
            grid=grid,
            group_by=group_by,
            verified_only=verified_only,
            package=package,
            uploader=uploader,
        )

    @router.get("/use-cases/{slug}/problem.yaml")
    def use_case_problem(slug: str, request: Request) -> Response:
        """The use case's problem without an algorithm: add one to run it."""
        catalog = _catalog(request)
        catalog.use_case(slug)  # 404 for an unknown slug
        page = catalog.list_runs(RunFilter(use_case=slug), sort="-uploaded_at", limit=50)
        for item in page.items:
            problem = catalog.run_record(item["run_id"]).problem
            if problem is not None:
                rest = {
                    k: v
                    for k, v in problem.items()
                    if k not in ("algorithm", "stopping", "seed", "base_dir")
                }
                return _yaml(rest, f"{slug}-problem.yaml")
        raise HTTPException(
            404,
            f"use case {slug} has no public run with a problem file "
            "(runs of the original tool's format carry none).",
        )

    @router.get("/compare")
    def compare(
        request: Request,
        who: Viewer,
        runs: Annotated[str | None, Query(description="run ids, comma-separated")] = None,
        use_case: str | None = None,
        algorithms: Annotated[
            str | None, Query(description="algorithm keys, comma-separated")
        ] = None,
        budget: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """Curves on a common evaluation grid and box statistics of chosen runs, or of a use
        case's algorithms."""
        catalog = _catalog(request)
        if runs:
            ids = [r.strip() for r in runs.split(",") if r.strip()]
            if len(ids) > 200:
                raise HTTPException(422, "compare at most 200 runs at a time.")
            return catalog.compare(run_ids=ids, budget=budget, viewer=who)
        if use_case:
            chosen = [a.strip() for a in algorithms.split(",") if a.strip()] if algorithms else None
            return catalog.compare(slug=use_case, algorithms=chosen, budget=budget, viewer=who)
        raise HTTPException(422, "name the runs (runs=a,b) or a use case (use_case=slug).")

    return router


# ---------------------------------------------------------------- accounts


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=100)] = ""
    scopes: list[Literal["read", "upload", "verify", "admin"]] = ["read", "upload"]


def _accounts_router() -> APIRouter:
    router = APIRouter(tags=["accounts"])

    @router.get("/me")
    def me(principal: Reader) -> dict[str, Any]:
        return {
            "handle": principal.handle,
            "scopes": sorted(principal.scopes),
            "is_admin": principal.is_admin,
        }

    @router.get("/tokens")
    def tokens(request: Request, principal: Reader) -> list[dict[str, Any]]:
        """Your tokens (names, scopes, dates; never the tokens themselves)."""
        return _catalog(request).list_tokens(principal.handle)

    @router.post("/tokens", status_code=201)
    def new_token(request: Request, body: NewToken, principal: Reader) -> dict[str, Any]:
        """A new token for yourself, with at most the scopes of the one you send; shown once."""
        scopes = set(body.scopes)
        if not all(has_scope(principal, scope) for scope in scopes):
            raise HTTPException(403, "a token cannot grant scopes its own token lacks.")
        token = _catalog(request).issue_token(principal.handle, scopes=scopes, name=body.name)
        return {"token": token, "scopes": sorted(scopes), "name": body.name}

    @router.delete("/tokens/{token_id}", status_code=204)
    def revoke(token_id: int, request: Request, principal: Reader) -> Response:
        _catalog(request).revoke_token(principal.handle, token_id)
        return Response(status_code=204)

    return router
