"""Run ids a stranger cannot guess. A run of ours carries a random (uuid4) id from its store.
The original tool's metadata.json has none: ingesting it names the run by a key derived from
its content (``ingest.original_run_id``), which anyone holding the file, or the paper's
public archive, could compute. The catalog therefore files such a run under an id made from
that key, the uploader and a secret kept in its database: the same file from the same user
finds its entry again (re-imports change nothing), while nobody else can derive the id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from neuroptimus.storage.catalog.db.repository import Catalog, Principal
from neuroptimus.storage.catalog.schema import CatalogRun

KEY_SETTING = "imported_run_id_key"
ORIGINAL_FORMAT = "original-neuroptimus"


def run_id_key(catalog: Catalog) -> bytes:
    """The catalog's secret for imported runs' ids: made once, kept in its database (an app
    reads it at start, so no upload adds a row for it)."""
    return catalog.setting(KEY_SETTING, lambda: secrets.token_hex(32)).encode()


def catalog_run_id(key: bytes, run: CatalogRun, uploader: Principal) -> CatalogRun:
    """``run`` under the id the catalog files it by (ours: unchanged); ``key``: the
    catalog's ``run_id_key``."""
    if run.source_format != ORIGINAL_FORMAT:
        return run
    message = f"{uploader.user_id}:{run.run_id}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    # a keyed hash looks random to whoever lacks the key: shaped as the uuid4 it stands for
    return run.model_copy(update={"run_id": str(uuid.UUID(bytes=digest[:16], version=4))})
