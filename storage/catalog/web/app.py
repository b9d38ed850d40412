"""The catalog's JSON API (``/api/v1``): upload runs, list and filter them, read one run and
its files, use cases with their leaderboards, comparisons, tokens. OpenAPI docs at ``/docs``.

Endpoints are plain ``def``: the catalog's sessions are synchronous, and FastAPI runs such
endpoints in its thread pool. Every error is ``{"detail": "<one sentence>"}``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from neuroptimus.storage.catalog.db.repository import (
    Catalog,
    CatalogError,
)
from neuroptimus.storage.catalog.db.run_ids import run_id_key
from neuroptimus.storage.catalog.intake import uploads
from neuroptimus.storage.catalog.intake.unpacking import UnpackingAccount
from neuroptimus.storage.catalog.web import request_guard
from neuroptimus.storage.catalog.web.auth import app_secret
from neuroptimus.storage.catalog.web.request_guard import RequestGuardMiddleware
from neuroptimus.storage.catalog.web.routes_accounts import router as accounts_router
from neuroptimus.storage.catalog.web.routes_runs import router as runs_router
from neuroptimus.storage.catalog.web.routes_use_cases import router as use_cases_router
from neuroptimus.storage.catalog.web.security_headers import SecurityHeadersMiddleware, add_docs

# the pages' upload form takes uploads through the API's checks (``api.accept_upload``)
from neuroptimus.storage.catalog.web.upload_intake import Verifier, accept_upload

__all__ = ["Verifier", "accept_upload", "create_app"]

log = logging.getLogger(__name__)

# An upload's multipart framing and form fields on top of its files.
FORM_OVERHEAD = 2**20


def create_app(
    catalog: Catalog,
    files: Path,
    *,
    max_upload_bytes: int | None = None,
    limits: uploads.UploadLimits | None = None,
    verifier: Verifier | None = None,
) -> FastAPI:
    """The catalog service: ``catalog`` holds the records, ``files`` the uploaded store zips
    and archives; ``limits`` bound what an upload, a user and all uploads at once may unpack
    (``max_upload_bytes``, when given, is the largest file of an upload);
    ``verifier(run, problem) -> dict`` (``verify.verify_best``) simulates each
    new run's claimed best in the background on the problem the catalog holds for its use
    case (bundled or registered by an admin; ``held_problems``), never on the uploaded one."""
    files = Path(files)
    files.mkdir(parents=True, exist_ok=True)
    app = FastAPI(
        title="Neuroptimus results catalog",
        description="Optimization runs of neuron models, comparable across users and "
        "reproducible from their entries.",
        version="1",
        docs_url=None,  # served by add_docs, under the pages' content security policy
        redoc_url=None,
    )
    app.state.catalog = catalog
    app.state.files = files
    app.state.catalog_secret = app_secret(catalog)
    app.state.run_id_key = run_id_key(catalog)
    limits = limits or uploads.UploadLimits()
    if max_upload_bytes is not None:
        limits = dataclasses.replace(limits, max_bytes=max_upload_bytes)
    limits = dataclasses.replace(
        limits, max_metadata_bytes=min(limits.max_metadata_bytes, limits.max_bytes)
    )
    max_upload_bytes = limits.max_bytes
    app.state.limits = limits
    # what the uploads being checked have unpacked: one account for all the app's requests
    app.state.unpacking = UnpackingAccount(limits.budgets())
    app.state.verifier = verifier
    # one verification at a time (each simulates a model), in the order of the uploads
    app.state.verifications = ThreadPoolExecutor(1, thread_name_prefix="catalog-verify")
    app.router.on_shutdown.append(
        lambda: app.state.verifications.shutdown(wait=False, cancel_futures=True)
    )
    # One upload at a time places its files and writes its row: two uploads of the same run
    # must not both take the same file name.
    app.state.upload_lock = threading.Lock()
    # inside the body limit: reads whole JSON bodies to check them
    app.add_middleware(RequestGuardMiddleware)
    # every request, the pages' upload form too: all files of one upload together
    app.add_middleware(
        request_guard.BodyLimitMiddleware, max_bytes=max_upload_bytes + FORM_OVERHEAD
    )
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: every response has them
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

    add_docs(app, app.title)
    app.include_router(runs_router, prefix="/api/v1")
    app.include_router(use_cases_router, prefix="/api/v1")
    app.include_router(accounts_router, prefix="/api/v1")
    return app


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CatalogError)
    def catalog_error(request: Request, error: CatalogError) -> JSONResponse:
        return _error(error.http_status, _sentence(str(error)))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        # Starlette's own ("Not Found", "Method Not Allowed") read as sentences too
        return _error(error.status_code, _sentence(str(error.detail)), error.headers)

    @app.exception_handler(uploads.UploadError)
    def upload_error(request: Request, error: uploads.UploadError) -> JSONResponse:
        return _error(error.status, error.detail)

    @app.exception_handler(sqlalchemy.exc.DataError)
    @app.exception_handler(OverflowError)
    def out_of_range(request: Request, error: Exception) -> JSONResponse:
        # what the bounds of the routes missed: a value the database cannot hold is still
        # the request's fault, never the server's
        log.warning("%s %s: a value the database refused: %s", request.method,
                    request.url.path, str(error).splitlines()[0][:200])  # fmt: skip
        return _error(422, "a value in the request is beyond what the catalog's database holds.")

    @app.exception_handler(RequestValidationError)
    def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        kind, *names = [str(part) for part in first.get("loc", ())] or ["request"]
        where = {"body": "", "query": "query parameter ", "path": "address part "}.get(kind, kind)
        return _error(422, _sentence(f"{where}{'.'.join(names)}: {first.get('msg', 'invalid')}"))


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."
