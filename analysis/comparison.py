"""Compare algorithms over many run stores: score tables (CSV) and the paper's Fig 1 B–D
(median convergence with min–max band, box plots of final and convergence scores) as HTML."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.resources import INLINE

from neuroptimus.analysis.offline import inline_panel_resources
from neuroptimus.optimization.scoring.scores import (
    convergence_curve,
    convergence_score,
    evaluations_to_reach,
    final_score,
)
from neuroptimus.storage.runs.run_store import RunStore

hv.extension("bokeh", logo=False)


# Errors docs/comparing.md quotes "runs reaching" for;
# `benchmark algorithms --thresholds` adds others.
DEFAULT_THRESHOLDS = (1e-10,)


@dataclass(frozen=True)
class RunScores:
    """One run of the benchmark, scored on the common evaluation grid."""

    store: str
    algorithm: str  # human label
    seed: int
    evaluations: int  # simulations stored (every row is one simulation, whatever its status)
    curve: np.ndarray  # cumulative minimum after every `step` evaluations, up to the budget
    step: int
    final: float
    convergence: float
    evaluations_to_best: int  # first evaluation that reached the run's final score
    seconds: float  # wall time spent evaluating generations
    budget: int = 0  # the run's evaluation budget
    failed: int = 0  # stored simulations with a status other than ok (scored the penalty)
    stop_reason: str = ""
    zero_generations: int = 0  # points of the curve at exactly zero (see ZERO_ERROR_LOG10)
    # threshold -> first evaluation whose best total was at or below it (None: never)
    reached: dict[float, int | None] = field(default_factory=dict)


def score_run(
    path: str | Path,
    step: int | None = None,
    budget: int | None = None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> RunScores:
    """Scores of one store; ``step`` defaults to the population, ``budget`` to the run's."""
    store = RunStore.open(path)
    seconds = float(store.generations()["seconds"].sum())
    rows = store.evaluations()
    failed = int(np.count_nonzero(rows["status"]))
    return score_totals(
        rows["total"], store.attrs, str(path), step, budget, seconds, thresholds, failed
    )


def score_totals(
    totals: np.ndarray,
    attrs: dict,
    store: str,
    step: int | None = None,
    budget: int | None = None,
    seconds: float = 0.0,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    failed: int = 0,
) -> RunScores:
    """Scores of a run's totals (in evaluation order) with the store's attributes."""
    step = step or attrs["spec"]["algorithm"]["population"]
    grid = budget or attrs["budget"]
    curve = convergence_curve(totals, step, grid)
    best = final_score(totals)
    return RunScores(
        store=store,
        algorithm=attrs["algorithm"]["label"],
        seed=int(attrs["seed"]),
        evaluations=len(totals),
        curve=curve,
        step=step,
        final=best,
        convergence=convergence_score(curve),
        evaluations_to_best=int(np.argmax(totals <= best)) + 1,
        seconds=seconds,
        budget=int(attrs["budget"]),
        failed=failed,
        stop_reason=attrs.get("finished") or "",
        zero_generations=int(np.count_nonzero(curve == 0)),
        reached={t: evaluations_to_reach(totals, t) for t in thresholds},
    )


def _reach_column(threshold: float) -> str:
    return f"evaluations_to_{threshold:g}"


def runs_table(runs: list[RunScores], folder: str | Path | None = None) -> pd.DataFrame:
    """One row per run. ``store`` is relative to ``folder`` when the store lies inside it (so
    a committed table names no machine path)."""
    thresholds = _thresholds(runs)
    table = pd.DataFrame(
        {
            "algorithm": [r.algorithm for r in runs],
            "seed": [r.seed for r in runs],
            "budget": [r.budget for r in runs],
            "simulations": [r.evaluations for r in runs],
            "failed": [r.failed for r in runs],
            "stop_reason": [r.stop_reason for r in runs],
            "final_score": [r.final for r in runs],
            "convergence_score": [r.convergence for r in runs],
            "zero_error_generations": [r.zero_generations for r in runs],
            "evaluations_to_best": [r.evaluations_to_best for r in runs],
            **{
                _reach_column(t): pd.array([r.reached.get(t) for r in runs], dtype="Int64")
                for t in thresholds
            },
            "seconds": [r.seconds for r in runs],
            "store": [_relative(r.store, folder) for r in runs],
        }
    )
    return table


def _thresholds(runs: list[RunScores]) -> list[float]:
    return sorted({t for r in runs for t in r.reached}, reverse=True)


def _relative(store: str, folder: str | Path | None) -> str:
    if folder is None:
        return store
    path, root = Path(store).resolve(), Path(folder).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else store


def summary_table(runs: list[RunScores]) -> pd.DataFrame:
    """Per algorithm: the scores' median, minimum and maximum, the simulations run, and for
    each threshold the runs that reached it and the evaluations they needed (min–max);
    best median final score first."""
    table = runs_table(runs)
    grouped = table.groupby("algorithm")
    summary = grouped.agg(
        runs=("seed", "count"),
        budget=("budget", "max"),
        simulations=("simulations", "sum"),
        failed=("failed", "sum"),
        final_median=("final_score", "median"),
        final_min=("final_score", "min"),
        final_max=("final_score", "max"),
        convergence_median=("convergence_score", "median"),
        convergence_min=("convergence_score", "min"),
        convergence_max=("convergence_score", "max"),
        evaluations_to_best_median=("evaluations_to_best", "median"),
        seconds_median=("seconds", "median"),
    )
    for threshold in _thresholds(runs):
        column = _reach_column(threshold)
        summary[f"reached_{threshold:g}"] = grouped[column].count()  # count skips the <NA>
        summary[f"{column}_min"] = grouped[column].min()
        summary[f"{column}_max"] = grouped[column].max()
    return summary.sort_values("final_median").reset_index()


_ERROR = hv.Dimension("error", label="lowest total error so far")


def convergence_figure(runs: list[RunScores]) -> hv.Overlay:
    """Median cumulative minimum across seeds with its min–max band, one colour per algorithm."""
    palette = hv.Cycle.default_cycles["default_colors"]
    # A log axis cannot show an exact zero: draw it at the lowest positive error of all runs.
    positive = np.concatenate([r.curve[r.curve > 0] for r in runs])
    floor = float(positive.min()) if positive.size else 1e-12
    layers = []
    for index, algorithm in enumerate(sorted({r.algorithm for r in runs})):
        curves = np.array([r.curve for r in runs if r.algorithm == algorithm])
        step = next(r.step for r in runs if r.algorithm == algorithm)
        x = step * np.arange(1, curves.shape[1] + 1)
        low, median, high = (
            np.maximum(f(curves, axis=0), floor) for f in (np.min, np.median, np.max)
        )
        colour = palette[index % len(palette)]
        layers.append(
            hv.Area((x, low, high), "evaluations", [_ERROR, "error2"]).opts(
                color=colour, alpha=0.2, line_alpha=0
            )
        )
        layers.append(
            hv.Curve((x, median), "evaluations", _ERROR, label=algorithm).opts(
                color=colour, line_width=2
            )
        )
    return hv.Overlay(layers).opts(
        title="Convergence: median cumulative minimum (band: min–max over seeds)",
        logy=True, width=900, height=420, legend_position="right",
    )  # fmt: skip


def box_figures(runs: list[RunScores]) -> hv.Layout:
    table = runs_table(runs)
    # the log axis only: an exact zero is drawn at the lowest positive score (the tables keep 0)
    finals = table["final_score"].to_numpy(dtype=float)
    floor = finals[finals > 0].min() if np.any(finals > 0) else 1e-300
    table["final_score"] = np.maximum(finals, floor)
    final = hv.BoxWhisker(table, "algorithm", "final_score").opts(
        title="Final score (lowest error)", logy=True, width=450, height=400, xrotation=30,
        box_fill_color="#9ecae1",
    )  # fmt: skip
    convergence = hv.BoxWhisker(table, "algorithm", "convergence_score").opts(
        title="Convergence score (Σ log10 best error)", width=450, height=400,
        xrotation=30, box_fill_color="#fdae6b",
    )  # fmt: skip
    return (final + convergence).cols(2)


def write_comparison(
    stores: list[str],
    folder: str | Path,
    title: str = "",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> dict[str, str]:
    """Write ``runs.csv``, ``summary.csv`` and ``comparison.html`` into ``folder``, from the
    stores alone (nothing is simulated: a finished benchmark's tables can be rewritten)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # One evaluation grid for all runs: the smallest generation and the largest budget.
    attributes = [RunStore.open(store).attrs for store in stores]
    step = min(a["spec"]["algorithm"]["population"] for a in attributes)
    budget = max(a["budget"] for a in attributes)
    runs = [score_run(store, step, budget, thresholds) for store in stores]
    runs_csv, summary_csv = folder / "runs.csv", folder / "summary.csv"
    runs_table(runs, folder).to_csv(runs_csv, index=False)
    summary = summary_table(runs)
    summary.to_csv(summary_csv, index=False)
    page = pn.Column(
        pn.pane.HTML(f"<h1>{html.escape(title or 'Algorithm comparison')}</h1>"),
        pn.pane.HTML(summary.to_html(index=False, float_format=lambda v: f"{v:.4g}")),
        pn.pane.HoloViews(convergence_figure(runs)),
        pn.pane.HoloViews(box_figures(runs)),
    )
    report = folder / "comparison.html"
    page.save(str(report), resources=INLINE, title=title or "Algorithm comparison")
    inline_panel_resources(report)
    return {"runs": str(runs_csv), "summary": str(summary_csv), "report": str(report)}
