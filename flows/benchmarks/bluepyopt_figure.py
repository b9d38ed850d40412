"""The figure of `neuroptimus benchmark bluepyopt`: best summed score against evaluations, one line
per side and seed, as a PNG (HoloViews' matplotlib backend: no browser needed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import holoviews as hv

# BluePyOpt's line dashed over ours, wider: with the same seed both sides evaluate the same
# individuals, and their curves coincide
STYLES = {
    "neuroptimus": {"color": "#d62728", "linewidth": 6, "alpha": 0.5},
    "bluepyopt": {"color": "#1f77b4", "linewidth": 2, "linestyle": "dashed"},
}
MARKERS = ["o", "s", "^", "D"]


@contextmanager
def matplotlib_backend() -> Iterator[None]:
    """HoloViews draws with matplotlib inside the block, and with the backend it had after it
    (the report and explorer of this process draw with bokeh)."""
    before = hv.Store.current_backend
    hv.extension("matplotlib", logo=False)
    try:
        yield
    finally:
        if before:
            hv.Store.set_current_backend(before)


def save_figure(curves: list[dict], path: str | Path) -> Path:
    """``curves``: rows of side, seed, evaluations, best (the benchmark's ``-best`` table)."""
    with matplotlib_backend():
        return _save(curves, Path(path))


def _save(curves: list[dict], path: Path) -> Path:
    seeds = sorted({row["seed"] for row in curves})
    lines = []
    for side, style in STYLES.items():
        for k, seed in enumerate(seeds):
            points = [(r["evaluations"], r["best"]) for r in curves
                      if r["side"] == side and r["seed"] == seed]  # fmt: skip
            if points:
                label = f"{side} (seed {seed})"
                lines.append(hv.Curve(points, "evaluations", "best summed score",
                                      label=label).opts(**style))  # fmt: skip
                lines.append(
                    hv.Scatter(points).opts(
                        color=style["color"], marker=MARKERS[k % len(MARKERS)], s=40
                    )
                )
    figure = hv.Overlay(lines).opts(
        title="BluePyOpt's L5PC example, IBEA: best score at equal evaluations",
        fig_inches=(9, 4), legend_position="right", logy=True, fontscale=1.1,
    )  # fmt: skip
    hv.save(figure, path, backend="matplotlib", fmt="png", dpi=110)
    return path
