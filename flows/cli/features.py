"""``neuroptimus features …``: eFEL feature statistics files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neuroptimus.flows.cli.common import fail

app = typer.Typer(help="eFEL feature statistics files.", no_args_is_help=True)


@app.command("extract")
def features_extract(
    recordings: Annotated[
        Path,
        typer.Argument(
            help="YAML listing trace files per stimulus amplitude (see docs/problems.md)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="The features JSON to write.")] = Path("features.json"),
) -> None:
    """Recorded traces per stimulus amplitude → a features file (mean and std over the
    recordings, the original tool's format) for a problem's target.features."""
    from neuroptimus.optimization.scoring.feature_extraction import (  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
        ExtractionError,
        write_features_file,
    )

    try:
        notes = write_features_file(recordings, out)
    except ExtractionError as error:
        fail(str(error))
    for note in notes:
        typer.echo(f"note: {note}")
    typer.echo(f"features file: {out}")
