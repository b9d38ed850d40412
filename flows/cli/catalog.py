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

from neuroptimus.flows.cli.catalog_options import (
    VISIBILITIES,
    DbOption,
    RunArg,
    ServerOption,
    TokenOption,
    TrustOption,
    catalog_client,
)
from neuroptimus.flows.cli.catalog_reproduce import (
    ask_trust,
    fetch_run,
    own_problem_here,
    reproduce,
    verify,
)
from neuroptimus.flows.cli.common import fail, fail_on

app = typer.Typer(
    help="The results catalog: a shared, searchable record of runs to compare and reproduce.",
    no_args_is_help=True,
)


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
    import uvicorn  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    from neuroptimus.storage.catalog.intake.uploads import UploadLimits  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.verify import verify_best  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.web.site import create_site  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

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
    from neuroptimus.optimization.problem.identity import FingerprintError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.optimization.problem.spec_base import SpecError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.db.database import open_catalog  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.errors import CatalogError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.intake.held_problems import RegistrationError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.intake.held_problems import register_use_case as register  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

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
    from neuroptimus.storage.catalog.db.database import open_catalog  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

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
    from neuroptimus.flows.benchmarks.catalog_scale import fill, time_queries, time_requests  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.db.database import open_catalog  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.web.site import create_site  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

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
    from neuroptimus.storage.catalog.client import (  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
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
    from neuroptimus.storage.catalog.client import CatalogClientError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    def original_only(path: Path, run) -> None:
        if run.source_format != "original-neuroptimus":
            raise CatalogClientError(
                f"{path} is this tool's own metadata.json: push it with `neuroptimus catalog push`"
            )

    if not server:
        fail("give the catalog with --server URL (or NEUROPTIMUS_CATALOG_URL)")
    _push_all(files, server, token, False, visibility, original_only)


# -- reading ---------------------------------------------------------------------------------


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
    from neuroptimus.storage.catalog.client import CatalogClientError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    client, run_id = catalog_client(run, server, token)  # a token reads its owner's private runs
    claimed = fetch_run(client, run_id)
    if claimed.problem is not None and own_problem_here(claimed) is None:
        ask_trust(claimed, trust, client)
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
    from neuroptimus.storage.catalog.client import unzip_store  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

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
    from neuroptimus.optimization.problem.data import cache_folder  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)
    from neuroptimus.storage.catalog.client import CatalogClientError  # noqa: PLC0415 (lazy: only this command needs it; --help stays fast)

    client, run_id = catalog_client(reference, server)
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


# -- reproducing and verifying (catalog_reproduce.py) ----------------------------------------
app.command()(reproduce)
app.command()(verify)
