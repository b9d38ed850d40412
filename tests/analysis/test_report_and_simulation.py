"""The static report carries the explorer's figures and opens offline; picked individuals are
simulated with the problem's real simulator in a separate process."""

from __future__ import annotations

import re

import numpy as np
import pytest

from neuroptimus.analysis.report import write_report
from neuroptimus.analysis.report_process import early_report_process, write_report_file
from neuroptimus.analysis.snapshot import read_snapshot
from neuroptimus.analysis.traces import TraceSimulator
from neuroptimus.optimization.evaluation.problem import simulate_isolated
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.runs.run_store import StoreError


def test_report_has_every_view_and_no_network_links(store, tmp_path):
    path = write_report(store, tmp_path / "report.html")
    page = path.read_text()
    for title in (
        "Best individual over the target", "Convergence", "Error components",
        "Parameter space: 60 individuals", "gkbar_hh vs gnabar_hh", "Population diversity",
        "Spread of each parameter", "Pareto front after generation 4", "Hypervolume per generation",
    ):  # fmt: skip
        assert title in page, title
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert "cdn.holoviz.org" not in page  # Panel's stylesheets are inlined too


def test_the_early_report_process_writes_the_report_and_reports_its_errors(store, tmp_path):
    with early_report_process() as process:
        path = process.write(store.path, tmp_path / "report.html")  # None: it did not
        with pytest.raises(StoreError, match="no run store here"):
            write_report_file(str(tmp_path / "missing.zarr"), tmp_path / "missing.html")
    assert path == tmp_path / "report.html"
    page = path.read_text()
    assert "Parameter space: 60 individuals" in page and "Hypervolume per generation" in page
    assert not re.search(r"<script[^>]*\ssrc=", page)
    # without the process, the report is written in this one
    assert write_report_file(store.path, tmp_path / "here.html") == tmp_path / "here.html"


def test_a_picked_individual_is_simulated_with_neuron_in_a_worker_process(store):
    snapshot = read_snapshot(store.path)
    row = int(np.argmin(snapshot.rows["total"]))
    simulator = TraceSimulator()
    try:
        traces = simulator(snapshot, row)
        assert simulator(snapshot, row) is traces  # cached: committed rows never change
    finally:
        simulator.close()
    assert len(traces) == 1
    values = traces[0].values
    assert len(values) == len(snapshot.target["trace"])
    # exactly this individual's trace: the problem's model simulated with the row's values
    spec = ProblemSpec.model_validate(snapshot.spec)
    parameters = dict(zip([p.name for p in spec.parameters],
                          snapshot.rows["parameters"][row], strict=True))  # fmt: skip
    assert np.array_equal(values, simulate_isolated(spec, parameters)[0].values)
