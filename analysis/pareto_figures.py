"""Multi-objective views from the store's fronts: the non-dominated front (projected onto two
error components) and how it improves, and the hypervolume and front size per generation."""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import numpy as np

from neuroptimus.analysis.figures import positive
from neuroptimus.analysis.population import RASTERIZE_ABOVE, run_colour
from neuroptimus.analysis.snapshot import RunSnapshot
from neuroptimus.optimization.scoring.pareto import non_dominated

hv.extension("bokeh", logo=False)

FRONT_SHADES = ("#c6dbef", "#6baed6", "#2171b5", "#08306b")  # earlier → chosen generation


def weighted_errors(snapshot: RunSnapshot) -> np.ndarray:
    return snapshot.rows["errors"] * snapshot.weights


def _component_dimension(snapshot: RunSnapshot, index: int) -> hv.Dimension:
    name = snapshot.component_names[index]
    return hv.Dimension(f"c{index}", label=f"weighted {name}")


def front_figure(
    snapshot: RunSnapshot, x: int = 0, y: int = 1, generation: int | None = None
) -> hv.Overlay:
    """Every successful individual up to ``generation`` (grey) and the non-dominated front
    after a few generations up to it (darker = later), projected onto components x and y."""
    last = snapshot.committed_generations - 1
    generation = last if generation is None else min(int(generation), last)
    kdims = [_component_dimension(snapshot, x), _component_dimension(snapshot, y)]
    errors = positive(weighted_errors(snapshot))
    rows = snapshot.rows
    seen = (rows["generation"] <= generation) & (rows["status"] == 0)
    seen = np.flatnonzero(seen)
    if len(seen) > RASTERIZE_ABOVE:  # the cloud is context: a random sample draws the same
        seen = np.sort(np.random.default_rng(0).choice(seen, RASTERIZE_ABOVE, replace=False))
    cloud = hv.Points((errors[seen, x], errors[seen, y]), kdims, label="all individuals").opts(
        color="#bdbdbd", size=4, alpha=0.6, tools=["hover"]
    )
    layers = [cloud]
    marks = np.unique(np.linspace(0, generation, len(FRONT_SHADES)).round().astype(int))
    for shade, g in zip(FRONT_SHADES[-len(marks) :], marks, strict=True):
        front = snapshot.front(int(g))
        if not len(front):
            continue
        chosen = g == generation
        layers.append(
            hv.Points(
                (errors[front, x], errors[front, y]), kdims, label=f"front after generation {g}"
            ).opts(color=shade, size=9 if chosen else 6, line_color="white", tools=["hover"])
        )
        if chosen:
            layers.append(_staircase(errors[front][:, [x, y]], kdims, shade))
    names = snapshot.component_names
    return hv.Overlay(layers).opts(
        title=f"Pareto front after generation {generation}: {names[x]} vs {names[y]}",
        logx=True, logy=True, width=820, height=440, legend_position="right",
        fontsize={"title": 11},
    )  # fmt: skip


def _staircase(points: np.ndarray, kdims: list, colour: str) -> hv.Curve:
    """The 2-D non-dominated subset of the projected front, joined as an attainment curve."""
    kept = points[non_dominated(points)]
    kept = kept[np.argsort(kept[:, 0])]
    return hv.Curve(kept, kdims[0], kdims[1]).opts(
        color=colour, interpolation="steps-post", line_width=1.5, line_dash="dashed"
    )


_VOLUME = hv.Dimension("hypervolume", label="hypervolume (fraction of the reference box)")


def hypervolume_figure(
    snapshots: Sequence[RunSnapshot], labels: Sequence[str] | None = None
) -> hv.Layout:
    """Hypervolume of the weighted-error front per generation, as a fraction of the box
    between zero error and the reference point (the penalty in every component: what a
    failed evaluation scores), and the front's size; one colour per run."""
    volume, size = [], []
    for index, snapshot in enumerate(snapshots):
        stats = snapshot.stats
        if "hypervolume" not in stats or not np.isfinite(stats["hypervolume"]).any():
            continue  # a run without fronts (single-objective), or none computed yet
        # generations whose volume is pending or was skipped
        # (neuroptimus.storage.runs.hypervolume) are left out, so the curve joins the computed ones
        g = np.flatnonzero(np.isfinite(stats["hypervolume"]))
        box = float(np.prod(snapshot.attrs["penalty"] * snapshot.weights))
        fraction = stats["hypervolume"][g] / box if box > 0 else stats["hypervolume"][g]
        label = labels[index] if labels else snapshot.label
        colour = run_colour(index)
        volume.append(
            hv.Curve((g, fraction), "generation", _VOLUME, label=label).opts(
                color=colour, line_width=2
            )
        )
        size.append(
            hv.Curve(
                (np.arange(len(stats["front_size"])), stats["front_size"]),
                "generation",
                "individuals on the front",
                label=label,
            ).opts(color=colour, line_width=2)  # fmt: skip
        )
    if not volume:
        empty = hv.Curve([], "generation", _VOLUME)
        return hv.Layout([empty.opts(title="No Pareto fronts stored in these runs")])
    return hv.Layout(
        [
            hv.Overlay(volume).opts(
                title="Hypervolume per generation (higher is better)", width=900, height=300,
                yformatter="%.4f",
                legend_position="right",
            ),
            hv.Overlay(size).opts(
                title="Size of the non-dominated front", width=900, height=240,
                show_legend=False,
            ),
        ]
    ).cols(1)  # fmt: skip


__all__ = ["front_figure", "hypervolume_figure", "weighted_errors"]
