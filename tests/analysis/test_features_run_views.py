"""A real feature-statistics run (UC1's NEURON soma, three sweeps, eFEL features; the run flow
on a real LocalCluster under the Prefect test server): its report and its explorer show the
best individual's traces and feature values against the target mean ± std."""

from __future__ import annotations

import re

import holoviews as hv
import numpy as np
import pytest

from neuroptimus.analysis import feature_figures
from neuroptimus.analysis.explorer import TABS, Explorer
from neuroptimus.analysis.report import report_parts
from neuroptimus.analysis.traces import TraceSimulator
from neuroptimus.flows.run import run_flow
from neuroptimus.optimization.execution.cluster import ClusterConfig
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.storage.runs.run_store import RunStore
from tests.analysis.features_run import AMPLITUDES, STATISTICS, write_features_problem

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, prefect_harness):
    """A finished run of 2 generations × 4, its report written by the flow."""
    folder = tmp_path_factory.mktemp("features-run")
    spec = load_problem(write_features_problem(folder))
    run_flow(spec, str(folder / "run.zarr"), ClusterConfig(workers=2))
    return RunStore.open(folder / "run.zarr")


def feature_layouts(objects) -> list[hv.Layout]:
    """The feature figures among figures or panes (recursively through Panel layouts)."""
    found = []
    for item in objects:
        figure = getattr(item, "object", item)
        if isinstance(figure, hv.Layout) and figure.traverse(lambda e: e, [hv.ErrorBars]):
            found.append(figure)
        found += feature_layouts(getattr(item, "objects", []))
    return found


def points(layout: hv.Layout, label: str) -> dict[str, dict[float, float]]:
    """Per feature: amplitude → the value drawn for ``label`` (offset x mapped back)."""
    drawn = {}
    for name, panel in zip(STATISTICS, layout, strict=False):
        scatter = [e for e in panel if isinstance(e, hv.Scatter) and e.label == label][0]
        xs, ys = scatter.dimension_values(0), scatter.dimension_values(1)
        drawn[name] = {
            min(AMPLITUDES, key=lambda a: abs(a - x)): y for x, y in zip(xs, ys, strict=True)
        }
    return drawn


def check_against_the_store(layout: hv.Layout, store: RunStore, label: str) -> None:
    """Panels, target statistics and crosses as in the features file; every drawn value
    scores exactly the error the optimization stored for the best individual."""
    errors = store.best()["errors"]
    assert len(layout) == len(STATISTICS) + 1  # one panel per feature, then the key
    drawn = points(layout, label)
    for (name, statistics), panel in zip(STATISTICS.items(), layout, strict=False):
        bars = [e for e in panel if isinstance(e, hv.ErrorBars)][0]
        assert bars.dimension_values(0).tolist() == list(statistics)  # no statistic: left out
        assert bars.dimension_values(1).tolist() == [m for m, _ in statistics.values()]
        assert bars.dimension_values(2).tolist() == [s for _, s in statistics.values()]
        for amplitude, (mean, std) in statistics.items():
            component = errors[f"{name} [{amplitude:g} nA]"]
            if amplitude in drawn[name]:
                assert abs(mean - drawn[name][amplitude]) / std == pytest.approx(component)
            else:  # eFEL computed nothing: the objective scored 250, the figure a cross
                assert component == 250.0
        crosses = [e for e in panel if isinstance(e, hv.Points)]
        missing = [a for a in statistics if a not in drawn[name]]
        assert (len(crosses[0]) if crosses else 0) == len(missing)
    # the hyperpolarizing step never spikes: AP_amplitude is not computed there
    assert drawn["AP_amplitude"].keys() == {0.2, 0.3} and len(drawn["Spikecount"]) == 2
    assert "1 not computed" in layout[1].opts.get().kwargs["title"]


def test_the_report_shows_best_traces_and_the_feature_figure(run):
    page = (run.path / "report.html").read_text()
    page = page.replace("\\u00b7", "·").replace("\\u00d7", "×")  # as Bokeh's JSON has them
    for title in ("Best individual's simulated traces", "Features", "Spikecount",
                  "AP_amplitude · 1 not computed (×)", "voltage_base", "Key", "Convergence",
                  "not computed by eFEL (error 250)"):  # fmt: skip
        assert title in page, title
    assert "Best individual over the target" not in page  # there is no target trace
    assert not re.search(r"<script[^>]*\ssrc=", page)
    layouts = feature_layouts(report_parts(run))
    assert len(layouts) == 1
    check_against_the_store(layouts[0], run, "best individual")


def test_the_report_says_why_when_the_features_file_is_gone(run, tmp_path):
    source = next(run.path.parent.glob("features.json"))
    source.rename(tmp_path / "features.json")
    feature_figures._objective.cache_clear()
    try:
        objects = report_parts(run)
    finally:
        (tmp_path / "features.json").rename(source)
        feature_figures._objective.cache_clear()
    notes = [o for o in objects if "Cannot draw the feature figure" in str(o)]
    assert len(notes) == 1 and "features.json" in notes[0]
    assert not feature_layouts(objects)


def test_the_explorer_shows_the_best_and_the_selected_individuals_features(run):
    simulator = TraceSimulator()
    try:
        explorer = Explorer([run.path], simulate=simulator)
        explorer.tabs.active = TABS.index("traces")
        [best] = feature_layouts(explorer.holders["traces"].objects)
        check_against_the_store(best, run, "best individual")
        explorer._select_best()  # re-simulated in the problem's NEURON worker process
        [picked] = feature_layouts(explorer.holders["picked"].objects)
    finally:
        simulator.close()
    label = [e.label for e in picked[len(STATISTICS)]][1]
    assert label.startswith("#1: gen ")
    check_against_the_store(picked, run, label)
    drawn, stored = points(picked, label), points(best, "best individual")
    assert drawn.keys() == stored.keys()
    for name in drawn:
        assert np.allclose(list(drawn[name].values()), list(stored[name].values()))
