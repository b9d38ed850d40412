"""The catalog's upload page: a signed-in user with the ``upload`` scope sends a run's files
through the API's own checks (``api.accept_upload``), with CSRF protection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from neuroptimus.storage.catalog.db.repository import CatalogError
from neuroptimus.storage.catalog.intake import uploads
from neuroptimus.storage.catalog.web import app as api
from neuroptimus.storage.catalog.web import auth
from neuroptimus.storage.catalog.web.pages import EXPIRED, csrf_ok, error_page, page_viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/upload", response_class=HTMLResponse, include_in_schema=False)
def upload_form(request: Request) -> Response:
    if page_viewer(request) is None:
        return RedirectResponse("/sign-in?next=/upload", status_code=303)
    return render(request, "upload.html", csrf=auth.csrf_token(request))


@router.post("/upload", response_class=HTMLResponse, include_in_schema=False)
def upload(
    request: Request,
    background: BackgroundTasks,
    metadata: Annotated[UploadFile, File()],
    store: Annotated[UploadFile | None, File()] = None,
    archive: Annotated[UploadFile | None, File()] = None,
    visibility: Annotated[str, Form()] = "public",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    principal = page_viewer(request)
    if principal is None:
        return error_page(request, 401, "Sign in first: your session has ended.")
    if not csrf_ok(request, csrf):
        return error_page(request, 403, EXPIRED)
    if not auth.has_scope(principal, "upload"):
        return error_page(request, 403, "Your token may read but not upload.")
    if visibility not in ("public", "unlisted", "private"):
        visibility = "public"
    try:  # the API's own upload: same checks, and a refused one leaves no row or file
        result = api.accept_upload(request, principal, metadata, store, archive, visibility,
                                   background=background)  # fmt: skip
    except (HTTPException, uploads.UploadError, CatalogError) as error:
        status = getattr(error, "status_code", None) or getattr(error, "status", None)
        status = status or getattr(error, "http_status", 400)
        detail = getattr(error, "detail", None) or str(error)
        return render(request, "upload.html", status=status, csrf=auth.csrf_token(request),
                      error=f"Not uploaded: {detail}")  # fmt: skip
    message = ("Uploaded." if result["created"]
               else "This run was already in the catalog, unchanged.")  # fmt: skip
    notes = [w[:1].upper() + w[1:] for w in result.get("warnings", [])]
    result = {**result, "message": " ".join([message, *notes])}
    return render(request, "upload.html", status=201 if result["created"] else 200,
                  csrf=auth.csrf_token(request), result=result)  # fmt: skip
