"""``neuroptimus catalog reproduce`` and ``verify``: rerun a catalogued run, or simulate its
claimed best, on this machine (a bundled use case on this installation's files; any other
problem runs its uploader's code only with --trust), and compare with what was reported.
Registered on the ``catalog`` command group by catalog.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from neuroptimus import usecases
from neuroptimus.flows.cli.catalog_options import (
    RunArg,
    ServerOption,
    TokenOption,
    TrustOption,
    catalog_client,
)
from neuroptimus.flows.cli.common import cluster_config, fail, fail_on
from neuroptimus.flows.cli.launch import launch_run
from neuroptimus.optimization.errors import exit_code


def bundled_folders(name: str | None) -> list[Path]:
    """Where a run's problem files may be on this machine besides the uploader's folder: the
    bundled use case of the same name (its content is checked by the use-case fingerprint)."""

    return [usecases.problem_path(name).parent] if name in usecases.names() else []


def own_problem_here(run):
    from neuroptimus.storage.catalog.trust import own_problem  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    return own_problem(run)


def ask_trust(run, trust: bool, client) -> None:
    """Show what of the uploader's would run here; without ``trust`` stop (exit code 2)."""
    from neuroptimus.storage.catalog.trust import code_to_run  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    typer.echo(f"run {run.run_id} is no bundled use case: it runs its uploader's code here:")
    for line in code_to_run(run):
        typer.echo(f"  {line}")
    if not trust:
        client.close()
        fail("nothing was run: check the code above, then add --trust to run it")


def _problem_here(run, trust: bool, client, rerun: bool = False):
    """The problem to simulate ``run`` on: the bundled use case it is (this installation's
    own files), else, with ``trust``, its uploader's problem with the files found here."""
    from neuroptimus.storage.catalog.reproduce import ReproduceError, local_problem, problem_data  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.trust import own_rerun  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        problem_data(run)  # a run without a problem (the original tool's): said at once
        own = own_problem_here(run)
        if own is not None:
            return own_rerun(run, own) if rerun else own
        ask_trust(run, trust, client)
        return local_problem(run, bundled_folders(run.use_case.name))
    except ReproduceError as error:
        client.close()
        fail_on(error)


def fetch_run(client, run_id: str):
    from neuroptimus.storage.catalog.client import CatalogClientError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        return client.catalog_run(run_id)
    except CatalogClientError as error:
        client.close()
        fail_on(error)


def reproduce(
    run: RunArg,
    server: ServerOption = None,
    token: TokenOption = None,
    to: Annotated[
        Path | None, typer.Option(help="Folder for problem.yaml and the rerun's store.")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Dask worker processes.")] = None,
    cluster: Annotated[str, typer.Option(help="Cluster profile (name or YAML).")] = "local",
    rtol: Annotated[
        float, typer.Option(help="Relative difference of the final error still 'within tolerance'.")
    ] = 1e-6,
    trust: TrustOption = False,
) -> None:
    """Rerun a catalogued run with its problem, algorithm, budget and seed, and compare:
    "identical" (bit for bit: expected with the same package versions), "within tolerance",
    or "differs" (exit code 1). A bundled use case reruns on this installation's files; any
    other problem runs its uploader's code and needs --trust."""
    from neuroptimus.flows.server.state import private_prefect_state  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.intake.ingest import IngestError, run_from_store  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.reproduce import ReproduceError, compare_runs, problem_yaml  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    client, run_id = catalog_client(run, server, token)
    original = fetch_run(client, run_id)
    folder = to or Path(f"reproduce-{run_id}")
    try:
        text = problem_yaml(original)
    except ReproduceError as error:
        fail_on(error)
    spec = _problem_here(original, trust, client, rerun=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "problem.yaml").write_text(text)
    store = folder / f"rerun-{time.strftime('%Y%m%d-%H%M%S')}.zarr"
    typer.echo(f"rerunning {original.optimization_name} (seed {original.seed}) into {store}")
    with private_prefect_state() as prefect_state:
        launch_run(spec, store, cluster_config(cluster, workers), prefect_state)
    try:
        rerun = run_from_store(store)
    except IngestError as error:
        fail_on(error)
    result = compare_runs(original, rerun, rtol)
    if rerun.use_case.fingerprint != original.use_case.fingerprint:
        typer.secho("note: the problem's files here differ from the uploader's "
                    "(use-case fingerprints differ)", fg=typer.colors.YELLOW)  # fmt: skip
    for name, (theirs, ours) in result["versions_differ"].items():
        typer.echo(f"note: {name} {theirs} there, {ours} here")
    typer.echo(
        f"reported final error   {result['reported']!r}\n"
        f"reproduced final error {result['reproduced']!r} (relative difference "
        f"{result['rel_diff']:.3g})\nevaluations            {result['evaluations'][0]} → "
        f"{result['evaluations'][1]}"
    )
    if result["first_different_generation"] is not None:
        typer.echo(f"first different generation: {result['first_different_generation']}")
    colour = typer.colors.GREEN if result["verdict"] != "differs" else typer.colors.RED
    typer.secho(result["verdict"], fg=colour, bold=True)
    if result["verdict"] == "differs":
        raise typer.Exit(1)


def verify(
    run: RunArg,
    server: ServerOption = None,
    token: TokenOption = None,
    post: Annotated[
        bool, typer.Option(help="Record the result in the catalog (needs a 'verify' token).")
    ] = True,
    rtol: Annotated[float, typer.Option(help="Relative tolerance on the total error.")] = 1e-6,
    trust: TrustOption = False,
) -> None:
    """Simulate a run's claimed best parameters on its problem and compare the total error
    with the reported one; record the result in the catalog (exit code 1: not verified). A
    bundled use case is simulated on this installation's files; any other problem runs its
    uploader's code and needs --trust."""
    from neuroptimus.storage.catalog.client import CatalogClientError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.verify import VerificationError, verify_best  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    client, run_id = catalog_client(run, server, token)
    if post and client.token:
        _check_verify_scope(client)  # before the simulation, not after
    claimed = fetch_run(client, run_id)
    spec = _problem_here(claimed, trust, client)
    try:
        result = verify_best(claimed, spec, rtol)
    except VerificationError as error:
        client.close()
        fail_on(error)
    typer.echo(
        f"reported total error   {result['reported']!r}\nsimulated total error  "
        f"{result['reproduced']!r} (relative difference {result['rel_diff']:.3g}, status "
        f"{result['details']['status']})"
    )
    if post and client.token:
        try:
            with client:
                client.post_verification(run_id, result)
        except CatalogClientError as error:
            fail(f"not recorded: {error}", exit_code(error))
        typer.echo(f"recorded  {client.run_url(run_id)}")
    else:
        client.close()
        if post:
            typer.echo("not recorded (no token: --token or NEUROPTIMUS_CATALOG_TOKEN)")
    typer.secho("verified" if result["ok"] else "NOT verified", bold=True,
                fg=typer.colors.GREEN if result["ok"] else typer.colors.RED)  # fmt: skip
    if not result["ok"]:
        raise typer.Exit(1)


def _check_verify_scope(client) -> None:
    """Fail at once when the token cannot record a verification (a token without the
    ``read`` scope cannot say: it is tried at the end)."""
    from neuroptimus.storage.catalog.client import CatalogClientError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    try:
        me = client.me()
    except CatalogClientError as error:
        if error.status == 403:
            return
        client.close()
        fail_on(error)
    if not me.get("is_admin") and not {"verify", "admin"} & set(me.get("scopes", ())):
        client.close()
        fail(f"the token of {me.get('handle')} lacks the 'verify' scope: the result could not "
              "be recorded (make one with `neuroptimus catalog token --scope verify`, or "
              "use --no-post)")  # fmt: skip
