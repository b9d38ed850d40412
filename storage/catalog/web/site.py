"""The whole catalog service in one app: the database, the JSON API and the web pages."""

from __future__ import annotations

from pathlib import Path

from bokeh.util.paths import bokehjs_path
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from neuroptimus.storage.catalog.db.database import open_catalog
from neuroptimus.storage.catalog.db.repository import Catalog
from neuroptimus.storage.catalog.intake.uploads import UploadLimits
from neuroptimus.storage.catalog.web import figures, pages_browse, pages_sign_in, pages_upload
from neuroptimus.storage.catalog.web.app import Verifier, create_app
from neuroptimus.storage.catalog.web.pages import BadQuery, bad_query


def create_site(
    db_url: str | None,
    files: Path,
    verifier: Verifier | None = None,
    limits: UploadLimits | None = None,
) -> FastAPI:
    """The catalog at ``db_url`` (None: an SQLite file in the working directory) served as
    API + pages, uploaded files kept in ``files``; ``verifier`` (``verify.verify_best``)
    re-simulates each uploaded run's claimed best in the background, on the problem the
    catalog holds for its use case (bundled or registered), never on the uploaded one;
    ``limits``: what uploads may send and unpack (None: the defaults)."""
    catalog = open_catalog(db_url)
    files = Path(files)
    files.mkdir(parents=True, exist_ok=True)
    app = create_app(catalog, files, verifier=verifier, limits=limits)
    add_pages(app, catalog)
    return app


def add_pages(app: FastAPI, catalog: Catalog) -> None:
    """Mount the catalog's HTML pages (and the BokehJS and CSS they load) on ``app``; the
    pages read ``catalog`` from the app's state."""
    app.state.catalog = catalog
    app.mount(figures.BOKEH_PREFIX, StaticFiles(directory=bokehjs_path()), name="bokehjs")
    app.add_exception_handler(BadQuery, bad_query)
    for pages in (pages_browse, pages_sign_in, pages_upload):
        app.include_router(pages.router)


__all__ = ["add_pages", "create_site"]
