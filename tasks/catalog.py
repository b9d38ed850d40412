"""Push finished runs to a results catalog at the end of the run and benchmark flows.

Only when a catalog is configured: the flow's ``catalog_url`` parameter or
``NEUROPTIMUS_CATALOG_URL`` (the token from ``NEUROPTIMUS_CATALOG_TOKEN``). Like the progress
artifacts (tasks/artifacts.py) the push is a side channel: a catalog that cannot be reached
or refuses the run is logged as a warning, and the run — already complete in its store —
succeeds. Such a run is pushed later from any machine with ``neuroptimus catalog push``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact

from neuroptimus.storage.catalog.client import (
    UNREACHABLE,
    URL_VARIABLE,
    CatalogClient,
    CatalogClientError,
    push_run,
)
from neuroptimus.tasks.artifacts import artifact_key

# a catalog that does not answer must not hold a finished run for long
TIMEOUT_S = 20.0


def configured_catalog(catalog_url: str | None = None) -> str | None:
    """The catalog to push to: the flow's parameter, else ``NEUROPTIMUS_CATALOG_URL``."""
    return catalog_url or os.environ.get(URL_VARIABLE) or None


@task(name="push-to-catalog")
def push_to_catalog(
    stores: Sequence[str], catalog_url: str | None = None, with_store: bool = True
) -> list[str]:
    """Push ``stores`` (metadata and, with ``with_store``, the zipped store) to the configured
    catalog; the entries' addresses. Never raises: a failure is a warning, and after a
    catalog that cannot be reached the remaining stores are not tried."""
    server = configured_catalog(catalog_url)
    if not server:
        return []
    logger = get_run_logger()
    pushed: list[str] = []
    try:
        with CatalogClient(server, timeout=TIMEOUT_S) as client:
            for store in stores:
                try:
                    entry = push_run(client, store, with_store=with_store)
                except CatalogClientError as error:
                    if error.status == UNREACHABLE:  # the next ones would be too
                        raise
                    logger.warning("%s was not pushed to the catalog: %s", store, error)
                    continue
                pushed.append(entry.url)
                logger.info("catalog entry of %s: %s", store, entry.url)
                for note in entry.warnings:
                    logger.warning("catalog: %s", note)
                _link(entry.url, store)
    except Exception as error:  # a side channel: whatever went wrong, the run stands
        logger.warning(
            "the run(s) were not pushed to the catalog at %s: %s; push them later with "
            "`neuroptimus catalog push STORE --server %s`", server, error, server,
        )  # fmt: skip
    return pushed


def _link(url: str, store: str) -> None:
    """A link artifact to the entry on the flow run's page (best effort)."""
    try:
        create_link_artifact(
            url, link_text="catalog entry", key=artifact_key("catalog", url.rsplit("/", 1)[-1]),
            description=f"The results catalog's entry of {store}",
        )  # fmt: skip
    except Exception as error:
        get_run_logger().debug("no link artifact for %s: %s", url, error)
