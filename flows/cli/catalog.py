"""``neuroptimus catalog …``: serve a results catalog, and push, pull, reproduce and verify its
runs from the command line.

Compute nodes never need to reach the catalog: a run's store (or its metadata.json) is pushed
after the fact from a login node or a laptop. Exit codes: 0 done; 1 the catalog refused or a
check failed (a reproduction that differs, a claimed best that does not verify); 2 a mistake
on this side (a file that is not a run, a missing server address).
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from neuroptimus.flows.cli.common import fail, fail_on
from neuroptimus.optimization.errors import exit_code

app = typer.Typer(
    help="The results catalog: a shared, searchable record of runs to compare and reproduce.",
    no_args_is_help=True,
)

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


def _bundled_folders(name: str | None) -> list[Path]:
    """Where a run's problem files may be on this machine besides the uploader's folder: the
    bundled use case of the same name (its content is checked by the use-case fingerprint)."""
    from neuroptimus import usecases

    return [usecases.problem_path(name).parent] if name in usecases.names() else []


# -- the server ------------------------------------------------------------------------------
@app.command()
def serve(
    db: DbOption = None,
    files: Annotated[Path, typer.Option(help="Folder for uploaded stores and archives.")] = Path(
        "catalog-files"
    ),
    host: Annotated[
        str, typer.Option(help="Address to listen on; the default admits this machine only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the pages and the API.")] = 8765,
    verify: Annotated[
        bool,
        typer.Option(
            help="Re-simulate each uploaded run's claimed best (in the background) when its use "
            "case is one whose files the catalog holds: bundled, or registered by an admin."
        ),
    ] = False,
    max_upload_mib: Annotated[
        int, typer.Option(min=1, help="Largest file of an upload (store zip, archive), MiB.")
    ] = 200,
    max_unpacked_mib: Annotated[
        int, typer.Option(min=1, help="Most one upload may unpack (store and archive), MiB.")
    ] = 1024,
    max_entries: Annotated[
        int, typer.Option(min=1, help="Most entries one upload may unpack.")
    ] = 50_000,
    user_quota_gib: Annotated[
        float, typer.Option(min=0.001, help="Unpacked bytes a user's runs may hold, GiB.")
    ] = 20.0,
    staging_gib: Annotated[
        float,
        typer.Option(min=0.001, help="Most all uploads being checked may unpack at once, GiB."),
    ] = 4.0,
) -> None:
    """Serve the catalog: pages, the JSON API under /api/v1 and its docs at /docs."""
    import uvicorn

    from neuroptimus.storage.catalog.intake.uploads import UploadLimits
    from neuroptimus.storage.catalog.verify import verify_best
    from neuroptimus.storage.catalog.web.site import create_site

    limits = UploadLimits(
        max_bytes=max_upload_mib * 2**20, max_unpacked_bytes=max_unpacked_mib * 2**20,
        max_members=max_entries, max_user_members=2 * max_entries,
        max_staging_members=4 * max_entries, max_user_bytes=int(user_quota_gib * 2**30),
        max_staging_bytes=int(staging_gib * 2**30),
    )  # fmt: skip
    typer.echo(f"catalog at http://{host}:{port}/  (API docs: /docs; Ctrl-C stops it)")
    app = create_site(db, files, verify_best if verify else None, limits=limits)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@app.command("register-use-case")
def register_use_case(
    problem: Annotated[Path, typer.Argument(help="The use case's problem file (YAML).")],
    db: DbOption = None,
    files: Annotated[Path, typer.Option(help="The catalog's files folder (as serve's).")] = Path(
        "catalog-files"
    ),
    admin: Annotated[str, typer.Option(help="The admin registering it (a user handle).")] = "admin",
) -> None:
    """Register a use case: its problem file and the files it names are copied into the
    catalog's files folder and its identity computed from the copies; `serve --verify` then
    re-simulates runs of it on these files (an upload's own problem is never run)."""
    from neuroptimus.optimization.problem.identity import FingerprintError
    from neuroptimus.optimization.problem.spec_base import SpecError
    from neuroptimus.storage.catalog.db.database import open_catalog
    from neuroptimus.storage.catalog.errors import CatalogError
    from neuroptimus.storage.catalog.intake.held_problems import RegistrationError
    from neuroptimus.storage.catalog.intake.held_problems import register_use_case as register

    try:
        done = register(open_catalog(db), files, problem, admin)
    except (RegistrationError, SpecError, FingerprintError, CatalogError) as error:
        fail_on(error)
    typer.echo(f"registered {done['slug']}  fingerprint {done['fingerprint']}  "
               f"files {files / done['files']}")  # fmt: skip


@app.command()
def token(
    user: Annotated[str, typer.Option(help="The user's handle (created if new).")],
    db: DbOption = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            help="Scope (repeatable): read, upload, verify, admin. Default: read, upload."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="A note saying what the token is for.")] = "",
) -> None:
    """Print a new API token for USER (shown once: only its hash is stored)."""
    from neuroptimus.storage.catalog.db.database import open_catalog

    scopes = set(scope or ("read", "upload"))
    unknown = scopes - {"read", "upload", "verify", "admin"}
    if unknown:
        fail(f"unknown scope(s) {', '.join(sorted(unknown))}: read, upload, verify, admin")
    typer.echo(open_catalog(db).issue_token(user, scopes, name))


@app.command()
def benchmark(
    db: DbOption = None,
    runs: Annotated[int, typer.Option(help="Synthetic runs to add first (0: none).")] = 100_000,
    seed: int = 0,
    csv_path: Annotated[
        Path | None,
        typer.Option(
            "--csv", help="Write the timings here [docs/benchmarks/catalog-scale-DB.csv]."
        ),
    ] = None,
) -> None:
    """Fill a catalog with realistic synthetic runs and time its queries (list, filter, sort,
    page 2, leaderboard; in the catalog and over HTTP) in milliseconds: the figures the
    documentation quotes (docs/catalog.md)."""
    from neuroptimus.flows.benchmarks.catalog_scale import fill, time_queries, time_requests
    from neuroptimus.storage.catalog.db.database import open_catalog
    from neuroptimus.storage.catalog.web.site import create_site

    catalog = open_catalog(db)
    backend = catalog.dialect
    if runs:
        started = time.perf_counter()
        fill(catalog, runs, seed)
        typer.echo(f"filled {runs} runs in {time.perf_counter() - started:.1f} s")
    total = catalog.list_runs(limit=1).total
    timings = time_queries(catalog)
    with tempfile.TemporaryDirectory() as files:
        timings |= time_requests(create_site(db, Path(files)), catalog)
    load = os.getloadavg()[0]
    typer.echo(f"{'query':<26} {'ms':>8}   ({backend}, {total} public runs, 1-min load {load:.2f})")
    for query, ms in timings.items():
        typer.echo(f"{query:<26} {ms:>8.1f}")
    csv_path = csv_path or Path(f"docs/benchmarks/catalog-scale-{backend}.csv")
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["backend", "public_runs", "query", "ms", "load_1min", "measured"])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for query, ms in timings.items():
            writer.writerow([backend, total, query, f"{ms:.3f}", f"{load:.2f}", stamp])
    typer.echo(f"timings written to {csv_path}")


# -- pushing ---------------------------------------------------------------------------------
def _run_paths(paths: list[Path]) -> list[Path]:
    """Run stores and metadata files among ``paths``; a folder that is no store stands for the
    stores in it (a benchmark folder), two levels deep."""
    found: list[Path] = []
    for path in paths:
        if path.is_file() or (path / "zarr.json").is_file():
            found.append(path)
        elif path.is_dir():
            stores = {p.parent for p in path.glob("*/zarr.json")}
            # two levels deep, but not the groups inside a store
            stores |= {
                p.parent for p in path.glob("*/*/zarr.json") if p.parent.parent not in stores
            }
            inside = sorted(stores)
            if not inside:
                fail(f"{path}: neither a run store nor a folder of run stores")
            found.extend(inside)
        else:
            fail(f"{path}: no such run store or metadata file")
    return list(dict.fromkeys(found))


def _push_all(
    paths: list[Path], server: str, token: str | None, with_store: bool, visibility: str,
    check: Callable | None = None,
) -> None:  # fmt: skip
    from neuroptimus.storage.catalog.client import (
        UNREACHABLE,
        CatalogClient,
        CatalogClientError,
        push_run,
        run_upload,
    )

    if visibility not in VISIBILITIES:
        fail(f"--visibility {visibility!r}: one of {', '.join(VISIBILITIES)}")
    if not token:
        fail("give a token with --token or NEUROPTIMUS_CATALOG_TOKEN "
              "(`neuroptimus catalog token --user NAME` on the server makes one)")  # fmt: skip
    failed = 0
    with CatalogClient(server, token) as client:
        for path in _run_paths(paths):
            try:
                if check is not None:
                    check(path, run_upload(path)[0])
                entry = push_run(client, path, with_store, visibility)
            except CatalogClientError as error:
                if error.status in (UNREACHABLE, 401, 403):
                    fail_on(error)  # the others would fail the same way
                typer.secho(f"error: {path}: {error}", err=True, fg=typer.colors.RED)
                failed += 1
                continue
            typer.echo(f"{'created' if entry.created else 'unchanged':<10}{entry.url}")
            for note in entry.warnings:
                typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)
    if failed:
        raise typer.Exit(1)


@app.command()
def push(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Run stores, folders of run stores, or metadata.json files."),
    ],
    server: ServerOption = None,
    token: TokenOption = None,
    with_store: Annotated[
        bool, typer.Option(help="Upload the zipped store too (to explore it from the catalog).")
    ] = False,
    visibility: Annotated[str, typer.Option(help="public, unlisted or private.")] = "public",
) -> None:
    """Upload runs to a catalog; pushing a run again changes nothing (the run's id is its key).
    Prints each entry's address."""
    if not server:
        fail("give the catalog with --server URL (or NEUROPTIMUS_CATALOG_URL)")
    _push_all(paths, server, token, with_store, visibility)


@app.command("import-original")
def import_original(
    files: Annotated[list[Path], typer.Argument(help="The original tool's metadata.json files.")],
    server: ServerOption = None,
    token: TokenOption = None,
    visibility: Annotated[str, typer.Option(help="public, unlisted or private.")] = "public",
) -> None:
    """Upload metadata.json files written by the original Neuroptimus (its result folders, the
    paper's archive); their use case is known by names and bounds only."""
    from neuroptimus.storage.catalog.client import CatalogClientError

    def original_only(path: Path, run) -> None:
        if run.source_format != "original-neuroptimus":
            raise CatalogClientError(
                f"{path} is this tool's own metadata.json: push it with `neuroptimus catalog push`"
            )

    if not server:
        fail("give the catalog with --server URL (or NEUROPTIMUS_CATALOG_URL)")
    _push_all(files, server, token, False, visibility, original_only)


# -- reading ---------------------------------------------------------------------------------
def _client(reference: str, server: str | None, token: str | None = None):
    from neuroptimus.storage.catalog.client import CatalogClient, CatalogClientError, run_reference

    try:
        base, run_id = run_reference(reference, server)
    except CatalogClientError as error:
        fail_on(error)
    return CatalogClient(base, token), run_id


@app.command()
def pull(
    run: RunArg,
    server: ServerOption = None,
    token: TokenOption = None,
    to: Annotated[Path | None, typer.Option(help="Folder (default: catalog-<id>).")] = None,
    trust: TrustOption = False,
) -> None:
    """Download a run: metadata.json, problem.yaml (to rerun it) and its store, if uploaded.
    An entry whose problem runs its uploader's code needs --trust (what it runs is shown)."""
    from neuroptimus.storage.catalog.client import CatalogClientError

    client, run_id = _client(run, server, token)  # a token reads its owner's private runs
    claimed = _catalog_run(client, run_id)
    if claimed.problem is not None and _own_problem(claimed) is None:
        _ask_trust(claimed, trust, client)
    folder = to or Path(f"catalog-{run_id}")
    try:
        with client:
            files = {
                name: client.download(run_id, name, missing_ok=name != "metadata.json")
                for name in ("metadata.json", "problem.yaml", "store.zip", "archive")
            }
    except CatalogClientError as error:
        fail_on(error)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if data is None:
            continue
        if name == "store.zip":
            path = _unpacked(data, folder / "store.zarr", client.run_url(run_id))
        else:
            path = folder / name
            path.write_bytes(data)
        typer.echo(f"wrote     {path}")


def _unpacked(data: bytes, path: Path, source: str) -> Path:
    """A store zip unpacked beside ``path``, then moved into place (never half a store),
    without its run state and marked as ``source``'s (see ``client.unzip_store``)."""
    from neuroptimus.storage.catalog.client import unzip_store

    path.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        root = unzip_store(data, building, source)
        root.chmod(0o755)  # mkdtemp's folder is private
        shutil.rmtree(path, ignore_errors=True)
        os.replace(root, path)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return path


def catalog_store(reference: str, server: str | None = None) -> Path:
    """A catalog entry's store, downloaded once into the cache and unpacked read-only (the
    explorer reads it; nothing writes it)."""
    from neuroptimus.optimization.problem.data import cache_folder
    from neuroptimus.storage.catalog.client import CatalogClientError

    client, run_id = _client(reference, server)
    host = client.server.split("://", 1)[-1].replace("/", "_").replace(":", "_")
    path = cache_folder() / "catalog" / host / f"{run_id}.zarr"
    if (path / "zarr.json").is_file():
        return path  # a run's store never changes under its id
    with client:
        data = client.download(run_id, "store.zip", missing_ok=True)
    if data is None:
        raise CatalogClientError(
            f"{client.run_url(run_id)} has no store (it was pushed without --with-store)"
        )
    _unpacked(data, path, client.run_url(run_id))
    for file in path.rglob("*"):
        if file.is_file():
            file.chmod(0o444)
    return path


def local_stores(arguments: list[str]) -> list[Path]:
    """``neuroptimus explore``'s arguments as local paths: a catalog entry's address
    (``http(s)://…/runs/<id>``) becomes its downloaded store."""
    return [
        catalog_store(text) if text.startswith(("http://", "https://")) else Path(text)
        for text in arguments
    ]


# -- reproducing and verifying ----------------------------------------------------------------
def _own_problem(run):
    from neuroptimus.storage.catalog.trust import own_problem

    return own_problem(run)


def _ask_trust(run, trust: bool, client) -> None:
    """Show what of the uploader's would run here; without ``trust`` stop (exit code 2)."""
    from neuroptimus.storage.catalog.trust import code_to_run

    typer.echo(f"run {run.run_id} is no bundled use case: it runs its uploader's code here:")
    for line in code_to_run(run):
        typer.echo(f"  {line}")
    if not trust:
        client.close()
        fail("nothing was run: check the code above, then add --trust to run it")


def _problem_here(run, trust: bool, client, rerun: bool = False):
    """The problem to simulate ``run`` on: the bundled use case it is (this installation's
    own files), else, with ``trust``, its uploader's problem with the files found here."""
    from neuroptimus.storage.catalog.reproduce import ReproduceError, local_problem, problem_data
    from neuroptimus.storage.catalog.trust import own_rerun

    try:
        problem_data(run)  # a run without a problem (the original tool's): said at once
        own = _own_problem(run)
        if own is not None:
            return own_rerun(run, own) if rerun else own
        _ask_trust(run, trust, client)
        return local_problem(run, _bundled_folders(run.use_case.name))
    except ReproduceError as error:
        client.close()
        fail_on(error)


def _catalog_run(client, run_id: str):
    from neuroptimus.storage.catalog.client import CatalogClientError

    try:
        return client.catalog_run(run_id)
    except CatalogClientError as error:
        client.close()
        fail_on(error)


@app.command()
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
    from neuroptimus.flows.cli.common import cluster_config
    from neuroptimus.flows.cli.launch import launch_run
    from neuroptimus.flows.server.state import private_prefect_state
    from neuroptimus.storage.catalog.intake.ingest import IngestError, run_from_store
    from neuroptimus.storage.catalog.reproduce import ReproduceError, compare_runs, problem_yaml

    client, run_id = _client(run, server, token)
    original = _catalog_run(client, run_id)
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


@app.command()
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
    from neuroptimus.storage.catalog.client import CatalogClientError
    from neuroptimus.storage.catalog.verify import VerificationError, verify_best

    client, run_id = _client(run, server, token)
    if post and client.token:
        _check_verify_scope(client)  # before the simulation, not after
    claimed = _catalog_run(client, run_id)
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
    from neuroptimus.storage.catalog.client import CatalogClientError

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
