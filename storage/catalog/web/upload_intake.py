"""Taking in an upload for the API and the pages' upload form: check its files (with
``uploads``), place them in the app's files folder and write the run's row together, then
queue the server's verification of a new run, when the catalog holds its problem's files
itself (``held_problems``): an uploaded problem is never run here."""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, HTTPException, Request, UploadFile

from neuroptimus.storage.catalog.db.repository import Catalog, Principal
from neuroptimus.storage.catalog.db.run_ids import catalog_run_id
from neuroptimus.storage.catalog.intake import uploads
from neuroptimus.storage.catalog.intake.held_problems import held_problem
from neuroptimus.storage.catalog.schema import CatalogRun
from neuroptimus.storage.catalog.web.request_helpers import catalog_of, remove_file

log = logging.getLogger(__name__)

STAGING = ".staging"  # scratch folders of uploads being checked, inside ``files``

# ``verify.verify_best``: a run's claimed best simulated on a problem the catalog holds
Verifier = Callable[[CatalogRun, Any], dict]
UNVERIFIABLE = (
    "this catalog re-simulates only the use cases whose files it holds itself (the bundled "
    "ones and those an admin registered), not this one: the run is stored unverified."
)


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
    run = catalog_run_id(request.app.state.run_id_key, run, principal)  # an import's own id
    if run_id is not None and run_id != run.run_id:
        raise HTTPException(
            422, f"the address names run {run_id}, but metadata.json describes run {run.run_id}."
        )
    staging = files / STAGING / uuid.uuid4().hex
    staging.mkdir(parents=True)
    # what this upload unpacks, booked against its own, its uploader's and the server's budgets
    # (parallel uploads share them); given back once the staging folder is gone
    booking = request.app.state.unpacking.open(
        principal.user_id, catalog_of(request).unpacked_bytes(principal.user_id)
    )
    try:
        staged: dict[str, tuple[Path, str]] = {}  # kind → (staged file, final name)
        unpacked: dict[str, int] = {}
        if store is not None and store.filename:
            path = _save(store, staging / "store.zip", "store.zip", limits.max_bytes)
            identity = run.use_case.model_dump(mode="json")
            found, unpacked["store"] = uploads.read_store(path, staging, limits, booking, identity)
            uploads.check_same_run(run, found)
            staged["store"] = (path, f"runs/{run.run_id}/store.zip")
            # the unpacked store is read: its files go now, its bytes stay booked
            shutil.rmtree(staging / "store", ignore_errors=True)
        if archive is not None and archive.filename:
            suffix = uploads.archive_suffix(archive.filename)
            path = _save(archive, staging / f"archive{suffix}", "the archive", limits.max_bytes)
            _, unpacked["archive"] = uploads.check_archive(path, archive.filename, limits, booking)
            staged["archive"] = (path, f"runs/{run.run_id}/archive{suffix}")
        with request.app.state.upload_lock:
            result, dropped = _place_and_record(
                request, run, principal, visibility, staged, unpacked
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        booking.release()
        _remove_empty(files / STAGING)
    warnings = []
    if request.app.state.verifier is not None and result.created:
        if _held(request, run) is None:
            warnings.append(UNVERIFIABLE)
        elif background is not None:  # queued after the response: uploads never wait
            background.add_task(
                request.app.state.verifications.submit, _verify, catalog_of(request),
                request.app.state.files, request.app.state.verifier, result.run_id, principal,
            )  # fmt: skip
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
    unpacked: dict[str, int],
) -> tuple[Any, list[str]]:
    """Move the staged files to their names (unless a file of the same run is already there),
    write the row, and undo the moves if the catalog refuses the run. Returns the catalog's
    answer and the kinds of file it did not keep (a re-upload does not change a run)."""
    files: Path = request.app.state.files
    catalog = catalog_of(request)
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
            unpacked=unpacked,
            quota=request.app.state.limits.max_user_bytes,
        )
        kept = catalog.get_run(run.run_id, principal)
        referenced = {kept.get("store_file"), kept.get("archive_file")}
    finally:
        # a file the catalog did not keep (a refused run, or a re-upload of a run that has
        # its files already) does not stay behind
        for final in placed:
            name = final.relative_to(files).as_posix()
            if name not in referenced:
                remove_file(files, name)
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


def _held(request: Request, run: CatalogRun) -> Any:
    try:
        return held_problem(catalog_of(request), request.app.state.files, run.use_case)
    except Exception as error:  # a registered problem whose files are damaged …
        log.warning("use case of run %s not loaded: %s", run.run_id, error)
        return None


def _verify(
    catalog: Catalog, files: Path, verifier: Verifier, run_id: str, uploader: Principal
) -> None:
    """Re-simulate a new run's claimed best on the problem this catalog holds for its use
    case (recorded as the server's check); a failing verifier is logged, not raised."""
    try:
        run = catalog.run_record(run_id)
        spec = held_problem(catalog, files, run.use_case)
        if spec is None:
            log.warning("run %s not verified: its use case is not held here", run_id)
            return
        outcome = verifier(run, spec)
        catalog.record_verification(
            run_id,
            by=uploader,
            method=outcome.get("method", "resimulate-best"),
            reported=outcome.get("reported"),
            reproduced=outcome.get("reproduced"),
            ok=bool(outcome.get("ok")),
            details=outcome.get("details") or {},
            checked_by="server",
        )
    except Exception as error:  # a model that cannot run here, its data unreachable …
        log.warning("run %s not verified: %s: %s", run_id, type(error).__name__, error)
