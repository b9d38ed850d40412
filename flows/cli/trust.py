"""What ``neuroptimus analyze STORE --identifiability / --sensitivity`` does (kept out of
``cli.py``)."""

from __future__ import annotations

from pathlib import Path

import typer

from neuroptimus.flows.cli.common import fail, fail_on, prefect_ready
from neuroptimus.optimization.errors import NeuroptimusError


def identifiability_command(store: Path, factor: float, k_sd: float, csv: Path | None) -> None:
    """Print the identifiability table of ``store`` and write it as CSV."""
    from neuroptimus.analysis.trust_tables import (  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
        identifiability_of,
        identifiability_text,
        write_csv,
    )

    try:
        result = identifiability_of(store, factor, k_sd)
    except NeuroptimusError as error:
        fail_on(error)
    path = csv or store / "identifiability.csv"
    try:
        written = write_csv(result.table(), path)
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}", 1)
    typer.echo(identifiability_text(result))
    typer.echo(f"csv:      {written}")


def sensitivity_command(store: Path, step: float, cluster, csv: Path | None) -> None:
    """Run the sensitivity flow on ``store``, print its table and write it as CSV."""
    from neuroptimus.analysis.trust_tables import sensitivity_rows, sensitivity_text, write_csv  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.runs.run_store import RunStore  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.runs.sensitivity import check_local_model  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        RunStore.open(store)
        check_local_model(store)
    except NeuroptimusError as error:
        fail_on(error)
    with prefect_ready():
        from neuroptimus.flows.sensitivity import sensitivity_flow  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

        try:
            found = sensitivity_flow(str(store), cluster, step)
        except NeuroptimusError as error:
            fail_on(error)
    typer.echo(sensitivity_text(found))
    path = csv or store / "sensitivity.csv"
    try:
        written = write_csv(sensitivity_rows(found), path)
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}", 1)
    typer.echo(f"csv:      {written}")
