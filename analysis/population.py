"""Where the population searched: every individual in a pair plot of the parameter space, and
how the population's spread (diversity, in the unit cube) shrinks generation by generation.

Large populations are rasterized with datashader (each pixel shows the lowest error, or the
latest generation, of the individuals that fall in it), so a million points draw in a second.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial, reduce

import holoviews as hv
import numpy as np
import pandas as pd
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE
from bokeh.models import BasicTicker, NumeralTickFormatter

from neuroptimus.analysis.figures import positive
from neuroptimus.analysis.layouts import grid
from neuroptimus.analysis.snapshot import RunSnapshot

hv.extension("bokeh", logo=False)
silence(FIXED_SIZING_MODE, True)  # panels are sized by their frames (so the grid aligns)

RASTERIZE_ABOVE = 20_000  # individuals; more than this are drawn as a density image
PANEL = 180  # pixels per pair-plot panel (the plotting area, axes come on top)
TRUE_COLOUR = "#d62728"
SELECTED_COLOUR = "#e7298a"
COLOURINGS = {  # colour by: (column, axis label, colour map, datashader aggregator's name)
    "error": ("log10_error", "log₁₀ total error", "viridis", "min"),
    "generation": ("generation", "generation", "viridis_r", "max"),
}
_PALETTE = hv.Cycle.default_cycles["default_colors"]


def run_colour(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]


def pretty_unit(unit: str | None) -> str:
    """``S/cm2`` → ``S/cm²``: units as a physiologist writes them."""
    return (unit or "").replace("cm2", "cm²").replace("um", "µm").replace("uS", "µS")


def parameter_dimension(parameter: dict) -> hv.Dimension:
    """The parameter's axis: name, unit and the bounds as its range (declared ranges also
    spare HoloViews a scan of a million values per panel)."""
    unit = pretty_unit(parameter.get("unit"))
    return hv.Dimension(parameter["name"], unit=unit or None, range=_limits(parameter))


def population_frame(
    snapshots: Sequence[RunSnapshot], generations: tuple[int, int] | None = None
) -> pd.DataFrame:
    """One row per committed individual of runs that share the first run's parameters:
    parameters, log10 error, total, generation, status, row and run (index in the list)."""
    if not snapshots:
        return pd.DataFrame()
    names = snapshots[0].parameter_names
    parts = []
    for index, snapshot in enumerate(snapshots):
        if snapshot.parameter_names != names:
            continue  # another problem: its parameter space is not this one
        rows = snapshot.rows
        keep = np.ones(len(rows["total"]), dtype=bool)
        if generations is not None:
            keep = (rows["generation"] >= generations[0]) & (rows["generation"] <= generations[1])
        columns = {name: rows["parameters"][keep, j] for j, name in enumerate(names)}
        columns["log10_error"] = np.log10(positive(rows["total"][keep]))
        columns["total"] = rows["total"][keep]
        columns["generation"] = rows["generation"][keep]
        columns["status"] = rows["status"][keep]
        columns["row"] = np.flatnonzero(keep)
        columns["run"] = np.full(int(keep.sum()), index, dtype=np.int32)
        parts.append(pd.DataFrame(columns))
    return pd.concat(parts, ignore_index=True)


@dataclass(frozen=True)
class PairPanel:
    """One panel of the pair plot: ``y`` is None on the diagonal (a histogram of ``x``);
    ``source`` is the scatter (or density) layer, to attach selection streams to."""

    x: str
    y: str | None
    element: hv.Element | hv.Overlay | hv.DynamicMap
    source: hv.Element | hv.DynamicMap | None = None


def _limits(parameter: dict) -> tuple[float, float]:
    low, high = float(parameter["lower"]), float(parameter["upper"])
    if parameter.get("log"):
        ratio = (high / low) ** 0.02
        return low / ratio, high * ratio
    pad = 0.02 * (high - low)
    return low - pad, high + pad


def _scatter(
    frame: pd.DataFrame, px: dict, py: dict, colour: str, clim: tuple, dynamic: bool, look: dict
):
    """Points, or above RASTERIZE_ABOVE a datashader image; ``look`` holds the panel's plot
    options, which an overlay takes from its first layer."""
    column, label, cmap, aggregator = COLOURINGS[colour]
    vdim = hv.Dimension(column, label=label, range=clim)
    kdims = [parameter_dimension(px), parameter_dimension(py)]
    data = frame[[px["name"], py["name"], column]]
    common = dict(cmap=cmap, clim=clim, **look)
    if len(frame) > RASTERIZE_ABOVE:
        # imported here: datashader (with numba) takes a second to import, which a report of
        # a run's few thousand points need not pay
        import datashader as ds  # noqa: PLC0415 (lazy: see above)
        from holoviews.operation.datashader import dynspread, rasterize  # noqa: PLC0415 (lazy: see above)

        # Datashader compiles its kernel per pair of column names: fixed names ("x", "y";
        # the axes keep the parameters' labels) compile once, and warm_up() can do it early.
        data = data.set_axis(["x", "y", column], axis=1)
        kdims = [
            hv.Dimension("x", label=px["name"], unit=kdims[0].unit, range=kdims[0].range),
            hv.Dimension("y", label=py["name"], unit=kdims[1].unit, range=kdims[1].range),
        ]
        points = hv.Points(data, kdims, [vdim])
        image = rasterize(
            points, aggregator=getattr(ds, aggregator)(column), dynamic=dynamic,
            width=PANEL, height=PANEL, x_range=_limits(px), y_range=_limits(py),
        )  # fmt: skip
        image = dynspread(image, threshold=0.6, max_px=3, dynamic=dynamic)
        return image.opts(**common, tools=["box_select"])
    # drawn in order: the best (or the latest generation) last, on top of the others
    ascending = colour == "generation"
    points = hv.Points(data.sort_values(column, ascending=ascending, kind="stable"), kdims, [vdim])
    size = 5 if len(frame) < 2000 else 3
    return points.opts(
        **common, color=column, size=size, alpha=0.75, line_alpha=0, nonselection_alpha=0.75,
        tools=["box_select", "hover"],
    )  # fmt: skip


def _marks(px: dict, py: dict) -> list[hv.Element]:
    """The bounds (dashed box) and, for surrogate problems, the true value (red cross)."""
    marks = [
        hv.Bounds((px["lower"], py["lower"], px["upper"], py["upper"])).opts(
            color="grey", line_dash="dashed", line_width=1, default_tools=_TOOLS
        )
    ]
    tx, ty = px.get("true_value"), py.get("true_value")
    if tx is not None and ty is not None:
        kdims = [parameter_dimension(px), parameter_dimension(py)]
        marks.append(
            hv.Points([(tx, ty)], kdims).opts(
                marker="x", size=14, color=TRUE_COLOUR, line_width=3, default_tools=_TOOLS
            )
        )
    return marks


def _histogram(frame: pd.DataFrame, parameter: dict) -> hv.Overlay:
    low, high = float(parameter["lower"]), float(parameter["upper"])
    log = bool(parameter.get("log"))
    values = frame[parameter["name"]].to_numpy()
    if log:  # uniform bins in log10 (numpy's fast path: no sorting of a million values)
        counts, edges = np.histogram(np.log10(values), bins=30, range=np.log10([low, high]))
        edges = 10**edges
    else:
        counts, edges = np.histogram(values, bins=30, range=(low, high))
    histogram = hv.Histogram(
        (edges, counts), kdims=[parameter_dimension(parameter)], vdims=["individuals"]
    ).opts(
        color="#6baed6", line_color="white", alpha=0.9, title=f"{parameter['name']}: distribution",
        frame_width=PANEL, frame_height=PANEL, fontsize=_FONTS, default_tools=_TOOLS,
        yformatter=NumeralTickFormatter(format="0.[0]a"), **_axis_opts(parameter, None),
    )  # fmt: skip
    if parameter.get("true_value") is None:
        return histogram
    true = hv.VLine(parameter["true_value"]).opts(
        color=TRUE_COLOUR, line_width=2, default_tools=_TOOLS
    )
    return histogram * true


def colour_limits(frame: pd.DataFrame, colour: str) -> tuple[float, float]:
    values = frame[COLOURINGS[colour][0]].to_numpy() if len(frame) else np.zeros(0)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return (0.0, 1.0)
    return float(finite.min()), float(max(finite.max(), finite.min() + 1e-9))


def _axis_opts(px: dict, py: dict | None) -> dict:
    """Limits at the bounds, log axes for log-scaled parameters, compact tick labels."""
    opts = dict(xlim=_limits(px), logx=bool(px.get("log")), xticks=3)
    if not px.get("log"):
        opts["xformatter"] = "%.3g"
    if py is not None:
        opts.update(ylim=_limits(py), logy=bool(py.get("log")), yticks=4)
        if not py.get("log"):
            opts["yformatter"] = "%.3g"
    return opts


_FONTS = {"title": 10, "labels": 10, "xticks": 8, "yticks": 8}
# No pan or box-zoom: dragging a box selects (the only drag tool is then active at once in
# the merged toolbar); the wheel zooms, and reset restores the view.
_TOOLS = ["save", "wheel_zoom", "reset"]

# Options are given to each panel's first, static layer (an overlay takes its plot options
# from there) and never to the composed overlay: that one may be a DynamicMap, and options
# attached to those can leak between browser sessions once HoloViews recycles option ids.
Hook = Callable[[str, str, object, hv.Element], None]


def pair_panels(
    frame: pd.DataFrame,
    parameters: Sequence[dict],
    colour: str = "error",
    dynamic: bool = False,
    hook: Hook | None = None,
) -> list[PairPanel]:
    """The lower triangle (scatter or density per pair) and the diagonal (histograms), in
    reading order; ``hook(x, y, plot, element)`` runs on each rendered pair panel (the
    explorer draws the selected individuals with it)."""
    clim = colour_limits(frame, colour)
    panels = []
    for i, py in enumerate(parameters):
        for px in parameters[:i]:
            look = dict(
                frame_width=PANEL, frame_height=PANEL, title=f"{py['name']} vs {px['name']}",
                active_tools=["box_select"], fontsize=_FONTS, default_tools=_TOOLS,
                **_axis_opts(px, py),
            )  # fmt: skip
            if hook is not None:
                look["hooks"] = [partial(hook, px["name"], py["name"])]
            scatter = _scatter(frame, px, py, colour, clim, dynamic, look)
            element = reduce(operator.mul, [scatter, *_marks(px, py)])
            panels.append(PairPanel(px["name"], py["name"], element, scatter))
        panels.append(PairPanel(py["name"], None, _histogram(frame, py)))
    return panels


def colourbar(colour: str, clim: tuple[float, float], selected: bool = False) -> hv.Overlay:
    """The pair plot's key, for its empty top-right corner: what the marks mean, and the
    colour bar (drawn inside the frame, so the grid's columns stay aligned)."""
    column, label, cmap, _ = COLOURINGS[colour]
    empty = pd.DataFrame({"x": [], "y": [], column: []})
    quiet = dict(default_tools=_TOOLS)
    scale = hv.Points(empty, ["x", "y"], [hv.Dimension(column, label=label)]).opts(
        color=column, cmap=cmap, clim=clim, colorbar=True, colorbar_position="bottom_left",
        colorbar_opts={"title": label, "orientation": "horizontal", "width": 110, "height": 10,
                       "padding": 0, "title_text_font_style": "normal",
                       "ticker": BasicTicker(desired_num_ticks=3)},
        xaxis=None, yaxis=None, show_frame=False, frame_width=PANEL, frame_height=PANEL,
        toolbar=None, title="Key", xlim=(0, 1), ylim=(0, 1), fontsize=_FONTS, **quiet,
    )  # fmt: skip
    text = {"halign": "left", "fontsize": 9}
    marks = [
        hv.Bounds((0.02, 0.86, 0.14, 0.96)).opts(color="grey", line_dash="dashed", **quiet),
        hv.Text(0.2, 0.91, "parameter bounds", **text).opts(**quiet),
        hv.Points([(0.08, 0.74)]).opts(
            marker="x", size=14, color=TRUE_COLOUR, line_width=3, **quiet
        ),
        hv.Text(0.2, 0.74, "true value", **text).opts(**quiet),
    ]
    if selected:
        marks += [
            hv.Points([(0.08, 0.57)]).opts(size=11, fill_alpha=0, line_color=SELECTED_COLOUR,
                                           line_width=2, **quiet),
            hv.Text(0.2, 0.57, "selected individual", **text).opts(**quiet),
        ]  # fmt: skip
    return hv.Overlay([scale, *marks])


def pair_layout(
    panels: Sequence[PairPanel], count: int, corner: hv.Element | None = None, title: str = ""
) -> hv.Layout:
    """A lower-triangular matrix (row i: pairs with parameter i, then its histogram); the
    top-right cell holds ``corner`` (the colour bar), the rest of the upper triangle is empty."""
    cells: list = []
    position = iter(panels)
    for i in range(count):
        cells.extend(next(position).element for _ in range(i + 1))
        empty = [hv.Empty() for _ in range(count - i - 1)]
        if i == 0 and empty and corner is not None:
            empty[-1] = corner
        cells.extend(empty)
    return grid(cells, count, shared_axes=True, merge_tools=True, title=title)


def parameter_space_figure(
    snapshots: Sequence[RunSnapshot],
    colour: str = "error",
    generations: tuple[int, int] | None = None,
    parameters: Sequence[str] | None = None,
) -> hv.Layout:
    """Pair plot of every individual of the runs (which must share a parameter space),
    coloured by log10 error or generation, with bounds and true values marked."""
    frame = population_frame(snapshots, generations)
    specs = [p for p in snapshots[0].parameters if parameters is None or p["name"] in parameters]
    corner = colourbar(colour, colour_limits(frame, colour))
    title = f"Parameter space: {len(frame):,} individuals, coloured by {COLOURINGS[colour][1]}"
    return pair_layout(pair_panels(frame, specs, colour), len(specs), corner, title)


def warm_up() -> None:
    """Compile datashader's kernels (numba JIT, seconds) on a tiny pair plot, so that the
    first large parameter space a user opens does not wait for the compiler."""
    rng = np.random.default_rng(0)
    n = RASTERIZE_ABOVE + 1
    parameters = [{"name": name, "lower": 0.0, "upper": 1.0} for name in ("a", "b")]
    frame = pd.DataFrame({"a": rng.random(n), "b": rng.random(n)})
    frame["log10_error"] = frame["generation"] = frame["a"]
    for colour in COLOURINGS:
        panels = pair_panels(frame, parameters, colour, dynamic=True)
        hv.render(pair_layout(panels, 2, colourbar(colour, (0.0, 1.0))))


# -- diversity ---------------------------------------------------------------------------
def generation_spread(snapshot: RunSnapshot) -> tuple[np.ndarray, np.ndarray]:
    """(generations, SD of each parameter's unit-cube coordinate in that generation (g × d))."""
    unit = snapshot.unit
    generation = snapshot.rows["generation"].astype(np.int64)
    count = snapshot.committed_generations
    if not len(generation):
        return np.arange(0), np.zeros((0, unit.shape[1]))
    size = np.bincount(generation, minlength=count).astype(float)
    present = size > 0
    spreads = []
    for j in range(unit.shape[1]):
        total = np.bincount(generation, weights=unit[:, j], minlength=count)
        squares = np.bincount(generation, weights=unit[:, j] ** 2, minlength=count)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = total / size
            variance = np.maximum(squares / size - mean**2, 0.0)
        spreads.append(np.sqrt(variance))
    return np.flatnonzero(present), np.column_stack(spreads)[present]


DIVERSITY_AXIS = "diversity (mean SD, unit cube)"


def diversity_figure(snapshots: Sequence[RunSnapshot], labels: Sequence[str] | None = None):
    """Mean over parameters of the population's SD (in normalised units) per generation; a
    uniform random population scores 0.29, a converged one tends to 0."""
    curves, top = [], np.sqrt(1 / 12)
    for index, snapshot in enumerate(snapshots):
        x, spread = generation_spread(snapshot)
        top = max(top, float(spread.mean(axis=1).max(initial=0)))
        label = labels[index] if labels else snapshot.label
        curves.append(
            hv.Curve((x, spread.mean(axis=1)), "generation", DIVERSITY_AXIS, label=label).opts(
                color=run_colour(index), line_width=2
            )
        )
    reference = hv.HLine(np.sqrt(1 / 12)).opts(color="grey", line_dash="dotted", line_width=1)
    return hv.Overlay([*curves, reference]).opts(
        title="Population diversity per generation (dotted: uniform random population)",
        width=900, height=340, legend_position="right", ylim=(0, 1.08 * top),
        show_legend=True,
    )  # fmt: skip


def parameter_spread_figure(snapshot: RunSnapshot) -> hv.Overlay:
    """SD of each parameter (unit cube) per generation for one run: which ones converged."""
    x, spread = generation_spread(snapshot)
    curves = [
        hv.Curve((x, spread[:, j]), "generation", "SD (unit cube)", label=p["name"]).opts(
            color=run_colour(j), line_width=2
        )
        for j, p in enumerate(snapshot.parameters)
    ]
    return hv.Overlay(curves).opts(
        title=f"Spread of each parameter: {snapshot.label}", width=900, height=300,
        legend_position="right", ylim=(0, None),
    )  # fmt: skip


__all__ = [
    "COLOURINGS",
    "PairPanel",
    "diversity_figure",
    "generation_spread",
    "pair_layout",
    "pair_panels",
    "parameter_space_figure",
    "parameter_spread_figure",
    "population_frame",
]
