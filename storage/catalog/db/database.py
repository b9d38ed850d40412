"""Open a catalog database: SQLite (a file, the default) or PostgreSQL, migrated to the newest
schema on opening."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from neuroptimus.storage.catalog.db.repository import Catalog

DEFAULT_URL = "sqlite:///neuroptimus-catalog.sqlite"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def engine_for(url: str) -> Engine:
    """An engine for ``url``: ``postgresql://`` goes through psycopg 3; SQLite gets WAL (readers
    never wait for the one writer) and a busy timeout (a second writer waits, not fails)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.get_backend_name() != "sqlite":
        raise ValueError(f"catalog database {url!r}: expected a sqlite:// or postgresql:// URL")
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:  # noqa: ANN001 - DB-API connection
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (nothing to do when it is there already)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_catalog(url: str | None = None) -> Catalog:
    """The catalog at ``url`` (None: ``neuroptimus-catalog.sqlite`` in the working folder)."""
    engine = engine_for(url or DEFAULT_URL)
    migrate(engine)
    return Catalog(engine)
