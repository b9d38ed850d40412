"""The explorer's Traces-tab views of a feature-statistics run: the best individual's
simulated sweeps (there is no target trace) and its feature values against the target."""

from __future__ import annotations

import panel as pn

from neuroptimus.analysis import traces
from neuroptimus.analysis.feature_figures import best_feature_figure
from neuroptimus.analysis.linked_selection import TRACE_POINTS, show_figure
from neuroptimus.analysis.snapshot import RunSnapshot

WAITING = (
    "The best individual's feature values appear when the run has finished (its traces are "
    "stored then). Meanwhile, **Select the best individual** in *Parameter space* simulates it."
)


def feature_views(snapshot: RunSnapshot, name: str) -> list[pn.viewable.Viewable]:
    """Traces and feature figure of the best individual of ``snapshot`` (labelled ``name``)."""
    title = f"Best individual's traces: {name}"
    views = [
        pn.pane.HoloViews(traces.traces_figure(snapshot, title=title, downsample=TRACE_POINTS))
    ]
    if "trace" not in snapshot.best_trace:
        return [*views, pn.pane.Markdown(WAITING, sizing_mode="stretch_width")]
    holder = pn.Column(sizing_mode="stretch_width")
    show_figure(holder, lambda: best_feature_figure(snapshot).opts(
        title=f"Feature values of the best individual: {name}"))  # fmt: skip
    return [*views, holder]
