"""Where a run began and, for a chain, where each stage began: for the report's summary and
the convergence figure (read from the store's ``warm_start`` and ``stages`` attributes)."""

from __future__ import annotations

import html
from typing import Any

import holoviews as hv
import numpy as np

STAGE_COLOUR = "#7f7f7f"


def stage_starts(attrs: dict[str, Any], evaluations: np.ndarray) -> list[tuple[int, str]]:
    """(first generation, label) of each stage after the first: the generation whose rows
    begin at the stage's first evaluation (no generation holds two stages); ``evaluations``:
    the store's ``generations/evaluations``, the evaluations done after each generation."""
    before = np.concatenate([[0], np.asarray(evaluations, dtype=int)[:-1]])
    starts = []
    for stage in (attrs.get("stages") or [])[1:]:
        generation = int(np.searchsorted(before, stage["first_evaluation"], side="left"))
        if generation < len(evaluations):  # the stage has a committed generation
            starts.append((generation, f"stage {stage['stage'] + 1}: {stage['label']}"))
    return starts


def stage_marks(attrs: dict[str, Any], evaluations: np.ndarray, top: float) -> list:
    """A dashed vertical line and a label at the first generation of each later stage."""
    marks = []
    for generation, label in stage_starts(attrs, evaluations):
        x = generation - 0.5  # between the last generation of one stage and the next's first
        marks.append(hv.VLine(x).opts(color=STAGE_COLOUR, line_dash="dashed", line_width=1))
        marks.append(
            hv.Text(x, top, f" {label}", halign="left", valign="top", fontsize=9).opts(
                color=STAGE_COLOUR
            )
        )
    return marks


def start_summary(attrs: dict[str, Any]) -> str:
    """HTML lines: where a warm-started run began, and a chain's stages."""
    lines = []
    warm = attrs.get("warm_start")
    if warm:
        lines.append(
            f"<p>warm start from {html.escape(str(warm['source']))}: its {warm['points']} best "
            f"individuals (best total error {warm['best_total']:.6g}) from "
            f"{len(warm['stores'])} run store(s)</p>"
        )
    stages = attrs.get("stages") or []
    if len(stages) > 1 or (stages and attrs.get("algorithm", {}).get("name") == "chain"):
        items = "".join(
            f"<li>stage {s['stage'] + 1}: {html.escape(s['label'])} from evaluation "
            f"{s['first_evaluation'] + 1} ({s['evaluations']} planned)"
            + (f", started from {html.escape(s['started_from'])}" if s.get("started_from") else "")
            + (f" — {html.escape(s['note'])}" if s.get("note") else "")
            + "</li>"
            for s in stages
        )
        lines.append(f"<p>chain of stages:</p><ul>{items}</ul>")
    return "\n".join(lines)
