"""Alembic's environment: migrates the connection ``open_catalog`` hands over."""

from __future__ import annotations

from alembic import context

from neuroptimus.storage.catalog.db.models import Base

connection = context.config.attributes["connection"]
# batch mode: SQLite alters a table by copying it, PostgreSQL in place; one tree serves both
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
