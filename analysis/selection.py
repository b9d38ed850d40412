"""Individuals picked in the parameter space: which rows a box selects, a table of them, and
their weighted error components side by side."""

from __future__ import annotations

from collections.abc import Sequence

import holoviews as hv
import pandas as pd

from neuroptimus.analysis.figures import positive
from neuroptimus.analysis.snapshot import RunSnapshot
from neuroptimus.analysis.traces import PICK_COLOURS

hv.extension("bokeh", logo=False)

EMPTY_SELECTION_TEXT = "Drag a box in any panel of the pair plot to select individuals."


def in_box(frame: pd.DataFrame, x: str, y: str, bounds: tuple | None) -> pd.DataFrame:
    """Rows of ``frame`` inside ``bounds`` = (left, bottom, right, top) in the x–y panel,
    best (lowest total error) first."""
    if bounds is None or not len(frame):
        return frame.iloc[:0]
    left, bottom, right, top = bounds
    inside = frame[x].between(left, right) & frame[y].between(bottom, top)
    return frame[inside].sort_values("total", kind="stable")


def pick_label(rank: int, snapshot: RunSnapshot, row: int) -> str:
    """A name for a picked individual: rank in the selection, generation, total error."""
    generation = int(snapshot.rows["generation"][row])
    return f"#{rank}: gen {generation}, error {snapshot.rows['total'][row]:.3g}"


def selection_table(picks: Sequence[tuple[str, RunSnapshot, int]], limit: int = 50) -> pd.DataFrame:
    """The first ``limit`` picks (run label, snapshot, row): generation, total error,
    parameters and status, numbered as in the other selection views."""
    records = []
    for rank, (label, snapshot, row) in enumerate(picks[:limit], 1):
        rows = snapshot.rows
        status_names = snapshot.attrs.get("status_names", ["ok"])
        status = int(rows["status"][row])
        records.append(
            {
                "#": rank,
                "run": label,
                "generation": int(rows["generation"][row]),
                "row": row,
                "total error": f"{rows['total'][row]:.4g}",
                **{
                    name: f"{value:.4g}"
                    for name, value in zip(
                        snapshot.parameter_names, rows["parameters"][row], strict=True
                    )
                },
                "status": status_names[status] if status < len(status_names) else str(status),
            }
        )
    return pd.DataFrame(records)


def components_figure(
    picks: Sequence[tuple[str, RunSnapshot, int]], reference: RunSnapshot | None = None
) -> hv.Overlay:
    """Weighted error components of each picked individual (one coloured profile each,
    labelled #1, #2 … as in the table; log scale), with the run's best individual (red)."""
    entries = [(f"#{rank}", snapshot, row) for rank, (_, snapshot, row) in enumerate(picks, 1)]
    colours = list(PICK_COLOURS[: len(entries)])
    if reference is not None and reference.best_row() is not None:
        entries.append((f"best of {reference.label}", reference, reference.best_row()))
        colours.append("#d62728")
    layers = []
    for (label, snapshot, row), colour in zip(entries, colours, strict=True):
        weighted = positive(snapshot.rows["errors"][row] * snapshot.weights)
        data = (snapshot.component_names, weighted)
        dims = (hv.Dimension("component", label="error component"), "weighted error")
        dash = "dashed" if label.startswith("best of") else "solid"
        layers.append(hv.Curve(data, *dims, label=label).opts(color=colour, line_dash=dash))
        layers.append(
            hv.Scatter(data, *dims, label=label).opts(color=colour, size=8, tools=["hover"])
        )
    if not layers:
        layers = [hv.Curve([], "component", "weighted error")]
    return hv.Overlay(layers).opts(
        title="Error components of the selected individuals (weighted, log scale)",
        logy=True, width=760, height=320, legend_position="right", fontsize={"title": 11},
    )  # fmt: skip


__all__ = ["EMPTY_SELECTION_TEXT", "components_figure", "in_box", "pick_label", "selection_table"]
