"""The figure functions return the expected HoloViews elements holding the stored data."""

from __future__ import annotations

import dataclasses
import logging

import holoviews as hv
import numpy as np
import pytest

from neuroptimus.analysis import comparison, figures, pareto_figures, population, selection, traces
from neuroptimus.analysis.snapshot import read_snapshot
from tests.analysis.synthetic import simulate_synthetic


def _cells(layout: hv.Layout) -> list:
    return list(layout.values())


def test_pair_plot_shows_every_individual_with_bounds_and_true_values(store):
    snapshot = read_snapshot(store.path)
    layout = population.parameter_space_figure([snapshot])
    cells = _cells(layout)
    assert len(cells) == 9  # 3 × 3: histograms on the diagonal, the key top right
    assert "60 individuals" in layout.opts.get().kwargs["title"]
    pair = cells[3]  # gkbar_hh against gnabar_hh
    points, bounds, true = pair.get(0), pair.get(1), pair.get(2)
    assert isinstance(points, hv.Points) and isinstance(bounds, hv.Bounds)
    stored = snapshot.rows["parameters"]
    assert sorted(points.dimension_values("gnabar_hh")) == sorted(stored[:, 0])
    assert sorted(points.dimension_values("gkbar_hh")) == sorted(stored[:, 1])
    assert np.allclose(sorted(points.dimension_values("log10_error")),
                       sorted(np.log10(snapshot.rows["total"])))  # fmt: skip
    spec = {p["name"]: p for p in snapshot.parameters}
    assert bounds.range(0) == (spec["gnabar_hh"]["lower"], spec["gnabar_hh"]["upper"])
    assert bounds.range(1) == (spec["gkbar_hh"]["lower"], spec["gkbar_hh"]["upper"])
    assert true.array().tolist() == [[0.12, 0.036]]
    assert pair.get(0).kdims[0].pprint_label == "gnabar_hh (S/cm²)"
    histogram = cells[0].get(0)
    assert isinstance(histogram, hv.Histogram)
    assert histogram.dimension_values(1).sum() == 60


def test_points_are_drawn_best_last_and_coloured_by_generation_on_request(store):
    snapshot = read_snapshot(store.path)
    frame = population.population_frame([snapshot])
    panels = population.pair_panels(frame, snapshot.parameters[:2], "error")
    errors = panels[1].source.dimension_values("log10_error")
    assert np.all(np.diff(errors) <= 0)  # worst first, the best on top
    panels = population.pair_panels(frame, snapshot.parameters[:2], "generation")
    generations = panels[1].source.dimension_values("generation")
    assert np.all(np.diff(generations) >= 0) and generations.max() == 4


def test_large_populations_are_rasterized(store, monkeypatch):
    monkeypatch.setattr(population, "RASTERIZE_ABOVE", 10)
    snapshot = read_snapshot(store.path)
    frame = population.population_frame([snapshot], generations=(1, 3))
    assert len(frame) == 36 and set(frame["generation"]) == {1, 2, 3}
    panels = population.pair_panels(frame, snapshot.parameters, "error")
    image = panels[1].source
    assert isinstance(image, hv.Image)  # a density image, not 36 glyphs
    best = np.nanmin(image.dimension_values(2))
    assert best == pytest.approx(frame["log10_error"].min())


def test_diversity_is_the_mean_sd_of_unit_cube_coordinates(store, new_store):
    snapshot = read_snapshot(store.path)
    generations, spread = population.generation_spread(snapshot)
    assert generations.tolist() == [0, 1, 2, 3, 4]
    unit = snapshot.unit
    for g in generations:
        members = unit[snapshot.rows["generation"] == g]
        assert np.allclose(spread[g], members.std(axis=0))
    other = read_snapshot(new_store(seed=2, generations=3).path)
    overlay = population.diversity_figure([snapshot, other])
    curves = [e for e in overlay if isinstance(e, hv.Curve)]
    assert [c.label for c in curves] == [snapshot.label, other.label]
    assert np.allclose(curves[0].dimension_values(1), spread.mean(axis=1))
    assert len(curves[1]) == 3
    per_parameter = population.parameter_spread_figure(snapshot)
    assert [c.label for c in per_parameter] == ["gnabar_hh", "gkbar_hh", "gl_hh"]


def test_pareto_front_and_hypervolume_come_from_the_store(store):
    snapshot = read_snapshot(store.path)
    overlay = pareto_figures.front_figure(snapshot, 0, 2, generation=3)
    fronts = {e.label: e for e in overlay if e.label.startswith("front after")}
    assert "front after generation 3" in fronts and "front after generation 0" in fronts
    weighted = snapshot.rows["errors"][store.front(3)] * snapshot.weights
    shown = fronts["front after generation 3"]
    assert sorted(shown.dimension_values(0)) == pytest.approx(sorted(weighted[:, 0]))
    assert sorted(shown.dimension_values(1)) == pytest.approx(sorted(weighted[:, 2]))
    cloud = overlay.get(0)
    assert len(cloud) == int(np.sum((snapshot.rows["generation"] <= 3)
                                    & (snapshot.rows["status"] == 0)))  # fmt: skip
    layout = pareto_figures.hypervolume_figure([snapshot])
    volume, size = _cells(layout)
    box = np.prod(snapshot.attrs["penalty"] * snapshot.weights)
    stats = store.generations()
    assert np.allclose(volume.get(0).dimension_values(1), stats["hypervolume"] / box)
    assert size.get(0).dimension_values(1).tolist() == stats["front_size"].tolist()


def test_traces_figure_shows_target_best_and_picked_individuals(store):
    snapshot = read_snapshot(store.path)
    picks = [("#1", simulate_synthetic(snapshot, 3)), ("#2", simulate_synthetic(snapshot, 5))]
    overlay = traces.traces_figure(snapshot, picks)
    assert [c.label for c in overlay] == ["target", "best individual", "#1", "#2"]
    target = overlay.get(0)
    assert np.array_equal(target.dimension_values(1), snapshot.target["trace"][:, 0])
    assert target.vdims[0].name == "recorded (mV)"


def test_box_selection_table_and_error_components(store):
    snapshot = read_snapshot(store.path)
    frame = population.population_frame([snapshot])
    lower = snapshot.parameters[0]["lower"]
    picked = selection.in_box(frame, "gnabar_hh", "gkbar_hh", (lower, 0.0, 0.3, 0.2))
    inside = (frame["gnabar_hh"] <= 0.3) & (frame["gkbar_hh"] <= 0.2)
    assert len(picked) == int(inside.sum()) > 0
    assert np.all(np.diff(picked["total"]) >= 0)  # best first
    picks = [("run", snapshot, int(r)) for r in picked["row"]]
    table = selection.selection_table(picks, limit=4)
    assert table["#"].tolist() == [1, 2, 3, 4]
    assert table["row"].tolist() == picked["row"].head(4).tolist()
    assert list(table.columns[-4:]) == ["gnabar_hh", "gkbar_hh", "gl_hh", "status"]
    overlay = selection.components_figure(picks[:2], snapshot)
    labels = [e.label for e in overlay if isinstance(e, hv.Scatter)]
    assert labels == ["#1", "#2", "best of CMA-ES (cmaes) · seed 1"]
    best = overlay.get(1)
    row = int(picked["row"].iloc[0])
    expected = snapshot.rows["errors"][row] * snapshot.weights
    assert np.allclose(best.dimension_values(1), population.positive(expected))


def test_convergence_scores_from_a_snapshot_match_the_stored_run(store):
    snapshot = read_snapshot(store.path)
    from_store = comparison.score_run(store.path)
    from_rows = comparison.score_totals(snapshot.rows["total"], snapshot.attrs, str(store.path))
    assert from_rows.final == from_store.final
    assert np.array_equal(from_rows.curve, from_store.curve)
    figure = comparison.convergence_figure([from_rows])
    assert figure.get(1).label == "CMA-ES (cmaes)"


def test_convergence_figure_draws_tiny_errors_as_they_are(store):
    """CMA-ES reaches 1e-20 on UC1: the log axis must show it, and an exact zero sits at the
    lowest positive error instead of vanishing."""
    run = comparison.score_run(store.path)
    tiny = dataclasses.replace(run, curve=np.array([1.0, 1e-5, 1e-20, 0.0]), step=10)
    median = comparison.convergence_figure([tiny]).get(1)
    assert median.dimension_values(1).tolist() == [1.0, 1e-5, 1e-20, 1e-20]


def test_a_log_axis_whose_values_are_one_number_is_drawn_around_it(caplog):
    """A run of one generation: HoloViews would pad the single value's range down to zero,
    which a log axis cannot show (it warns and draws a default range)."""
    same = hv.Curve(([0, 1], [2.0, 2.0])), hv.Curve(([0], [2.0]))
    assert figures.log_limits(*same) == {"ylim": (0.2, 20.0)}
    assert figures.log_limits(hv.Curve(([0, 1], [1.0, 2.0]))) == {}
    curve = hv.Curve(([0], [3e-4]))
    one_value = hv.Overlay([curve])
    with caplog.at_level(logging.WARNING):
        hv.render(one_value.opts(logy=True), backend="bokeh")
        assert "Logarithmic axis" in caplog.text  # what the limits are for
        caplog.clear()
        hv.render(one_value.opts(logy=True, **figures.log_limits(curve)), "bokeh")
    assert "Logarithmic axis" not in caplog.text
