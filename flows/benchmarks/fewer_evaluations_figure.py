"""The figure of `neuroptimus benchmark fewer-evaluations`: each method's median best total
against evaluations (thin lines: its seeds), with the reference's two target errors, as a PNG
(HoloViews' matplotlib backend: no browser needed)."""

from __future__ import annotations

from pathlib import Path

import holoviews as hv
import numpy as np

from neuroptimus.flows.benchmarks.bluepyopt_figure import matplotlib_backend


def save_figure(
    totals: dict[str, list[np.ndarray]], targets: dict[int, float], title: str, path: Path
) -> Path:
    """``totals``: per method, each seed's totals in evaluation order; ``targets``: budget ->
    target error."""
    with matplotlib_backend():
        colours = hv.Cycle.default_cycles["default_colors"]
        layers = []
        for index, (method, runs) in enumerate(totals.items()):
            colour = colours[index % len(colours)]
            curves = [np.minimum.accumulate(run) for run in runs]
            for curve in curves:
                x = np.arange(1, len(curve) + 1)
                layers.append(hv.Curve((x, curve)).opts(color=colour, alpha=0.3, linewidth=1))
            # the median over seeds as long as every seed is still running
            shortest = min(len(curve) for curve in curves)
            median = np.median([curve[:shortest] for curve in curves], axis=0)
            x = np.arange(1, shortest + 1)
            layers.append(hv.Curve((x, median), label=method).opts(color=colour, linewidth=2.5))
        for budget, error in targets.items():
            layers.append(hv.HLine(error).opts(color="grey", linestyle="dashed", linewidth=1))
            layers.append(hv.VLine(budget).opts(color="grey", linestyle="dotted", linewidth=1))
        figure = hv.Overlay(layers).opts(
            title=title, fig_inches=(10, 4.5), legend_position="right", logy=True,
            fontscale=1.0, xlabel="evaluations", ylabel="best total error so far",
        )  # fmt: skip
        hv.save(figure, path, backend="matplotlib", fmt="png", dpi=110)
        return path
