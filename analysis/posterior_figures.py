"""Figures of a sampled posterior (algorithm emcee): the table of intervals and diagnostics,
a pair plot (marginal histograms on the diagonal, pairs of samples below it) and the walkers'
paths (HoloViews, bokeh), for the report and the explorer's Posterior tab."""

from __future__ import annotations

import html

import holoviews as hv
import numpy as np

from neuroptimus.analysis.layouts import grid
from neuroptimus.analysis.population import run_colour
from neuroptimus.optimization.trust.posterior import TRUSTED_LENGTH_TAUS, PosteriorSummary

hv.extension("bokeh", logo=False)

PANEL = 190  # pixels per pair-plot panel
MAX_POINTS = 3000  # samples drawn in each pair panel (evenly spaced through the kept ones)
MAX_PARAMETERS = 6  # a larger pair plot gets too small to read: the first six
INTERVAL = "#ff7f0e"
TRUE = "#d62728"
_FONTS = {"title": 9, "labels": 9, "xticks": 8, "yticks": 8}

POSTERIOR_NOTE = (
    "Samples of the posterior: likelihood of the error components (feature z-scores, or MSE "
    "with the stated trace noise SD), prior uniform within the bounds (log-uniform for "
    "log-scaled parameters). Diagonal: each parameter's marginal, its central credible "
    "interval dashed (orange), the true value red where the problem states one. Below the "
    "diagonal: pairs of samples. τ is the integrated autocorrelation time in steps; an "
    f"estimate needs a chain of about {TRUSTED_LENGTH_TAUS} τ after burn-in."
)


def posterior_table(summary: PosteriorSummary, true_values: dict[str, float]) -> str:
    """Intervals and diagnostics as HTML, warnings included."""
    percent = f"{summary.level * 100:g} %"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("parameter", "median", "sd", f"{percent} interval", "τ (steps)", "true value")
    )
    body = "".join(
        f"<tr><td>{html.escape(p.name)}</td><td>{p.median:.4g}</td><td>{p.sd:.3g}</td>"
        f"<td>{p.low:.4g} – {p.high:.4g}</td><td>{p.tau_steps:.1f}</td>"
        f"<td>{_true_text(true_values.get(p.name), p.low, p.high)}</td></tr>"
        for p in summary.parameters
    )
    facts = (
        f"<p>{summary.walkers} walkers × {summary.steps} steps; burn-in {summary.burn}, thin "
        f"{summary.thin}, {len(summary.stuck)} walker(s) far below the others left out: "
        f"{len(summary.samples):,} samples; mean acceptance fraction "
        f"{summary.acceptance:.2f}.</p>"
    )
    notes = "".join(f"<p><b>Warning:</b> {html.escape(n)}</p>" for n in summary.warnings)
    return f"{facts}{notes}<table><tr>{head}</tr>{body}</table>"


def _true_text(value: float | None, low: float, high: float) -> str:
    if value is None:
        return ""
    return f"{value:.4g} ({'inside' if low <= value <= high else 'outside'})"


def _dimension(parameter: dict, bounded: bool = False) -> hv.Dimension:
    """A parameter's axis: the samples' own range (a posterior is often a small part of the
    bounds), or the bounds (``bounded``)."""
    if not bounded:
        return hv.Dimension(parameter["name"])
    return hv.Dimension(parameter["name"], range=(float(parameter["lower"]),
                                                  float(parameter["upper"])))  # fmt: skip


def pair_figure(
    summary: PosteriorSummary, parameters: list[dict], true_values: dict[str, float]
) -> hv.Layout:
    """Marginal histograms on the diagonal, pairs of samples below it."""
    shown = parameters[:MAX_PARAMETERS]
    samples = summary.samples
    if len(samples) > MAX_POINTS:
        samples = samples[np.linspace(0, len(samples) - 1, MAX_POINTS).astype(int)]
    panels = []
    for i, row in enumerate(shown):
        for j, column in enumerate(shown):
            if j > i:
                panels.append(hv.Empty())
            elif i == j:
                panels.append(_marginal(summary, i, row, true_values.get(row["name"])))
            else:
                panels.append(_pair(samples, j, i, column, row, true_values))
    title = f"Posterior: {len(summary.samples):,} samples after burn-in"
    return grid(panels, len(shown), title=title, shared_axes=False)


def _marginal(summary: PosteriorSummary, index: int, parameter: dict, true: float | None):
    values = summary.samples[:, index]
    log = bool(parameter.get("log"))
    if log:
        edges = np.geomspace(values.min(), values.max() * (1 + 1e-12), 31)
    else:
        edges = np.linspace(values.min(), values.max() + 1e-12 * abs(values.max()), 31)
    counts, edges = np.histogram(values, bins=edges, density=True)
    x = _dimension(parameter)
    histogram = hv.Histogram((edges, counts), kdims=[x], vdims=["density"])
    layers = [histogram.opts(color=run_colour(0), alpha=0.6)]
    marginal = summary.parameters[index]
    for end in (marginal.low, marginal.high):
        layers.append(hv.VLine(end).opts(color=INTERVAL, line_dash="dashed", line_width=1))
    if true is not None:
        layers.append(hv.VLine(float(true)).opts(color=TRUE, line_width=2))
    return hv.Overlay(layers).opts(
        frame_width=PANEL, frame_height=PANEL, logx=log, fontsize=_FONTS, show_legend=False,
        title=f"{parameter['name']}: {marginal.low:.3g} – {marginal.high:.3g}",
    )  # fmt: skip


def _pair(samples, x_index, y_index, x_parameter, y_parameter, true_values):
    x, y = _dimension(x_parameter), _dimension(y_parameter)
    layers = [
        hv.Points((samples[:, x_index], samples[:, y_index]), [x, y]).opts(
            color=run_colour(0), size=2, alpha=0.15
        )
    ]
    tx, ty = true_values.get(x_parameter["name"]), true_values.get(y_parameter["name"])
    if tx is not None and ty is not None:
        layers.append(
            hv.Points([(float(tx), float(ty))], [x, y]).opts(color=TRUE, size=9, marker="x")
        )
    return hv.Overlay(layers).opts(
        frame_width=PANEL, frame_height=PANEL, fontsize=_FONTS, show_legend=False,
        logx=bool(x_parameter.get("log")), logy=bool(y_parameter.get("log")),
    )  # fmt: skip


def walkers_figure(summary: PosteriorSummary, parameters: list[dict]) -> hv.Layout:
    """Each walker's path through the steps, one panel per parameter, burn-in shaded."""
    steps = np.arange(summary.steps)
    panels = []
    for j, parameter in enumerate(parameters[:MAX_PARAMETERS]):
        paths = [np.column_stack([steps, summary.chain[:, w, j]]) for w in range(summary.walkers)]
        y = _dimension(parameter, bounded=True)
        panel = hv.Path(paths, ["step", y]).opts(color=run_colour(0), alpha=0.3, line_width=1)
        burn = hv.VSpan(0, summary.burn).opts(color="grey", alpha=0.15)
        panels.append(
            (panel * burn).opts(
                frame_width=2 * PANEL,
                frame_height=int(PANEL * 0.6),
                fontsize=_FONTS,
                logy=bool(parameter.get("log")),
                title=parameter["name"],
            )  # fmt: skip
        )
    return hv.Layout(panels).cols(2).opts(title="Walkers (burn-in shaded)", shared_axes=False)


__all__ = ["POSTERIOR_NOTE", "pair_figure", "posterior_table", "walkers_figure"]
