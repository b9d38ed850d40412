"""Command-line runs never share Prefect's SQLite file: without a configured Prefect each
command gets a private home (database and server) in the local temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows import prefect_state


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


@pytest.mark.slow
def test_two_concurrent_cli_runs_use_different_databases(tmp_path):
    """Two runs at once with one home directory (as on nodes sharing $HOME over NFS): each
    has its own database while they run, nothing lands in ~/.prefect, nothing is left."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env |= {"HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    runs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "flows.cli",
                "run",
                "hh",
                "--population",
                "10",  # long enough (150 evaluations) for the two runs to overlap
                "--generations",
                "15",
                "--workers",
                "1",
                "--seed",
                str(seed),
                "--store",
                str(tmp_path / f"run{seed}.zarr"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for seed in (1, 2)
    ]
    databases: set[Path] = set()
    at_once = 0
    while any(run.poll() is None for run in runs):
        live = set(Path(env["TMPDIR"]).glob("neuroptimus-prefect-*/home-*/prefect.db"))
        databases |= live
        at_once = max(at_once, len(live))
        time.sleep(0.2)
    for run in runs:
        assert run.returncode == 0, run.stderr.read()[-3000:]
    assert len(databases) == 2 and at_once == 2, databases
    assert not (tmp_path / "home" / ".prefect" / "prefect.db").exists()
    assert list(Path(env["TMPDIR"]).glob("neuroptimus-prefect-*/home-*")) == []


def test_run_help_says_where_prefect_state_lives():
    out = subprocess.run(
        [sys.executable, "-m", "flows.cli", "run", "--help"],
        capture_output=True, text=True, check=True, env={**os.environ, "COLUMNS": "200"},
    ).stdout  # fmt: skip
    text = " ".join(out.split())  # as the terminal wraps it
    assert "unless PREFECT_API_URL or PREFECT_HOME is set" in text
    assert "in a local temporary folder removed when it ends" in text
