"""The catalog's figures, built from the curves the catalog keeps (one row per generation), so
no run store is needed: the paper's Fig 1 B–D drawn by ``neuroptimus.analysis.comparison`` (median
convergence with min–max band, box plots of final and convergence scores) from a catalog
comparison (the curves on the leaderboard's evaluation grid), and a run's generation plot.
Figures are embedded as Bokeh components; BokehJS is served by the site itself
(:data:`BOKEH_JS`), so the pages work without internet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
from bokeh.embed import components

from neuroptimus.analysis.comparison import RunScores, box_figures, convergence_figure

hv.extension("bokeh", logo=False)

# Where the site serves BokehJS from (the files bokeh ships: no CDN, works offline).
BOKEH_PREFIX = "/assets/bokeh"
BOKEH_JS = [f"{BOKEH_PREFIX}/js/bokeh.min.js"]


def _get(row: Any, name: str) -> Any:
    """A field of a GenerationRow, or of the same row as a dict (JSON from the API)."""
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def cumulative_points(curve: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(cumulative evaluations, best error so far) per generation of a catalog curve. The
    original tool's uploads only give each generation's own minimum: the running minimum of
    those is the same thing."""
    evaluations, best = [], []
    running = np.inf
    for row in sorted(curve, key=lambda r: _get(r, "generation")):
        value = _get(row, "cumulative_best")
        value = _get(row, "best") if value is None else value
        if value is None:
            continue
        running = min(running, float(value))
        evaluations.append(int(_get(row, "evaluations")))
        best.append(running)
    return np.array(evaluations, dtype=int), np.array(best, dtype=float)


def run_scores(
    comparison: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]] | None = None
) -> list[RunScores]:
    """``neuroptimus.analysis.comparison``'s scores of the runs of a catalog comparison
    (``Catalog.compare``: every run's curve on one evaluation grid, with its final error and
    convergence score there), so the figures show the leaderboard's own numbers. ``runs``
    (run_id -> list row or record) adds what the comparison leaves out (evaluations, the
    evaluation of the best, wall time). Runs without a curve on the grid are left out."""
    runs = runs or {}
    marks = comparison.get("grid") or []
    scored = []
    for entry in comparison.get("runs", []):
        if entry.get("curve") is None or entry.get("final") is None:
            continue
        extra = runs.get(entry["run_id"], {})
        curve = np.asarray(entry["curve"], dtype=float)
        convergence = entry.get("convergence")
        scored.append(
            RunScores(
                store=str(entry["run_id"]),
                algorithm=str(entry.get("algorithm_label") or entry.get("algorithm_key")),
                seed=int(entry.get("seed") or 0),
                evaluations=int(extra.get("evaluations") or 0),
                curve=curve,
                step=int(marks[0]) if marks else 1,
                final=float(entry["final"]),
                convergence=float("nan") if convergence is None else float(convergence),
                evaluations_to_best=int(extra.get("evaluations_to_best") or 0),
                seconds=float(extra.get("wall_seconds") or 0.0),
                budget=int(entry.get("budget") or comparison.get("budget") or 0),
                stop_reason=str(extra.get("stop_reason") or ""),
                zero_generations=int(np.count_nonzero(curve == 0)),
            )
        )
    return scored


def comparison_figures(scores: list[RunScores]) -> list[hv.Element]:
    """The paper's Fig 1 B–D: convergence (median, min–max band) and the two box plots."""
    if not scores:
        return []
    return [convergence_figure(scores), box_figures(scores)]


def generation_figure(curve: Sequence[Any], title: str = "Generation plot") -> hv.Overlay:
    """A run's curve: best so far (line), each generation's best and median (points), against
    cumulative evaluations on a log axis (an exact zero is drawn at the lowest positive)."""
    rows = sorted(curve, key=lambda r: _get(r, "generation"))
    x, cumulative = cumulative_points(rows)
    series = {
        "generation best": [(_get(r, "evaluations"), _get(r, "best")) for r in rows],
        "generation median": [(_get(r, "evaluations"), _get(r, "median")) for r in rows],
    }
    values = [v for pts in series.values() for _, v in pts if v is not None] + list(cumulative)
    positive = [v for v in values if v > 0]
    floor = min(positive) if positive else 1e-12
    error = hv.Dimension("error", label="total error")
    layers = [
        hv.Curve((x, np.maximum(cumulative, floor)), "evaluations", error, label="best so far")
        .opts(color="#1f77b4", line_width=2)
    ]  # fmt: skip
    for (label, points), colour in zip(series.items(), ("#ff7f0e", "#2ca02c"), strict=True):
        kept = [(e, max(v, floor)) for e, v in points if v is not None]
        if kept:
            layers.append(
                hv.Scatter(kept, "evaluations", error, label=label).opts(color=colour, size=5)
            )
    return hv.Overlay(layers).opts(
        title=title, logy=True, width=760, height=360, legend_position="top_right"
    )


def embed(figure: hv.Element | None) -> tuple[str, str]:
    """(script, div) to place a HoloViews figure in a page; ("", "") for none."""
    if figure is None:
        return "", ""
    return components(hv.render(figure, backend="bokeh"))


__all__ = [
    "BOKEH_JS",
    "BOKEH_PREFIX",
    "comparison_figures",
    "cumulative_points",
    "embed",
    "generation_figure",
    "run_scores",
]
