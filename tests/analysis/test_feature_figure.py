"""The feature figure on its own: one panel per feature plus a key, target mean ± std only
where the file has a statistic, values eFEL could not compute marked by a cross."""

from __future__ import annotations

import holoviews as hv
import numpy as np

from neuroptimus.analysis.feature_figures import MISSING_NOTE, feature_figure
from neuroptimus.optimization.scoring.features import FeatureObjective


def objective() -> FeatureObjective:
    # two features × three sweeps; Spikecount has no statistic at -0.1 nA
    statistics = (
        (None, (80.0, 5.0)),
        ((6.0, 1.0), (80.0, 5.0)),
        ((8.0, 2.0), (78.0, 4.0)),
    )
    return FeatureObjective(
        ("Spikecount", "AP_amplitude"), (-0.1, 0.2, 0.3), statistics, np.ones(6),
        (200.0, 700.0), 0.0, "efel5",
    )  # fmt: skip


def layers(panel: hv.Overlay, kind: type) -> list:
    return [element for element in panel if isinstance(element, kind)]


def test_one_panel_per_feature_with_target_statistics_and_marked_missing_values():
    values = [[0.0, None], [5.0, 90.0], [9.0, None]]  # [sweep][feature]
    layout = feature_figure(objective(), [("best", values)])
    spikes, amplitude, key = layout
    assert len(layout) == 3 and key.opts.get().kwargs["title"] == "Key"

    bars = layers(spikes, hv.ErrorBars)[0]  # -0.1 nA has no statistic: left out
    assert bars.dimension_values(0).tolist() == [0.2, 0.3]
    assert bars.dimension_values(1).tolist() == [6.0, 8.0]
    assert bars.dimension_values(2).tolist() == [1.0, 2.0]
    best = [s for s in layers(spikes, hv.Scatter) if s.label == "best"][0]
    assert best.dimension_values(1).tolist() == [5.0, 9.0]  # the -0.1 nA value is not shown
    assert best.dimension_values(2).tolist() == [1.0, 0.5]  # |mean - value| / std
    assert not layers(spikes, hv.Points) and "not computed" not in spikes.opts.get().kwargs["title"]

    assert layers(amplitude, hv.ErrorBars)[0].dimension_values(0).tolist() == [-0.1, 0.2, 0.3]
    best = [s for s in layers(amplitude, hv.Scatter) if s.label == "best"][0]
    assert best.dimension_values(1).tolist() == [90.0]
    crosses = layers(amplitude, hv.Points)[0]  # two values eFEL could not compute
    assert len(crosses) == 2
    low = min(crosses.dimension_values(1))
    assert np.all(crosses.dimension_values(1) == low) and low < 78.0 - 4.0  # below all else
    assert amplitude.opts.get().kwargs["ylim"][0] < low
    assert amplitude.opts.get().kwargs["title"] == f"AP_amplitude · 2 {MISSING_NOTE} (×)"
    assert [t.text.strip() for t in layers(amplitude, hv.Text)] == [MISSING_NOTE] * 2


def test_several_individuals_each_in_its_own_colour_beside_the_target():
    first, second = [[1.0, 80.0]] * 3, [[2.0, 70.0]] * 3
    layout = feature_figure(objective(), [("#1", first), ("#2", second)], ["red", "blue"])
    scatters = [s for s in layers(layout[0], hv.Scatter) if s.label in ("#1", "#2")]
    assert [s.opts.get().kwargs["color"] for s in scatters] == ["red", "blue"]
    x1, x2 = (s.dimension_values(0) for s in scatters)
    assert np.all(x1 > [0.2, 0.3]) and np.all(x2 > x1)  # offset, not on top of each other
    assert [item.label for item in layout[2]][1:3] == ["#1", "#2"]  # both in the key


def test_trace_target_runs_keep_their_views(store):
    """A trace-target run: the report and the explorer's Traces tab show the target and the
    best trace only, no feature section."""
    from neuroptimus.analysis.explorer import TABS, Explorer
    from neuroptimus.analysis.report import report_parts
    from tests.analysis.synthetic import simulate_synthetic

    texts = [part for part in report_parts(store) if isinstance(part, str)]
    assert not any("Features" in t for t in texts)
    explorer = Explorer([store.path], simulate=simulate_synthetic)
    explorer.tabs.active = TABS.index("traces")
    [pane] = explorer.holders["traces"].objects
    overlay = pane.object
    assert overlay.opts.get().kwargs["title"].startswith("Target and best: ")
    assert [c.label for c in overlay][:2] == ["target", "best individual"]


def test_many_features_render_as_a_grid_of_small_multiples():
    """UC6's 6 current steps with 10 of its 20 features, two individuals: 10 panels and the
    key, four a row."""
    from bokeh.models import GridPlot

    names = tuple(f"feature_{j}" for j in range(10))
    amplitudes = (-0.25, 0.05, 0.1, 0.15, 0.2, 0.25)
    statistics = tuple(tuple((float(j), 1.0) for j in range(10)) for _ in amplitudes)
    uc6 = FeatureObjective(names, amplitudes, statistics, np.ones(60), (100.0, 400.0), 0.0,
                           "efel4")  # fmt: skip
    values = [[float(j) + 0.5 if s else None for j in range(10)] for s in range(6)]
    layout = feature_figure(uc6, [("best", values), ("#1", values)])
    grid = hv.render(layout)
    grid = grid if isinstance(grid, GridPlot) else grid.children[-1]
    assert len(grid.children) == 11 and max(column for *_, column in grid.children) == 3
    assert max(row for _, row, _ in grid.children) == 2  # three rows
    for panel in list(layout)[:10]:  # the -0.25 nA sweep: nothing computed, both crossed
        assert len([e for e in panel if isinstance(e, hv.Points)][0]) == 2
