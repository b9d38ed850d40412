"""Alembic migrations of the catalog's database (one tree for SQLite and PostgreSQL), run by
``neuroptimus.storage.catalog.db.database.open_catalog``."""
