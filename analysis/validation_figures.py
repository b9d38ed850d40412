"""The report's held-out validation: the validated individuals' training against validation
error, and the best individual's validation traces over their targets (or its features
against the validation's feature statistics), from a store's ``validation/`` group."""

from __future__ import annotations

from typing import Any

import holoviews as hv
import numpy as np

from neuroptimus.analysis.feature_figures import (
    feature_figure,
    feature_objective,
    feature_values,
    is_features,
    stored_traces,
)
from neuroptimus.analysis.figures import HEIGHT, WIDTH, positive, trace_figure
from neuroptimus.optimization.evaluation.individual import OK

NOTE = (
    "The best distinct individuals of the fit evaluated on the problem's validation: protocols "
    "and targets, which the optimization never saw. Points far above the diagonal fit the "
    "training data better than data they were not fitted to (overfitting); the best "
    "individual is red. The totals add up over sweeps and features: with fewer validation "
    "sweeps than training ones, every point sits lower, and their order tells more."
)


class _ValidationView:
    """The stored validation as ``trace_figure`` reads a run: its ``best`` and ``target``
    arrays and its problem's spec."""

    def __init__(self, found: dict[str, Any]) -> None:
        self.found = found
        self.attrs = {"spec": found["spec"]}

    def arrays(self, group: str) -> dict[str, np.ndarray]:
        found = self.found
        if f"{group}_trace" not in found:
            return {}
        return {"time": found[f"{group}_time"], "trace": found[f"{group}_trace"]}


def validation_table(found: dict[str, Any]) -> str:
    """One row per validated individual: its row, training and validation error."""
    rows = []
    for row, training, total, status in zip(
        found["rows"], found["training_total"], found["total"], found["status"], strict=True
    ):
        shown = f"{total:.6g}" if status == OK else "failed"
        rows.append(f"<tr><td>{int(row)}</td><td>{training:.6g}</td><td>{shown}</td></tr>")
    error = found.get("validation_error")
    head = (
        f"<p>validation error of the best individual <b>"
        f"{'failed' if error is None else f'{error:.6g}'}</b> ({len(found['rows'])} validated)</p>"
    )
    return head + (
        "<table><tr><th>row</th><th>training error</th><th>validation error</th></tr>"
        f"{''.join(rows)}</table>"
    )


def error_scatter(found: dict[str, Any]) -> hv.Overlay:
    """Training against validation error of the validated individuals (log axes), the
    diagonal dashed, the run's best in red."""
    ok = np.asarray(found["status"]) == OK
    training = positive(np.asarray(found["training_total"], dtype=float)[ok])
    validation = positive(np.asarray(found["total"], dtype=float)[ok])
    axes = ("training error", "validation error")
    points = hv.Scatter((training, validation), *axes, label="validated").opts(
        size=8, color="#1f77b4"
    )
    parts = [points]
    if len(training):
        low = min(training.min(), validation.min())
        high = max(training.max(), validation.max())
        parts.append(hv.Curve(([low, high], [low, high]), *axes, label="equal").opts(
            color="grey", line_dash="dashed"))  # fmt: skip
        if ok[0]:
            parts.append(hv.Scatter(([training[0]], [validation[0]]), *axes, label="best")
                         .opts(size=11, color="#d62728"))  # fmt: skip
    return hv.Overlay(parts).opts(
        title="Training against validation error", width=WIDTH // 2 + 150, height=HEIGHT + 60,
        logx=True, logy=True, legend_position="right",  # outside: never over a point
    )  # fmt: skip


def validation_traces(found: dict[str, Any]) -> Any:
    """The best individual's validation traces over their targets; for a features target,
    its feature values against the validation's statistics (and its traces)."""
    spec = found["spec"]
    if "best_trace" not in found:  # the best's validation evaluation failed
        return hv.Div("<p>The best individual's validation evaluation failed: no traces.</p>")
    traces = trace_figure(_ValidationView(found)).opts(
        title="Best individual on the validation protocols"
    )
    if not is_features(spec):
        return traces
    best = {"time": found["best_time"], "trace": found["best_trace"]}
    values = feature_values(spec, stored_traces(best))
    return hv.Layout([traces, feature_figure(feature_objective(spec), [("best", values)])]).cols(1)


def validation_parts(found: dict[str, Any] | None, section) -> list:
    """The report's validation section (``section(title, note)`` makes its heading)."""
    title = "Held-out validation"
    if found is None:
        return [section(title, "Not validated: a problem's validation: section (held-out "
                        "protocols and targets) is evaluated at the end of a run, or by "
                        "`neuroptimus analyze STORE --validate`.")]  # fmt: skip
    return [
        section(title, NOTE),
        validation_table(found),
        error_scatter(found),
        validation_traces(found),
    ]


__all__ = ["error_scatter", "validation_parts", "validation_table", "validation_traces"]
