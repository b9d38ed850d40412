"""Figures of how far to trust a fit: the identifiability profiles and correlations of the
near-optimal individuals, and the local sensitivity at the best (HoloViews, bokeh)."""

from __future__ import annotations

import html
from typing import Any

import holoviews as hv
import numpy as np

from neuroptimus.analysis.figures import positive
from neuroptimus.analysis.layouts import grid
from neuroptimus.analysis.population import run_colour
from neuroptimus.analysis.trust_tables import no_effect
from neuroptimus.optimization.trust.identifiability import Identifiability, ParameterTrust
from neuroptimus.optimization.trust.sensitivity import leading

hv.extension("bokeh", logo=False)

PANEL = 230  # pixels per profile panel
FLAGGED = "#d62728"
_FONTS = {"title": 9, "labels": 9, "xticks": 8, "yticks": 8}

IDENTIFIABILITY_NOTE = (
    "For each parameter, the lowest total error any individual reached with the parameter in "
    "each slice of its range (the others free). Orange dots: the near-optimal individuals; "
    "dashed: the near-optimal threshold; red line: the best. A valley can also be where the "
    "optimizer spent its last, best generations, so the flag does not read the profile's "
    "shape: 'not constrained' means the errors show no dependence on the parameter once the "
    "other parameters and the time of evaluation are taken into account (z below 2). "
    "Correlations are among the near-optimal individuals."
)
SENSITIVITY_NOTE = (
    "Finite differences at the best individual: each parameter moved alone by the step "
    "(a share of its normalised range). Bars: how fast the weighted error components change "
    "per unit of normalised parameter (the norm of its Jacobian column). Directions: the "
    "eigenvectors of JᵀJ, stiffest (largest eigenvalue) first; a sloppy direction (small "
    "eigenvalue) is a combination of parameters the data hardly fix."
)


def _panel(parameter: dict, trust: ParameterTrust, result: Identifiability, near_values):
    profile = trust.profile
    name = parameter["name"]
    x = hv.Dimension(name, range=(float(parameter["lower"]), float(parameter["upper"])))
    y = hv.Dimension("total", label="lowest total error")
    searched = profile.counts > 0
    steps = hv.Curve((profile.centres[searched], positive(profile.envelope[searched])), x, y).opts(
        interpolation="steps-mid", color="#1f77b4", line_width=2
    )
    layers = [steps]
    if len(near_values[0]):
        layers.append(
            hv.Scatter((near_values[0], positive(near_values[1])), x, y).opts(
                color="#ff7f0e", size=4, alpha=0.6
            )
        )
    if result.threshold:
        layers.append(hv.HLine(result.threshold).opts(color="grey", line_dash="dashed"))
    layers.append(hv.VLine(trust.best).opts(color=FLAGGED, line_width=1))
    flags = trust.flags
    title = f"{name}: {'; '.join(flags)}" if flags else f"{name} (z = {trust.constraint_z:.1f})"
    return hv.Overlay(layers).opts(
        title=title[:60], frame_width=PANEL, frame_height=int(PANEL * 0.7), logy=True,
        logx=bool(parameter.get("log")), fontsize=_FONTS, show_legend=False,
        xformatter=None if parameter.get("log") else "%.3g",
    )  # fmt: skip


def profile_figure(parameters: list[dict], result: Identifiability, run) -> hv.Layout:
    """One panel per parameter: its lower-envelope profile, the near-optimal individuals, the
    threshold and the best, flags in the title. ``run`` is the snapshot the result came from."""
    rows = run.rows
    near = result.near_rows
    panels = [
        _panel(p, t, result, (rows["parameters"][near, j], rows["total"][near]))
        for j, (p, t) in enumerate(zip(parameters, result.parameters, strict=True))
    ]
    title = f"Profiles: lowest total error across each parameter's range ({result.rule})"
    return grid(panels, 4, title=title, shared_axes=False)


def correlation_figure(result: Identifiability) -> hv.HeatMap:
    """Pairwise correlations of the parameters among the near-optimal individuals."""
    names = result.names
    cells = [
        (a, b, float(result.correlation[i, j]))
        for i, a in enumerate(names) for j, b in enumerate(names)
        if np.isfinite(result.correlation[i, j])
    ]  # fmt: skip
    size = max(300, 34 * len(names))
    return hv.HeatMap(cells, ["parameter", "with"], hv.Dimension("r", range=(-1, 1))).opts(
        cmap="RdBu_r", clim=(-1, 1), colorbar=True, width=size + 200, height=size,
        xrotation=45, tools=["hover"], fontsize=_FONTS,
        title=f"Correlations among the {len(result.near_rows)} near-optimal individuals",
    )  # fmt: skip


def identifiability_table(result: Identifiability) -> str:
    """The table as HTML."""
    head = "".join(
        f"<th>{h}</th>"
        for h in ("parameter", "best", "near-optimal range", "width", "rise (decades)", "z",
                  "flags")
    )  # fmt: skip
    body = "".join(
        f"<tr><td>{html.escape(p.name)}</td><td>{p.best:.4g}</td>"
        f"<td>{p.near_low:.4g} – {p.near_high:.4g}</td><td>{p.near_width:.2f}</td>"
        f"<td>{p.envelope_rise:.2f}</td><td>{p.constraint_z:.1f}</td>"
        f"<td>{html.escape('; '.join(p.flags))}</td></tr>"
        for p in result.parameters
    )
    summary = (
        f"<p>{result.evaluated} individuals, best total {result.best_total:.6g}; near-optimal: "
        f"{html.escape(result.rule)}: {len(result.near_rows)} individuals.</p>"
    )
    return f"{summary}<table><tr>{head}</tr>{body}</table>"


def sensitivity_figures(found: dict[str, Any]) -> hv.Layout:
    """Each parameter's local sensitivity (bars) and the directions of JᵀJ (heat map of the
    eigenvectors, eigenvalues in the row labels)."""
    names = list(found["parameter_names"])
    values = np.nan_to_num(np.asarray(found["sensitivity"], dtype=float))
    top = values.max() if values.max() > 0 else 1.0
    bars = hv.Bars(
        list(zip(names, values / top, strict=True)), "parameter",
        hv.Dimension("relative", label="sensitivity (relative to the largest)"),
    ).opts(
        width=max(420, 46 * len(names)), height=300, xrotation=45, color=run_colour(0),
        tools=["hover"], fontsize=_FONTS, ylim=(0, 1.05),
        title=f"Local sensitivity at the best (step {found['step']:g})",
    )  # fmt: skip
    eigenvalues = np.asarray(found["eigenvalues"], dtype=float)
    vectors = np.asarray(found["eigenvectors"], dtype=float)
    labels = [f"{i + 1}: λ = {value:.3g}" for i, value in enumerate(eigenvalues)]
    cells = [
        (name, labels[i], float(vectors[j, i]))
        for i in range(len(labels)) for j, name in enumerate(names)
    ]  # fmt: skip
    directions = hv.HeatMap(cells, ["parameter", "direction"], "weight").opts(
        cmap="RdBu_r", clim=(-1, 1), colorbar=True, width=max(420, 46 * len(names)) + 160,
        height=max(260, 28 * len(labels)), xrotation=45, tools=["hover"], fontsize=_FONTS,
        invert_yaxis=True, title="Directions of JᵀJ, stiffest first",
    )  # fmt: skip
    return hv.Layout([bars, directions]).cols(1).opts(shared_axes=False)


def sensitivity_table(found: dict[str, Any]) -> str:
    """The directions as HTML: eigenvalue and the parameters that make it up."""
    names = list(found["parameter_names"])
    vectors = np.asarray(found["eigenvectors"], dtype=float)
    rows = "".join(
        f"<tr><td>{i + 1}</td><td>{value:.4g}</td><td>"
        + html.escape(", ".join(f"{w:+.2f} {n}" for n, w in leading(vectors[:, i], names)))
        + "</td></tr>"
        for i, value in enumerate(np.asarray(found["eigenvalues"], dtype=float))
    )
    inert = no_effect(found)
    flagged = (
        f" <b>No effect</b> (both points gave exactly the best's errors; the model may not "
        f"read it): {html.escape(', '.join(inert))}."
        if inert
        else ""
    )
    return (
        f"<p>{len(found['total'])} evaluations around the best (row {found['best_row']}), "
        f"step {found['step']:g}.{flagged}</p><table><tr><th>direction</th><th>eigenvalue</th>"
        f"<th>leading parameters</th></tr>{rows}</table>"
    )


__all__ = [
    "IDENTIFIABILITY_NOTE", "SENSITIVITY_NOTE", "correlation_figure", "identifiability_table",
    "profile_figure", "sensitivity_figures", "sensitivity_table",
]  # fmt: skip
