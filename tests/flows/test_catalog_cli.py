"""``neuroptimus catalog …`` against a real catalog server (uvicorn, SQLite) with a real run
store of the bundled ``hh`` problem: token → push (twice) → pull → reproduce → verify; a
wrong token; the original tool's metadata; explore of a catalog entry."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import zipfile

import httpx
import pytest
from typer.testing import CliRunner

from neuroptimus.flows.cli import app
from neuroptimus.flows.cli.catalog import local_stores
from neuroptimus.storage.catalog.client import (
    CatalogClientError,
    run_reference,
    unzip_store,
    zip_store,
)
from neuroptimus.storage.catalog.intake.ingest import read_metadata_file, run_from_store
from neuroptimus.storage.runs.metadata import write_metadata
from neuroptimus.storage.runs.run_store import RunStore
from tests.flows.catalog_server import serving
from tests.storage.catalog.original_metadata import original_metadata

runner = CliRunner()


def cli(*args: str, **env: str):
    return runner.invoke(app, list(args), env={"NEUROPTIMUS_CATALOG_TOKEN": "", **env})


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("catalog")) as (url, db):
        yield url, db


@pytest.fixture(scope="module")
def tokens(catalog):
    """An uploader's token and a verifier's, made by the command line."""
    _, db = catalog
    made = {}
    for user, scopes in (("alice", ["read", "upload"]), ("vera", ["read", "verify"])):
        result = cli("catalog", "token", "--db", db, "--user", user,
                     *(f"--scope={scope}" for scope in scopes))  # fmt: skip
        assert result.exit_code == 0, result.output
        made[user] = result.stdout.strip()
        assert made[user].startswith("npt_") and "\n" not in made[user]
    return made


@pytest.fixture(scope="module")
def pushed(catalog, tokens, hh_run_store):
    """The ``hh`` store pushed with its store, as the tests below find it."""
    url, _ = catalog
    result = cli("catalog", "push", str(hh_run_store), "--server", url, "--with-store",
                 NEUROPTIMUS_CATALOG_TOKEN=tokens["alice"])  # fmt: skip
    assert result.exit_code == 0, result.output
    run = run_from_store(hh_run_store)
    assert result.stdout.split() == ["created", f"{url}/runs/{run.run_id}"]
    return run


def test_push_is_idempotent_and_pull_gets_the_same_run(
    catalog, tokens, pushed, hh_run_store, tmp_path
):
    url, _ = catalog
    again = cli("catalog", "push", "--server", url, "--token", tokens["alice"],
                "--with-store", str(hh_run_store))  # fmt: skip
    assert again.exit_code == 0 and again.stdout.split()[0] == "unchanged", again.output
    assert "note:" not in again.stderr  # the store came the first time: nothing dropped
    listed = httpx.get(f"{url}/api/v1/runs").json()
    assert [item["run_id"] for item in listed["items"]] == [pushed.run_id]

    result = cli("catalog", "pull", f"{url}/runs/{pushed.run_id}", "--to", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    assert read_metadata_file(tmp_path / "p" / "metadata.json") == pushed
    assert "seed: 3" in (tmp_path / "p" / "problem.yaml").read_text()
    assert run_from_store(tmp_path / "p" / "store.zarr") == pushed  # the store came along
    assert not (tmp_path / "p" / "archive").exists()  # none was uploaded


def test_a_wrong_token_is_one_line_and_exit_code_2(catalog, hh_run_store):
    url, _ = catalog
    result = cli("catalog", "push", str(hh_run_store), "--server", url, "--token", "npt_wrong")
    assert result.exit_code == 2  # the user's mistake
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "401" in lines[0], lines
    assert "Traceback" not in result.output
    missing = cli("catalog", "push", str(hh_run_store), "--server", url)
    assert missing.exit_code == 2 and "--token" in missing.stderr


def test_verify_marks_the_run_verified(catalog, tokens, pushed):
    url, _ = catalog
    denied = cli("catalog", "verify", pushed.run_id, "--server", url,
                 "--token", tokens["alice"])  # fmt: skip  # an upload token cannot verify
    assert denied.exit_code == 2 and "lacks the 'verify' scope" in denied.stderr
    assert "simulated" not in denied.stdout  # refused before simulating
    assert httpx.get(f"{url}/api/v1/runs/{pushed.run_id}").json()["verified"] is None

    result = cli("catalog", "verify", f"{url}/runs/{pushed.run_id}",
                 NEUROPTIMUS_CATALOG_TOKEN=tokens["vera"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("verified")
    entry = httpx.get(f"{url}/api/v1/runs/{pushed.run_id}").json()
    assert entry["verified"] is True
    (check,) = httpx.get(f"{url}/api/v1/runs/{pushed.run_id}/verifications").json()
    assert check["ok"] is True and check["method"] == "resimulate-best"
    assert check["reported"] == pushed.final_error == check["reproduced"]


def test_a_made_up_best_is_not_verified(catalog, tokens, pushed, tmp_path):
    """A metadata.json whose final error was lowered by hand (another run id): refused."""
    url, _ = catalog
    data = json.loads(json.dumps(pushed.metadata))
    data["run_id"] = "00000000-0000-4000-8000-000000000001"
    data["final_error"] = pushed.final_error / 2
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(data))
    assert cli("catalog", "push", str(path), "--server", url,
               "--token", tokens["alice"]).exit_code == 0  # fmt: skip
    result = cli("catalog", "verify", data["run_id"], "--server", url, "--token", tokens["vera"])
    assert result.exit_code == 1 and "NOT verified" in result.stdout, result.output
    assert httpx.get(f"{url}/api/v1/runs/{data['run_id']}").json()["verified"] is False


def test_reproduce_is_identical(catalog, tokens, pushed, tmp_path, prefect_harness):
    """The run again, through the run command's own path (a real LocalCluster and Prefect
    flows), with the problem, algorithm and seed the catalog recorded: bit for bit. With a
    catalog configured in the environment, the run flow pushes the rerun at its end."""
    url, _ = catalog
    result = cli("catalog", "reproduce", f"{url}/runs/{pushed.run_id}", "--workers", "1",
                 "--to", str(tmp_path / "again"), NEUROPTIMUS_CATALOG_URL=url,
                 NEUROPTIMUS_CATALOG_TOKEN=tokens["alice"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == "identical"
    assert (tmp_path / "again" / "problem.yaml").is_file()
    (store,) = (tmp_path / "again").glob("rerun-*.zarr")
    rerun = run_from_store(store)
    assert rerun.run_id != pushed.run_id  # a new run …
    assert rerun.final_error == pushed.final_error  # … with the same result
    assert [g.best for g in rerun.curve] == [g.best for g in pushed.curve]
    entry = httpx.get(f"{url}/api/v1/runs/{rerun.run_id}").json()  # pushed by the run flow
    assert entry["uploader"] == "alice" and entry["final_error"] == pushed.final_error
    assert (
        entry["use_case_slug"]
        == httpx.get(f"{url}/api/v1/runs/{pushed.run_id}").json()["use_case_slug"]
    )  # the same problem by content
    stored = httpx.get(f"{url}/api/v1/runs/{rerun.run_id}/store.zip")  # with its store
    assert stored.status_code == 200 and stored.content[:2] == b"PK"


def test_import_original_metadata(catalog, tokens, tmp_path, hh_run_store):
    url, _ = catalog
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(original_metadata()))
    first = cli("catalog", "import-original", str(path), "--server", url,
                "--token", tokens["alice"])  # fmt: skip
    assert first.exit_code == 0 and first.stdout.split()[0] == "created", first.output
    run_url = first.stdout.split()[1]
    again = cli("catalog", "import-original", str(path), "--server", url,
                "--token", tokens["alice"])  # fmt: skip
    assert again.stdout.split() == ["unchanged", run_url]
    entry = httpx.get(run_url.replace("/runs/", "/api/v1/runs/")).json()
    assert entry["source_format"] == "original-neuroptimus"
    assert entry["final_error"] == 0.0125 and entry["evaluations"] == 30
    assert entry["algorithm_label"] == "CMAES" and entry["package"] == "Cmaes"
    # no problem to rerun: said in one line, nothing run
    result = cli("catalog", "reproduce", run_url, "--to", str(tmp_path / "r"))
    assert result.exit_code == 2 and "original tool" in result.stderr
    # our own metadata.json is pushed, not imported
    write_metadata(RunStore.open(hh_run_store), tmp_path / "ours.json")
    ours = cli("catalog", "import-original", str(tmp_path / "ours.json"), str(path),
               "--server", url, "--token", tokens["alice"])  # fmt: skip
    assert ours.exit_code == 1 and "catalog push" in ours.stderr
    assert ours.stdout.split() == ["unchanged", run_url]  # the other file still went


def test_explore_opens_a_catalog_entry_read_only(catalog, pushed, tmp_path, monkeypatch):
    url, _ = catalog
    monkeypatch.setenv("NEUROPTIMUS_DATA_CACHE", str(tmp_path / "cache"))
    (path,) = local_stores([f"{url}/runs/{pushed.run_id}"])
    assert path.is_relative_to(tmp_path / "cache")
    assert run_from_store(path) == pushed
    assert not os.stat(path / "zarr.json").st_mode & (stat.S_IWUSR | stat.S_IWGRP)
    RunStore.open(path)  # the explorer's way in
    assert local_stores([f"{url}/runs/{pushed.run_id}"]) == [path]  # from the cache
    with pytest.raises(CatalogClientError, match="without --with-store"):
        local_stores([f"{url}/runs/00000000-0000-4000-8000-000000000001"])


def test_run_addresses_and_unsafe_zips(tmp_path, hh_run_store):
    run_id = "a28cdc86-5d32-468c-8b1a-d582bae4446b"
    for text in (f"http://h:1/runs/{run_id}", f"http://h:1/api/v1/runs/{run_id}/", run_id):
        assert run_reference(text, "http://h:1") == ("http://h:1", run_id)
    with pytest.raises(CatalogClientError, match="neither a run id"):
        run_reference("runs/42", "http://h:1")
    shutil.copytree(hh_run_store, tmp_path / "s.zarr")
    (tmp_path / "s.zarr" / "writer.lock").write_text("")
    data = zip_store(tmp_path / "s.zarr")
    assert "writer.lock" not in data.decode("latin-1")
    assert run_from_store(unzip_store(data, tmp_path / "u")) == run_from_store(hh_run_store)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.txt", "x")
    with pytest.raises(CatalogClientError, match="unsafe"):
        unzip_store(buffer.getvalue(), tmp_path / "v")
    assert not (tmp_path / "escape.txt").exists()


def test_verdicts_of_a_rerun(hh_run_store):
    from neuroptimus.storage.catalog.reproduce import compare_runs

    run = run_from_store(hh_run_store)
    assert compare_runs(run, run)["verdict"] == "identical"
    curve = [g.model_copy(update={"best": g.best * (1 + 1e-12)}) for g in run.curve]
    nudged = run.model_copy(update={"final_error": run.final_error * (1 + 1e-12), "curve": curve})
    close = compare_runs(run, nudged)
    assert close["verdict"] == "within tolerance" and close["first_different_generation"] == 0
    assert compare_runs(run, run.model_copy(update={"final_error": 2.0}))["verdict"] == "differs"
    other = run.model_copy(update={"provenance": {"versions": {"neuron": "0.0"}}})
    assert "neuron" in compare_runs(run, other)["versions_differ"]


def test_push_and_pull_on_sqlite_and_postgresql(catalog_url, hh_run_store, tmp_path):
    """The same commands against a catalog on either database (PostgreSQL: a real server)."""
    with serving(tmp_path / "served", catalog_url) as (url, db):
        token = cli("catalog", "token", "--db", db, "--user", "dora").stdout.strip()
        pushed = cli("catalog", "push", str(hh_run_store), "--server", url, "--with-store",
                     NEUROPTIMUS_CATALOG_TOKEN=token)  # fmt: skip
        assert pushed.exit_code == 0 and pushed.stdout.split()[0] == "created", pushed.output
        result = cli("catalog", "pull", pushed.stdout.split()[1], "--to", str(tmp_path / "p"))
        assert result.exit_code == 0, result.output
    assert run_from_store(tmp_path / "p" / "store.zarr") == run_from_store(hh_run_store)
