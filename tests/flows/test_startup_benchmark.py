"""`neuroptimus benchmark startup` times real command-line runs from the phase marks they write
(its figures are measurements for docs/benchmarks.md, not checked here)."""

from __future__ import annotations

import csv
import tempfile

import pytest

from neuroptimus.flows.benchmarks.startup import startup_benchmark
from neuroptimus.flows.server.shared import stop_unused_server

pytestmark = pytest.mark.slow

PHASES = (
    "checked", "cluster-started", "model-checked", "flows-imported", "prefect-ready",
    "flow-started", "setup-done", "generations-start", "generations-end", "optimize-done",
    "report-start", "report-written", "flow-finished", "stopped", "exit", "exited",
)  # fmt: skip


def test_startup_benchmark_times_cold_and_warm_runs_from_process_start_to_exit(
    tmp_path, capsys, monkeypatch
):
    # a host server of its own (in a temporary folder of its own): other tests' commands use
    # the host's shared one, which the cold run could not stop while they run
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    try:
        rows = startup_benchmark("hh", 1, tmp_path / "startup.csv", pause_s=0.5)
    finally:
        stop_unused_server()
    cold, warm = rows
    assert (cold["server"], warm["server"]) == ("cold", "warm")
    assert "at_prefect-server-launched" in cold and "at_prefect-server-found" in warm
    for row in rows:
        # every phase was marked, in this order, and nothing fell back to the slow teardown
        assert [row[f"at_{phase}"] for phase in PHASES] == sorted(row[f"at_{p}"] for p in PHASES)
        assert "at_teardown" not in row
        assert row["startup_s"] == row["at_generations-start"] > 0
        assert row["finish_s"] == pytest.approx(row["at_exited"] - row["at_generations-end"])
        assert row["fixed_s"] < row["total_s"] == row["at_exited"]
        assert row["cpu_s"] > row["cpu_exit"] > 0  # the workers count too
    with open(tmp_path / "startup.csv") as file:
        written = list(csv.DictReader(file))
    assert [float(w["startup_s"]) for w in written] == pytest.approx([r["startup_s"] for r in rows])
    out = capsys.readouterr().out
    assert "median of 1, cold server: process start → first generation" in out
    assert "median of 1, warm server" in out and "last generation → exit" in out
