"""The feature figure of eFEL feature-statistics problems: per feature a small panel with the
target mean ± std at each stimulus amplitude and the feature values of chosen individuals.

Amplitudes where the features file has no statistic for a feature do not count in the error
and are left out. A value eFEL could not compute where there is a statistic (the error is
then 250) is drawn as a cross at the bottom of the panel, with a note, not dropped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

import holoviews as hv
import numpy as np

from neuroptimus.analysis.layouts import grid
from neuroptimus.analysis.traces import PICK_COLOURS
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators import Trace

hv.extension("bokeh", logo=False)

TARGET_COLOUR, BEST_COLOUR = "black", "#d62728"
PANEL_WIDTH, PANEL_HEIGHT, COLUMNS = 300, 230, 4
MISSING_NOTE = "not computed"
X = "stimulus (nA)"
OFF_VIEW = [(-1.0, -1.0)]

Values = list[list[float | None]]  # [sweep][feature], as FeatureObjective.values gives them


def is_features(spec: dict) -> bool:
    """Whether a stored spec's target is eFEL feature statistics."""
    return spec.get("target", {}).get("features") is not None


@lru_cache(maxsize=16)
def _objective(spec_json: str):
    from neuroptimus.optimization.scoring.features import (  # noqa: PLC0415 (lazy: eFEL loads only for feature targets)
        FeatureObjective,  # eFEL: only for features problems
    )

    return FeatureObjective.from_spec(ProblemSpec.model_validate_json(spec_json))


def feature_objective(spec: dict):
    """The ``FeatureObjective`` of a stored spec (its protocol is complete), read once."""
    return _objective(json.dumps(spec, sort_keys=True))


def stored_traces(arrays: dict[str, np.ndarray]) -> list[Trace]:
    """The sweeps of a stored ``best`` group (time, trace: samples × sweeps) as traces."""
    time = np.asarray(arrays["time"], dtype=float)
    step = float(time[1] - time[0]) if len(time) > 1 else 1.0
    return [Trace(np.asarray(column, dtype=float), step, float(time[0]))
            for column in np.asarray(arrays["trace"]).T]  # fmt: skip


def feature_values(spec: dict, traces: list[Trace]) -> Values:
    """The reduced feature values of each sweep, as the objective scores them."""
    return feature_objective(spec).values(traces)


def _panel(objective, j: int, individuals, colours) -> hv.Overlay:
    """One feature: target mean ± std where the file has a statistic, then each individual."""
    name = objective.features[j]
    kept = [s for s, stats in enumerate(objective.statistics) if stats[j] is not None]
    amplitudes = np.array([objective.amplitudes[s] for s in kept], dtype=float)
    means = np.array([objective.statistics[s][j][0] for s in kept], dtype=float)
    stds = np.array([objective.statistics[s][j][1] for s in kept], dtype=float)
    low, high = [means - stds], [means + stds]
    layers = [
        hv.ErrorBars((amplitudes, means, stds), X, [name, "std"], label="target mean ± std").opts(
            color=TARGET_COLOUR, line_width=2
        ),
        hv.Scatter((amplitudes, means), X, name, label="target mean ± std").opts(
            color=TARGET_COLOUR, size=7
        ),
    ]
    span = float(np.ptp(objective.amplitudes)) or 1.0
    missing = []  # (x, colour) of values eFEL could not compute
    for i, ((label, values), colour) in enumerate(zip(individuals, colours, strict=True)):
        x = amplitudes + 0.02 * span * (i + 1)  # beside the target, not on top of it
        found = np.array([values[s][j] is not None for s in kept], dtype=bool)
        y = np.array([values[s][j] if f else np.nan for s, f in zip(kept, found, strict=True)])
        error = np.abs(y - means) / stds
        layers.append(
            hv.Scatter((x[found], y[found], error[found]), X, [name, "error"], label=label).opts(
                color=colour, size=8, marker="diamond", tools=["hover"]
            )
        )
        missing += [(xm, colour) for xm in x[~found]]
        low.append(y[found])
        high.append(y[found])
    low, high = np.concatenate(low), np.concatenate(high)
    bottom, top = (float(low.min()), float(high.max())) if len(low) else (0.0, 1.0)
    pad = 0.1 * (top - bottom) or 1.0
    title = name
    if missing:  # drawn at the bottom of the panel: eFEL gave nothing, the error is 250
        cross_y = bottom - pad
        xs = [m[0] for m in missing]
        layers.append(
            hv.Points(
                (xs, [cross_y] * len(xs), [m[1] for m in missing]),
                [X, name],
                "colour",
                label=f"{MISSING_NOTE} (error 250)",
            ).opts(color="colour", marker="x", size=13, line_width=3)  # fmt: skip
        )
        layers += [hv.Text(x, cross_y, f"  {MISSING_NOTE}", halign="left", fontsize=8)
                   for x in sorted(set(xs))]  # fmt: skip
        bottom = cross_y
        title = f"{name} · {len(missing)} {MISSING_NOTE} (×)"
    return hv.Overlay(layers).opts(
        title=title, width=PANEL_WIDTH, height=PANEL_HEIGHT, show_legend=False,
        ylim=(bottom - pad, top + pad),
        xlim=(min(objective.amplitudes) - 0.1 * span, max(objective.amplitudes) + 0.15 * span),
        fontsize={"title": 9, "labels": 8, "legend": 7},
    )  # fmt: skip


def feature_figure(
    objective,
    individuals: Sequence[tuple[str, Values]],
    colours: Sequence[str] | None = None,
    columns: int = COLUMNS,
) -> hv.Layout:
    """Small multiples, one panel per feature (the objective's order): target mean ± std
    (black) and the values of each (label, values) individual, in ``colours`` (the first in
    red by default); a last panel is the key."""
    colours = list(colours or [BEST_COLOUR, *PICK_COLOURS])[: len(individuals)]
    panels = [_panel(objective, j, individuals, colours) for j in range(len(objective.features))]
    return grid([*panels, _key(individuals, colours)], columns, shared_axes=False)


def _key(individuals, colours) -> hv.Overlay:
    """The legend of every panel, as a panel of its own (a legend inside a small panel
    would hide points). Each entry has one point out of view: Bokeh draws no legend glyph
    for an empty renderer."""
    entries = [
        hv.Scatter(OFF_VIEW, label="target mean ± std").opts(color=TARGET_COLOUR, size=7),
        *(hv.Scatter(OFF_VIEW, label=label).opts(color=colour, marker="diamond", size=8)
          for (label, _), colour in zip(individuals, colours, strict=True)),
        hv.Scatter(OFF_VIEW, label=f"{MISSING_NOTE} by eFEL (error 250)").opts(
            color="grey", marker="x", size=13, line_width=3),
    ]  # fmt: skip
    return hv.Overlay(entries).opts(
        title="Key", width=PANEL_WIDTH, height=PANEL_HEIGHT, xaxis=None, yaxis=None,
        xlim=(0, 1), ylim=(0, 1), show_frame=False, legend_position="top_left", toolbar=None,
        fontsize={"title": 9, "legend": 9},
    )  # fmt: skip


_best_values: dict[str, Values] = {}  # store path -> values (a finished run's best is final)


def best_feature_figure(store) -> hv.Layout:
    """The best individual's feature values (from its stored traces) against the target; a
    ``RunStore`` or ``RunSnapshot`` of a finished run."""
    best = store.arrays("best")
    if "trace" not in best:
        raise ValueError("the best individual's traces are stored when the run finishes")
    spec = store.attrs["spec"]
    key = str(store.path)
    if key not in _best_values:
        _best_values[key] = feature_values(spec, stored_traces(best))
    return feature_figure(feature_objective(spec), [("best individual", _best_values[key])])


def _same_target(a, b) -> bool:
    return (a.features, a.amplitudes, a.statistics) == (b.features, b.amplitudes, b.statistics)


def picks_feature_figure(spec: dict, picks: Sequence[tuple[str, dict, Values, str]]) -> hv.Layout:
    """Picked individuals' values (label, their run's spec, values, colour) against the
    target of ``spec``; picks from runs with another features target are left out."""
    objective = feature_objective(spec)
    kept = [p for p in picks if _same_target(feature_objective(p[1]), objective)]
    return feature_figure(objective, [(p[0], p[2]) for p in kept], [p[3] for p in kept])


__all__ = [
    "best_feature_figure", "feature_figure", "feature_objective", "feature_values",
    "is_features", "picks_feature_figure", "stored_traces",
]  # fmt: skip
