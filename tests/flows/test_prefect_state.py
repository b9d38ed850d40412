"""Command-line runs never share Prefect's SQLite file between hosts: without a configured
Prefect, each host's commands use one server (and its database) in the local temporary
folder, started by the first command and left when idle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from neuroptimus.flows.server import shared
from neuroptimus.flows.server import state as prefect_state
from neuroptimus.flows.server.shared import IDLE, idle_seconds
from neuroptimus.optimization.locks import process_alive


@pytest.fixture
def bare_env(monkeypatch, tmp_path):
    for name in (*prefect_state.USER_SETTINGS, "PREFECT_PROFILES_PATH", "PREFECT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_configured_prefect_is_left_alone(bare_env, monkeypatch):
    assert not prefect_state.user_configured()
    monkeypatch.setenv("PREFECT_API_URL", "http://server:4200/api")
    assert prefect_state.user_configured()


def test_a_profile_setting_counts_as_configured(bare_env):
    profiles = bare_env / ".prefect" / "profiles.toml"
    profiles.parent.mkdir()
    profiles.write_text('active = "site"\n[profiles.site]\nPREFECT_HOME = "/scratch/prefect"\n')
    assert prefect_state.user_configured()
    profiles.write_text('active = "site"\n[profiles.site]\nPREFECT_LOGGING_LEVEL = "INFO"\n')
    assert not prefect_state.user_configured()


def _run(env: dict, store: Path, seed: int = 1, population: int = 2) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "neuroptimus.flows.cli", "run", "hh", "--population", str(population),
        "--generations", "1", "--workers", "1", "--seed", str(seed), "--store", str(store),
        "--no-report",  # what these tests look at is Prefect's server
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _finished(run: subprocess.Popen) -> None:
    assert run.wait(timeout=600) == 0, run.stderr.read()[-3000:]


def _server(tmp: Path) -> dict | None:
    """The live server's state (pid, port, home) in the temporary folder ``tmp``."""
    found = list(tmp.glob("neuroptimus-prefect-*/server-*/server.json"))
    return json.loads(found[0].read_text()) if found else None


def _filter(server: dict, kind: str):
    url = f"http://127.0.0.1:{server['port']}/api/{kind}/filter"
    return httpx.post(url, json={}, timeout=30).raise_for_status().json()


def _bare(tmp_path: Path, tmp: Path, idle: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    tmp.mkdir(exist_ok=True)
    return env | {"HOME": str(tmp_path / "home"), "TMPDIR": str(tmp), IDLE: idle}


@pytest.mark.slow
def test_runs_on_two_hosts_sharing_a_home_directory_use_different_databases(tmp_path):
    """Two runs at once with one home directory (as on nodes sharing $HOME over NFS), each
    with its node's temporary folder: each node's server has its own database, on its local
    disk, while they run; nothing lands in ~/.prefect; with NEUROPTIMUS_PREFECT_IDLE=0 nothing
    is left."""
    hosts = [tmp_path / "node1-tmp", tmp_path / "node2-tmp"]
    runs = [
        _run(_bare(tmp_path, tmp, "0"), tmp_path / f"run{seed}.zarr", seed, population=10)
        for seed, tmp in enumerate(hosts, start=1)
    ]  # population 10: long enough for the two runs to overlap
    databases: set[Path] = set()
    at_once = 0
    while any(run.poll() is None for run in runs):
        live = {db for tmp in hosts for db in tmp.glob("neuroptimus-prefect-*/*/home-*/prefect.db")}
        databases |= live
        at_once = max(at_once, len(live))
        time.sleep(0.2)
    for run in runs:
        _finished(run)
    assert len(databases) == 2 and at_once == 2, databases
    assert not (tmp_path / "home" / ".prefect" / "prefect.db").exists()
    for tmp in hosts:
        assert _server(tmp) is None and list(tmp.glob("neuroptimus-prefect-*/*/home-*")) == []
        assert list(tmp.glob("neuroptimus-prefect-*/*/clients/*")) == []


@pytest.mark.slow
def test_the_next_commands_find_the_server_warm_and_it_leaves_when_idle(tmp_path):
    """The first command starts the host's server; it outlives the command, the next ones
    (two at once) use it, one killed with kill -9 is replaced (its home removed), and it
    leaves by itself NEUROPTIMUS_PREFECT_IDLE seconds after the last command."""
    tmp = tmp_path / "tmp"
    env = _bare(tmp_path, tmp, "4")
    _finished(_run(env, tmp_path / "first.zarr"))
    first = _server(tmp)
    assert first is not None and process_alive(first["pid"])  # outlived its command
    # its flow runs are recorded; its events, which nothing reads back, are not
    assert len(_filter(first, "flow_runs")) == 4  # run: setup, optimize, analyze
    assert _filter(first, "events")["events"] == []
    both = [_run(env, tmp_path / f"next{seed}.zarr", seed) for seed in (2, 3)]
    for run in both:
        _finished(run)
    assert _server(tmp) == first  # the same server, found warm by both
    os.kill(first["pid"], signal.SIGKILL)
    _finished(_run(env, tmp_path / "after-kill.zarr", 4))
    second = _server(tmp)
    assert second["pid"] != first["pid"] and not Path(first["home"]).exists()
    deadline = time.monotonic() + 60
    while _server(tmp) is not None or process_alive(second["pid"]):
        assert time.monotonic() < deadline, "the idle server did not leave"
        time.sleep(0.5)
    assert not Path(second["home"]).exists()
    assert list(tmp.glob("neuroptimus-prefect-*/*/clients/*")) == []


def test_run_help_says_where_prefect_state_lives():
    out = subprocess.run(
        [sys.executable, "-m", "neuroptimus.flows.cli", "run", "--help"],
        capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "200"},
    ).stdout  # fmt: skip
    text = " ".join(out.split())  # as the terminal wraps it
    assert "unless PREFECT_API_URL or PREFECT_HOME is set" in text
    assert "a Prefect server of this host, kept with its database in a local temporary" in text
    assert "leaves after NEUROPTIMUS_PREFECT_IDLE seconds unused" in text


def test_the_idle_time_is_read_from_the_environment(monkeypatch, capsys):
    monkeypatch.delenv(IDLE, raising=False)
    assert idle_seconds() == 600
    monkeypatch.setenv(IDLE, "0")
    assert idle_seconds() == 0
    for wrong in ("ten", "-5", "nan"):
        monkeypatch.setenv(IDLE, wrong)
        assert idle_seconds() == 600
        assert f"warning: {IDLE}='{wrong}' is not a number of seconds" in capsys.readouterr().err


def test_a_command_killed_while_registering_leaves_no_marker_that_looks_alive(tmp_path):
    """A marker of a command killed before or while writing its holder line (a folder named
    by its pid, empty or hidden and partial) counts as gone and is removed; this command's
    own marker appears whole and counts as live."""
    clients = tmp_path / "clients"
    clients.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (clients / str(dead.pid)).mkdir()  # killed between mkdir and the holder line
    (clients / f".{dead.pid}.partial").mkdir()  # killed while building its marker
    (clients / f".{dead.pid}.partial" / "holder").write_text("pid 1")
    mine = shared._register(clients)
    assert (mine / "holder").read_text().startswith(f"pid {os.getpid()} on ")
    assert shared.live_clients(tmp_path) == [mine]
    assert sorted(p.name for p in clients.iterdir()) == [str(os.getpid())]
