"""``neuroptimus import-bluepyopt FOLDER``: a BluePyOpt e-model folder as a problem file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuroptimus.flows.cli.common import check_imported, fail


def import_bluepyopt(
    folder: Annotated[
        Path,
        typer.Argument(help="BluePyOpt e-model folder: config/, morphology/, mechanisms/."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Problem file to write (default: problem.yaml in the folder)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing problem file.")] = False,
) -> None:
    """Convert a BluePyOpt e-model folder (the layout of BluePyOpt's examples/l5pc) into a
    problem file that refers to the folder's morphology and mechanisms.

    Read: config/mechanisms.json, parameters.json, protocols.json and features.json. What
    the example's Python scripts decide (axon replacement, thresholds, feature windows) is
    taken as they have it; that, and what cannot be carried over, is printed and kept as
    comments atop the problem file.
    """
    from neuroptimus.optimization.problem.bluepyopt_import import (  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
        BluePyOptImportError,
        convert_folder,
    )

    out = out or folder / "problem.yaml"
    if out.exists() and not force:
        fail(f"{out} exists: give --force to overwrite it, or --out another file")
    try:
        result = convert_folder(folder, out)
    except BluePyOptImportError as error:
        fail(str(error))
    for line in result.carried:
        typer.echo(f"carried   {line}")
    for note in result.notes:
        typer.secho(f"note      {note}", fg=typer.colors.YELLOW)
    out.write_text(result.text)
    typer.echo(f"wrote     {out}")
    check_imported(out)
