"""The catalog's errors; each message is one sentence for the user."""

from __future__ import annotations

from neuroptimus.optimization.errors import UserError


class CatalogError(UserError):
    """Base of the catalog's errors."""

    http_status = 400  # the one map of the catalog's errors to HTTP statuses (API and pages)


class RunConflict(CatalogError):
    """The run id exists with other content or another uploader."""

    http_status = 409


class NotFound(CatalogError):
    """No such run, use case, user or token (or not visible to the asker)."""

    http_status = 404


class Forbidden(CatalogError):
    """The asker may not do this (another user's run)."""

    http_status = 403


class InvalidInput(CatalogError, ValueError):
    """A handle, scope, visibility, sort key, cursor or filter the catalog cannot take."""

    http_status = 422


class QuotaExceeded(CatalogError):
    """The run would take its uploader past the unpacked bytes a user may keep."""

    http_status = 413


def size_text(size: float) -> str:
    """``2 MiB``, ``97.7 KiB``, ``512 bytes``: sizes in messages."""
    if size < 1024:
        return f"{int(size)} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            return f"{size:.3g} {unit}"
    raise AssertionError("unreachable")
