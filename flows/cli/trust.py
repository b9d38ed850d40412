"""What ``neuroptimus analyze STORE --identifiability / --sensitivity / --validate /
--posterior`` does (kept out of ``cli.py``)."""

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


def validate_command(store: Path, best: int | None, cluster) -> None:
    """Run the validation flow on ``store`` and print the training and validation error of
    each individual validated."""
    from neuroptimus.flows.validation import check_validatable  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        check_validatable(str(store))
    except NeuroptimusError as error:
        fail_on(error)
    with prefect_ready():
        from neuroptimus.flows.validation import validation_flow  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

        try:
            found = validation_flow(str(store), cluster, best)
        except NeuroptimusError as error:
            fail_on(error)
    typer.echo(f"{'row':>8}  {'training':>12}  {'validation':>12}")
    for row, training, total in zip(
        found["rows"], found["training_total"], found["total"], strict=True
    ):
        typer.echo(f"{row:>8}  {training:>12.6g}  {total:>12.6g}")
    error = found["validation_error"]
    typer.echo(f"validation error of the best: {'failed' if error is None else f'{error:.6g}'}")


def posterior_command(store: Path, burn: int | None, thin: int, csv: Path | None) -> None:
    """Print the posterior table of a sampled ``store`` and write it as CSV."""
    from neuroptimus.analysis.posterior_tables import posterior_of, posterior_rows, posterior_text  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.analysis.trust_tables import write_csv  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        summary = posterior_of(store, burn, thin)
    except NeuroptimusError as error:
        fail_on(error)
    path = csv or store / "posterior.csv"
    try:
        written = write_csv(posterior_rows(summary), path)
    except OSError as error:
        fail(f"cannot write {path}: {error.strerror or error}", 1)
    typer.echo(posterior_text(summary))
    typer.echo(f"csv:      {written}")
