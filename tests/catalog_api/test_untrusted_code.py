"""Code from an upload is never run or opened by the catalog, and a client runs it only when
asked to: a server started with ``--verify`` (a real uvicorn process, through the command
line) simulates only the use cases whose files it holds (bundled or registered by an admin);
an identity is derived from the uploaded problem, not taken on its word; a store names no
file the server opens; ``catalog verify``, ``reproduce`` and ``pull`` show what an entry
would run and need ``--trust``; a downloaded store keeps no pickles and is not resumed; a
run's status is the latest check by someone other than its uploader."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from neuroptimus.flows.cli import app
from neuroptimus.optimization.problem.identity import digest, use_case_identity
from neuroptimus.storage.catalog.web.upload_intake import UNVERIFIABLE
from neuroptimus.storage.runs.metadata import run_metadata
from neuroptimus.storage.runs.run_store import RunStore
from tests.flows.catalog_server import free_port, serving

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def cli(*args: str, **env: str):
    return runner.invoke(app, list(args), env={"NEUROPTIMUS_CATALOG_TOKEN": "", **env})


def _external(metadata: dict, marker: Path) -> dict:
    """The problem of ``metadata`` (``hh``) with its model swapped for a shell command that
    leaves ``marker`` behind: what an attacker uploads."""
    problem = copy.deepcopy(metadata["problem"])
    problem["model"] = {
        "simulator": "external", "command": ["sh", "-c", f"touch {marker}"], "folder": None,
        "protocol": "neuroptimus", "per_sweep": True, "trace_file": "trace.dat",
        "spike_file": None,
    }  # fmt: skip
    for parameter in problem["parameters"]:
        parameter["hoc"] = None
    return problem


def item_1_payload(metadata: dict, marker: Path) -> dict:
    """Issue 19's payload: an external ``sh -c`` command under the bundled NEURON use case's
    claimed identity."""
    return {**metadata, "run_id": str(uuid.uuid4()), "problem": _external(metadata, marker)}


def consistent_payload(metadata: dict, marker: Path, folder: Path) -> dict:
    """The same command with the identity its problem gives (made where the attacker ran it):
    accepted, but a use case no server holds."""
    problem = {**_external(metadata, marker), "base_dir": str(folder)}
    identity = use_case_identity(problem).model_dump(mode="json")
    return {**metadata, "run_id": str(uuid.uuid4()), "problem": problem, "use_case": identity}


def hh_variant(metadata: dict, folder: Path) -> tuple[Path, dict]:
    """A copy of the bundled ``hh`` in ``folder`` with a wider bound (another use case, the
    same model and target), and the metadata of the session's run as a run of it."""
    from neuroptimus.optimization.problem.problem_file import load_problem
    from neuroptimus.storage.catalog.intake.held_problems import held_identity

    shutil.copytree(ROOT / "usecases" / "hh", folder)
    path = folder / "problem.yaml"
    path.write_text(path.read_text().replace("name: hh", "name: hh-wide").replace(
        "lower: 0.001, upper: 1.0, unit: S/cm2, true_value: 0.12",
        "lower: 0.001, upper: 2.0, unit: S/cm2, true_value: 0.12",
    ))  # fmt: skip
    spec = load_problem(path)
    identity = held_identity(spec)
    assert identity.components == metadata["use_case"]["components"]
    data = {
        **copy.deepcopy(metadata), "run_id": str(uuid.uuid4()),
        "problem": spec.model_dump(mode="json"), "use_case": identity.model_dump(mode="json"),
    }  # fmt: skip
    return path, data


def _upload(url: str, token: str, metadata: dict, store: bytes | None = None) -> httpx.Response:
    files = {"metadata": ("metadata.json", json.dumps(metadata).encode(), "application/json")}
    if store is not None:
        files["store"] = ("store.zip", store, "application/zip")
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{url}/api/v1/runs", files=files, headers=headers, timeout=120)


def _token(db: str, user: str, *scopes: str) -> str:
    made = cli("catalog", "token", "--db", db, "--user", user, *(f"--scope={s}" for s in scopes))
    assert made.exit_code == 0, made.output
    return made.stdout.strip()


# -- the server ------------------------------------------------------------------------------
@pytest.fixture
def verifying_server(tmp_path):
    """``neuroptimus catalog serve --verify`` in a process of its own (SQLite)."""
    db, files, port = f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path / "files", free_port()
    log = open(tmp_path / "server.log", "w")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-c", "from neuroptimus.flows.cli import main; main()", "catalog", "serve",
         "--db", db, "--files", str(files), "--port", str(port), "--verify"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        assert time.monotonic() < deadline, "the catalog server did not start"
        time.sleep(0.2)
    try:
        yield url, db, files
    finally:
        server.terminate()
        server.wait(30)
        log.close()


def test_a_verifying_server_runs_no_uploaded_code_and_verifies_a_registered_use_case(
    verifying_server, real_run, tmp_path
):
    url, db, files = verifying_server
    token = _token(db, "mallory")
    marker = tmp_path / "marker"
    # issue 19's payload: refused, its identity is not its problem's
    refused = _upload(url, token, item_1_payload(real_run.metadata, marker))
    assert refused.status_code == 422, refused.text
    assert "use_case" in refused.json()["detail"] and "derived from its problem" in refused.text
    # the same command with a consistent identity: kept, unverified, and said so
    (tmp_path / "attacker").mkdir()
    sneaky = consistent_payload(real_run.metadata, marker, tmp_path / "attacker")
    kept = _upload(url, token, sneaky)
    assert kept.status_code == 201, kept.text
    assert kept.json()["warnings"] == [UNVERIFIABLE]
    # an admin registers a use case; a run of it is verified by the server with its files
    problem, wide = hh_variant(real_run.metadata, tmp_path / "admin" / "hh-wide")
    registered = cli("catalog", "register-use-case", str(problem), "--db", db,
                     "--files", str(files))  # fmt: skip
    assert registered.exit_code == 0, registered.output
    assert registered.stdout.split()[1] == "hh-wide", registered.output
    assert wide["use_case"]["fingerprint"] in registered.stdout
    shutil.rmtree(tmp_path / "admin")  # the server has its own copy
    checked = _upload(url, token, wide)
    assert checked.status_code == 201 and checked.json()["warnings"] == [], checked.text
    # verifications run one at a time in upload order: once this one is recorded, the
    # queue is past the earlier uploads
    deadline = time.monotonic() + 600
    while (entry := httpx.get(f"{url}/api/v1/runs/{wide['run_id']}").json())["verified"] is None:
        assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
        time.sleep(1)
    assert entry["verified"] is True, entry["verifications"]
    (check,) = entry["verifications"]
    assert check["checked_by"] == "server" and check["by"] == "server"
    assert check["reproduced"] == pytest.approx(real_run.metadata["final_error"], rel=1e-6)
    assert not marker.exists()  # no process of the upload ran
    unverified = httpx.get(f"{url}/api/v1/runs/{sneaky['run_id']}").json()
    assert unverified["verified"] is None and unverified["verifications"] == []


# -- identity and paths (the API in this process, on SQLite and PostgreSQL) -----------------
def test_an_identity_that_is_not_its_problems_is_refused(service, real_run, tmp_path):
    before = service.row_counts()
    other_core = real_run.variant()
    core = other_core["use_case"]["core"]
    core["parameters"][0]["upper"] = 5.0  # the core of another problem, hashed correctly
    other_core["use_case"]["fingerprint"] = digest(core)
    other_problem = real_run.variant()
    other_problem["problem"]["costs"]["functions"][0]["weight"] = 0.0  # solves another problem
    not_hashed = real_run.variant()
    not_hashed["use_case"]["fingerprint"] = "0" * 64
    renamed = real_run.variant()
    renamed["use_case"]["name"] = "ca1-passive"
    for metadata, says in (
        (other_core, "use_case.core.parameters[0].upper is not what the problem gives"),
        (other_problem, "use_case.core.costs.functions[0].weight is not what the problem gives"),
        (not_hashed, "use_case.fingerprint is not the SHA-256 of use_case.core"),
        (renamed, "use_case.name is not the problem's ('hh')"),
    ):
        answer = service.upload(metadata, service.alice)
        assert answer.status_code == 422, answer.text
        assert says in answer.json()["detail"] and answer.json()["detail"].endswith(".")
    assert service.row_counts() == before and service.leftovers() == []
    # the runs real runs write, and the seeded demo, are accepted
    assert service.upload(real_run.metadata, service.alice).status_code == 201
    for path in sorted((ROOT / "docs" / "catalog-demo" / "metadata").glob("*.json")):
        answer = service.upload(path.read_bytes(), service.alice)
        assert answer.status_code == 201, (path.name, answer.text)


def _probe(fifo: Path, stop: threading.Event, opened: list[bool]) -> None:
    """Whether anyone opens ``fifo`` for reading: a writer can open it (without blocking)
    only then."""
    while not stop.is_set():
        try:
            descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: no reader
            time.sleep(0.005)
            continue
        opened.append(True)
        os.close(descriptor)  # the reader gets an end of file instead of hanging


def test_a_store_without_an_identity_names_no_file_the_server_opens(
    service, real_run, hh_run_store, tmp_path
):
    from catalog_service import zip_folder

    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    store = tmp_path / "old.zarr"
    shutil.copytree(hh_run_store, store)
    group = json.loads((store / "zarr.json").read_text())
    attributes = group["attributes"]
    attributes.pop("use_case")  # a store older than the catalog
    attributes["spec"]["model"]["hoc"] = str(fifo)  # names a file of the server's
    (store / "zarr.json").write_text(json.dumps(group))
    identity = copy.deepcopy(real_run.metadata["use_case"])
    identity["core"]["model"]["entry"] = "ab" * 32  # what the uploader says it hashed
    identity["fingerprint"] = digest(identity["core"])
    metadata = run_metadata(RunStore.open(store), identity)
    stop, opened = threading.Event(), []
    probe = threading.Thread(target=_probe, args=(fifo, stop, opened))
    probe.start()
    try:
        answer = service.upload(metadata, service.alice, store=zip_folder(store, "old.zarr"))
    finally:
        stop.set()
        probe.join()
    assert answer.status_code == 201, answer.text
    assert opened == []  # nobody read the file
    kept = service.client.get(f"/api/v1/runs/{metadata['run_id']}").json()
    assert kept["use_case"]["core"]["model"]["entry"] == "ab" * 32  # nothing of it went in


def test_a_runs_status_is_the_latest_check_by_someone_other_than_its_uploader(service, real_run):
    url = f"/api/v1/runs/{real_run.run_id}/verifications"
    assert service.upload(real_run.metadata, service.alice).status_code == 201
    own = service.catalog.issue_token("alice", scopes={"read", "upload", "verify"})
    check = {"method": "resimulate-best", "reported": 1.0, "reproduced": 1.0, "ok": True}
    refused = service.client.post(url, json=check, headers=service.auth(own))
    assert refused.status_code == 403 and "uploaded by alice" in refused.json()["detail"]
    vera = service.catalog.issue_token("vera", scopes={"read", "verify"})
    assert service.client.post(url, json=check, headers=service.auth(vera)).status_code == 201
    failed = {**check, "reproduced": 2.0, "ok": False}
    assert service.client.post(url, json=failed, headers=service.auth(vera)).status_code == 201
    entry = service.client.get(f"/api/v1/runs/{real_run.run_id}").json()
    assert entry["verified"] is False  # a later failure outweighs an earlier pass
    assert [(v["by"], v["checked_by"], v["ok"]) for v in entry["verifications"]] == [
        ("vera", "client", True), ("vera", "client", False)
    ]  # fmt: skip


# -- the client ------------------------------------------------------------------------------
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_client_runs_an_entrys_code_only_with_trust(real_run, hh_run_store, tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "attacker").mkdir()
    sneaky = consistent_payload(real_run.metadata, marker, tmp_path / "attacker")
    _, wide = hh_variant(real_run.metadata, tmp_path / "hh-wide")
    with serving(tmp_path / "served") as (url, db):
        token, vera = _token(db, "mallory"), _token(db, "vera", "read", "verify")
        for metadata in (sneaky, wide):
            assert _upload(url, token, metadata).status_code == 201
        for command, option in (("verify", ["--no-post"]), ("reproduce", ["--to"]),
                                ("pull", ["--to"])):  # fmt: skip
            where = [str(tmp_path / command)] if option == ["--to"] else []
            asked = cli("catalog", command, f"{url}/runs/{sneaky['run_id']}", *option, *where)
            assert asked.exit_code == 2, asked.output
            assert f"program      sh -c 'touch {marker}'" in asked.stdout
            (line,) = asked.stderr.strip().splitlines()
            assert "--trust" in line
            assert not marker.exists() and not (tmp_path / command).exists()
        # a NEURON problem that is no bundled use case: its hoc file, with its SHA-256
        asked = cli("catalog", "pull", f"{url}/runs/{wide['run_id']}", "--to", str(tmp_path / "w"))
        assert asked.exit_code == 2
        hoc = _sha(ROOT / "usecases" / "hh" / "model.hoc")
        assert f"hoc file     {hoc}  model.hoc" in asked.stdout
        pulled = cli("catalog", "pull", f"{url}/runs/{wide['run_id']}", "--to",
                     str(tmp_path / "w"), "--trust")  # fmt: skip
        assert pulled.exit_code == 0 and (tmp_path / "w" / "problem.yaml").is_file()
        # with --trust the uploader's command runs here: the user asked for it
        trusted = cli("catalog", "verify", f"{url}/runs/{sneaky['run_id']}", "--trust",
                      NEUROPTIMUS_CATALOG_TOKEN=vera)  # fmt: skip
        assert "program      sh -c" in trusted.stdout
        assert marker.exists(), trusted.output


def test_a_pulled_store_has_no_pickles_and_is_not_resumed(real_run, hh_run_store, tmp_path):
    assert (hh_run_store / "checkpoint.pkl").is_file()  # the uploaded store has its state
    with serving(tmp_path / "served") as (url, db):
        token = _token(db, "alice")
        pushed = cli("catalog", "push", str(hh_run_store), "--server", url, "--with-store",
                     NEUROPTIMUS_CATALOG_TOKEN=token)  # fmt: skip
        assert pushed.exit_code == 0, pushed.output
        # a bundled use case: nothing of the uploader's runs, no --trust needed
        pulled = cli("catalog", "pull", pushed.stdout.split()[1], "--to", str(tmp_path / "p"))
        assert pulled.exit_code == 0, pulled.output
    store = tmp_path / "p" / "store.zarr"
    assert (store / "zarr.json").is_file() and (store / "from-catalog.json").is_file()
    assert not {"checkpoint.pkl", "journal.bin", "inflight"} & {p.name for p in store.iterdir()}
    resumed = cli("resume", str(store))
    assert resumed.exit_code != 0 and "downloaded from a results catalog" in resumed.output


def test_a_use_case_is_registered_only_with_its_files_together(tmp_path):
    folder = tmp_path / "uc"
    shutil.copytree(ROOT / "usecases" / "hh", folder)
    (folder / "model.hoc").rename(tmp_path / "model.hoc")
    problem = folder / "problem.yaml"
    problem.write_text(problem.read_text().replace("hoc: model.hoc", "hoc: ../model.hoc"))
    db, files = f"sqlite:///{tmp_path / 'c.sqlite'}", str(tmp_path / "files")
    result = cli("catalog", "register-use-case", str(problem), "--db", db, "--files", files)
    assert result.exit_code == 2 and "outside the problem's folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
