"""The catalog's figures, built from the curves the catalog keeps (one row per generation), so
no run store is needed: the paper's Fig 1 B–D through ``analysis.comparison`` (median
convergence with min–max band, box plots of final and convergence scores) and a run's
generation plot. Figures are embedded as Bokeh components; BokehJS is served by the site
itself (:data:`BOKEH_JS`), so the pages work without internet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import holoviews as hv
import numpy as np
from bokeh.embed import components

from analysis.comparison import RunScores, box_figures, convergence_figure
from optimization.scores import convergence_score

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


def grid_curve(curve: Iterable[Any], step: int, budget: int) -> np.ndarray:
    """The best error after every ``step`` evaluations up to ``budget``, as
    ``optimization.scores.convergence_curve`` gives it from a store, read from generation
    ends: at a mark, the best of the generations finished by then (before the first one
    finishes, the first one's); a run that stopped early keeps its last value."""
    if step < 1 or budget < step:
        raise ValueError(f"need 1 <= step <= budget, got step {step} and budget {budget}")
    evaluations, best = cumulative_points(curve)
    if len(best) == 0:
        raise ValueError("a run without a scored generation has no convergence curve")
    marks = np.arange(step, budget + 1, step)
    finished = np.searchsorted(evaluations, marks, side="right") - 1
    return best[np.maximum(finished, 0)]


def common_grid(runs: Sequence[Mapping[str, Any]], budget: int | None = None) -> tuple[int, int]:
    """One grid for all runs, as ``analysis.comparison.write_comparison`` chooses it: the
    smallest population as the step, the largest budget (or ``budget``) as the end."""
    steps = [int(r["population"]) for r in runs if r.get("population")]
    ends = [int(r.get("budget") or r.get("evaluations") or 0) for r in runs]
    step = min(steps) if steps else 1
    end = budget or max(ends, default=step)
    return step, max(end, step)


def run_scores(
    runs: Sequence[Mapping[str, Any]],
    curves: Mapping[str, Sequence[Any]],
    budget: int | None = None,
) -> list[RunScores]:
    """``analysis.comparison``'s scores of catalog runs (list rows: run_id, algorithm_label,
    seed, population, budget, evaluations, wall_seconds, stop_reason) from their curves, on
    a common grid. Runs without a scored generation are left out."""
    step, end = common_grid(runs, budget)
    scored = []
    for run in runs:
        curve = curves.get(run["run_id"]) or []
        try:
            grid = grid_curve(curve, step, end)
        except ValueError:
            continue
        evaluations, best = cumulative_points(curve)
        final = float(grid[-1])
        to_best = run.get("evaluations_to_best") or int(evaluations[np.argmax(best <= final)])
        scored.append(
            RunScores(
                store=str(run["run_id"]),
                algorithm=str(run.get("algorithm_label") or run.get("algorithm_key")),
                seed=int(run.get("seed") or 0),
                evaluations=int(run.get("evaluations") or 0),
                curve=grid,
                step=step,
                final=final,
                convergence=convergence_score(grid),
                evaluations_to_best=int(to_best),
                seconds=float(run.get("wall_seconds") or 0.0),
                budget=int(run.get("budget") or end),
                stop_reason=str(run.get("stop_reason") or ""),
                zero_generations=int(np.count_nonzero(grid == 0)),
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
    "common_grid",
    "comparison_figures",
    "cumulative_points",
    "embed",
    "generation_figure",
    "grid_curve",
    "run_scores",
]
