"""What the ``neuroptimus catalog`` commands share: their options and arguments, and the
client for a run's address."""

from __future__ import annotations

from typing import Annotated

import typer

from neuroptimus.flows.cli.common import fail_on

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server", envvar="NEUROPTIMUS_CATALOG_URL", help="The catalog's address (http://…)."
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="NEUROPTIMUS_CATALOG_TOKEN", show_envvar=True,
        help="API token (npt_…) from `neuroptimus catalog token`.",
    ),
]  # fmt: skip
RunArg = Annotated[str, typer.Argument(help="A run's address <server>/runs/<id>, or its id.")]
TrustOption = Annotated[
    bool,
    typer.Option(
        "--trust", help="Run the entry's own program, Python, hoc or NMODL files (shown first); "
        "without it only an entry that is a bundled use case runs, on this installation's files."
    ),
]  # fmt: skip
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (sqlite:///FILE or postgresql://…); empty: "
        "neuroptimus-catalog.sqlite in the working directory."
    ),
]  # fmt: skip
VISIBILITIES = ("public", "unlisted", "private")


def catalog_client(reference: str, server: str | None, token: str | None = None):
    from neuroptimus.storage.catalog.client import CatalogClient, CatalogClientError, run_reference  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        base, run_id = run_reference(reference, server)
    except CatalogClientError as error:
        fail_on(error)
    return CatalogClient(base, token), run_id
