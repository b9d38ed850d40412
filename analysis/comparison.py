"""Compare algorithms over many run stores: score tables (CSV) and the paper's Fig 1 B–D
(median convergence with min–max band, box plots of final and convergence scores) as HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.resources import INLINE

from analysis.offline import inline_panel_resources
from optimization.scores import convergence_curve, convergence_score, final_score
from storage.run_store import RunStore

hv.extension("bokeh", logo=False)


@dataclass(frozen=True)
class RunScores:
    """One run of the benchmark, scored on the common evaluation grid."""

    store: str
    algorithm: str  # human label
    seed: int
    evaluations: int
    curve: np.ndarray  # cumulative minimum after every `step` evaluations, up to the budget
    step: int
    final: float
    convergence: float
    evaluations_to_best: int  # first evaluation that reached the run's final score
    seconds: float  # wall time spent evaluating generations


def score_run(path: str | Path, step: int | None = None, budget: int | None = None) -> RunScores:
    """Scores of one store; ``step`` defaults to the population, ``budget`` to the run's."""
    store = RunStore.open(path)
    seconds = float(store.generations()["seconds"].sum())
    return score_totals(store.evaluations()["total"], store.attrs, str(path), step, budget, seconds)


def score_totals(
    totals: np.ndarray,
    attrs: dict,
    store: str,
    step: int | None = None,
    budget: int | None = None,
    seconds: float = 0.0,
) -> RunScores:
    """Scores of a run's totals (in evaluation order) with the store's attributes."""
    step = step or attrs["spec"]["algorithm"]["population"]
    budget = budget or attrs["budget"]
    curve = convergence_curve(totals, step, budget)
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
    )


def runs_table(runs: list[RunScores]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "algorithm": [r.algorithm for r in runs],
            "seed": [r.seed for r in runs],
            "evaluations": [r.evaluations for r in runs],
            "final_score": [r.final for r in runs],
            "convergence_score": [r.convergence for r in runs],
            "evaluations_to_best": [r.evaluations_to_best for r in runs],
            "seconds": [r.seconds for r in runs],
            "store": [r.store for r in runs],
        }
    )


def summary_table(runs: list[RunScores]) -> pd.DataFrame:
    """Median, minimum and maximum of each score per algorithm, best median final first."""
    table = runs_table(runs)
    grouped = table.groupby("algorithm")
    summary = grouped.agg(
        runs=("seed", "count"),
        final_median=("final_score", "median"),
        final_min=("final_score", "min"),
        final_max=("final_score", "max"),
        convergence_median=("convergence_score", "median"),
        convergence_min=("convergence_score", "min"),
        convergence_max=("convergence_score", "max"),
        evaluations_to_best_median=("evaluations_to_best", "median"),
        seconds_median=("seconds", "median"),
    )
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
    final = hv.BoxWhisker(table, "algorithm", "final_score").opts(
        title="Final score (lowest error)", logy=True, width=450, height=400, xrotation=30,
        box_fill_color="#9ecae1",
    )  # fmt: skip
    convergence = hv.BoxWhisker(table, "algorithm", "convergence_score").opts(
        title="Convergence score (Σ log10 best error)", width=450, height=400,
        xrotation=30, box_fill_color="#fdae6b",
    )  # fmt: skip
    return (final + convergence).cols(2)


def write_comparison(stores: list[str], folder: str | Path, title: str = "") -> dict[str, str]:
    """Write ``runs.csv``, ``summary.csv`` and ``comparison.html`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # One evaluation grid for all runs: the smallest generation and the largest budget.
    attributes = [RunStore.open(store).attrs for store in stores]
    step = min(a["spec"]["algorithm"]["population"] for a in attributes)
    budget = max(a["budget"] for a in attributes)
    runs = [score_run(store, step, budget) for store in stores]
    runs_csv, summary_csv = folder / "runs.csv", folder / "summary.csv"
    runs_table(runs).to_csv(runs_csv, index=False)
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
