"""What the command line's commands share: errors in one line, a problem by name or path,
Prefect's state and the cluster profile. Nothing here imports Prefect or the libraries before
a command needs them (the command line's start stays quick)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from neuroptimus.optimization.errors import USER_EXIT, exit_code

ProblemArg = Annotated[
    str,
    typer.Argument(
        help="A bundled use case's name (hh, l5pc …: `neuroptimus usecases` lists them) or "
        "the path of a problem YAML file."
    ),
]


def fail(message: str, code: int = USER_EXIT) -> None:
    """Stop the command with ``error: message`` in one line (exit code 2: the user's mistake;
    3: the machine's, see ``neuroptimus.optimization.errors``; 1: a check that said no)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def fail_on(error: BaseException) -> None:
    """Stop the command on one of Neuroptimus's errors: its one line, its family's exit code."""
    fail(str(error), exit_code(error))


def load(problem: str):
    from neuroptimus.optimization.problem.problem_file import load_problem  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.problem.spec_base import SpecError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.usecases import problem_path  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        return load_problem(problem_path(problem))
    except SpecError as error:
        fail(str(error))


@contextmanager
def prefect_ready() -> Iterator[None]:
    """Prefect's state for this command (see PREFECT_STATE), ready when the block starts."""
    from neuroptimus.flows.server.state import private_prefect_state  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    with private_prefect_state() as state:
        state.wait()
        yield


PREFECT_STATE = (
    "Prefect's state: unless PREFECT_API_URL or PREFECT_HOME is set (in the environment or the "
    "active Prefect profile), the command's flow runs go to a Prefect server of this host, kept "
    "with its database in a local temporary folder, so that commands started at once on nodes "
    "sharing a home directory never share one SQLite file; the first command starts it, the "
    "next ones find it warm, and it leaves after NEUROPTIMUS_PREFECT_IDLE seconds unused "
    "(default 600; 0: with the last command). Set PREFECT_API_URL to record the runs on a "
    "Prefect server of your own instead."
)


ClusterOption = Annotated[
    str,
    typer.Option(
        "--cluster",
        help="Cluster profile: a name in deployments/clusters (local, slurm, pbs …) or the path "
        "of a profile YAML file.",
    ),
]


def cluster_config(profile: str, workers: int | None):
    """The cluster profile, with --workers (if given) as its number of workers."""
    from neuroptimus.flows.cluster_profiles import load_profile  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.execution.cluster import ClusterError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        config = load_profile(profile)
    except ClusterError as error:
        fail(str(error))
    if workers is None:
        return config
    # a fixed number of workers replaces the profile's adaptive bounds
    return config.model_copy(
        update={"workers": workers, "adapt_minimum": None, "adapt_maximum": None}
    )


def check_imported(path: Path) -> None:
    """Validate the written problem; a problem this version cannot read is reported, not
    removed (the user may fix it by hand)."""
    from neuroptimus.optimization.problem.problem_file import load_problem  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.problem.spec_base import SpecError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        load_problem(path)
    except SpecError as error:
        typer.secho(f"check     the problem does not validate: {error}", fg=typer.colors.RED)
        raise typer.Exit(1) from None
    typer.echo(f"check     {path.name} is a valid problem: neuroptimus evaluate {path}")
