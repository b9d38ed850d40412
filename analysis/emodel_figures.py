"""Figures of e-model problems (``model.simulator: emodel``, several protocols scored by eFEL
features; see docs/problems.md): the best individual's recordings protocol by protocol over the
experimental feature means, and its feature values against those means.

The traces are the stored ones of the finished run (the best simulated again, put on eFEL's
0.1 ms grid): the feature values measured on them are those the optimizer scored, up to that
interpolation. Over the traces, a feature is drawn where it reads on the axes: an absolute
voltage (``AP_height``, ``AHP_depth_abs`` …) as a band mean ± std across the protocol's feature
window, an amplitude above the voltage base (``AP_amplitude_from_voltagebase`` …) as that band
raised by the trace's voltage base, the first spike's latency as a vertical band; the others
(frequencies, ratios, counts) are in the feature figure only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

import holoviews as hv
import numpy as np

from neuroptimus.analysis.feature_figures import feature_figure
from neuroptimus.analysis.layouts import grid
from neuroptimus.analysis.traces import PICK_COLOURS
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.base import Trace

hv.extension("bokeh", logo=False)

ABSOLUTE_MV = {
    "AP_height", "AHP_depth_abs", "AHP_depth_abs_slow", "voltage_base", "steady_state_voltage",
    "steady_state_voltage_stimend", "minimum_voltage", "maximum_voltage", "min_AHP_values",
    "peak_voltage", "min_voltage_between_spikes",
}  # fmt: skip
ABOVE_BASE_MV = {"AP_amplitude_from_voltagebase", "AHP_depth_from_peak_base", "AHP_depth"}
LATENCY_MS = {"time_to_first_spike"}
PANEL_WIDTH, PANEL_HEIGHT = 450, 300
TRACES_NOTE = (
    "The best individual's recordings, protocol by protocol. Shaded bands are the experimental "
    "feature means ± std that read on these axes, over the feature window: absolute voltages "
    "(AP_height, AHP depths), amplitudes above the voltage base (AP_amplitude_from_voltagebase, "
    "raised by the trace's own base) and the first spike's latency (vertical). The other "
    "features are in the figure below."
)
FEATURES_NOTE = (
    "The best individual's eFEL feature values (diamonds) against the experimental mean ± std "
    "(black), at each protocol's stimulus; a recording other than the soma is named in the "
    "panel's title. A cross at the bottom of a panel marks a value eFEL could not compute "
    "(scored 250)."
)


def is_emodel(spec: dict) -> bool:
    """Whether a stored spec is an e-model problem (protocols instead of one protocol)."""
    return bool(spec.get("protocols"))


@lru_cache(maxsize=16)
def _objective(spec_json: str):
    from neuroptimus.optimization.scoring.emodel_objective import EModelObjective  # noqa: PLC0415 (lazy: eFEL loads only when a report draws an e-model)

    spec = ProblemSpec.model_validate_json(spec_json)
    return spec, EModelObjective.from_spec(spec)


def _problem(spec: dict):
    """(ProblemSpec, EModelObjective) of a stored spec, made once."""
    return _objective(json.dumps(spec, sort_keys=True))


@dataclass(frozen=True)
class _Recording:
    protocol: str
    name: str
    column: int
    window_ms: tuple[float, float]
    features: tuple  # ScoredFeature


def _recordings(spec: dict) -> list[_Recording]:
    """The recordings in the stored traces' column order, with their scored features."""
    problem, objective = _problem(spec)
    names = [(p.name, r.name) for p in problem.protocols for r in p.recordings]
    pairs = zip(names, objective.recordings, strict=True)
    return [
        _Recording(protocol, name, k, scored.window_ms, scored.features)
        for k, ((protocol, name), scored) in enumerate(pairs)
    ]


def best_recordings(best: dict[str, np.ndarray]) -> list[Trace]:
    """The stored best's columns as traces, each cut where it ends (NaN past a protocol's end)."""
    if "trace" not in best:
        raise ValueError("the best individual's traces are stored when the run finishes")
    time = np.asarray(best["time"], dtype=float)
    step = float(time[1] - time[0]) if len(time) > 1 else 1.0
    traces = []
    for column in np.asarray(best["trace"], dtype=float).T:
        kept = column[: int(np.max(np.flatnonzero(np.isfinite(column)), initial=-1)) + 1]
        traces.append(Trace(kept, step, float(time[0])))
    return traces


def _voltage_base(trace: Trace, start_ms: float) -> float:
    """eFEL's default voltage base: the mean voltage over the 10 % of time before the window."""
    time = trace.time_ms
    before = (time >= 0.9 * start_ms) & (time <= start_ms)
    return float(np.mean(trace.values[before])) if before.any() else float(trace.values[0])


def _bands(recording: _Recording, trace: Trace, colour: str) -> list:
    """The recording's features that read on a voltage-time panel, as shaded bands."""
    start, end = recording.window_ms
    layers, drawn = [], 0
    for feature in recording.features:
        if feature.name in LATENCY_MS:
            low, high = start + feature.mean - feature.std, start + feature.mean + feature.std
            layers.append(hv.VSpan(low, high).opts(color=colour, alpha=0.2))
            continue
        if feature.name in ABSOLUTE_MV:
            level = feature.mean
        elif feature.name in ABOVE_BASE_MV:
            level = _voltage_base(trace, start) + feature.mean
        else:
            continue
        box = (start, level - feature.std, end, level + feature.std)
        # labels at alternate ends of the window: bands of close means overlap
        at, align = (end, "right") if drawn % 2 == 0 else (start, "left")
        drawn += 1
        layers += [
            hv.Rectangles([box], ["time (ms)", "mV", "x1", "y1"]).opts(
                color=colour, alpha=0.2, line_alpha=0
            ),
            hv.Segments([(start, level, end, level)], ["time (ms)", "mV", "x1", "y1"]).opts(
                color=colour, line_dash="dashed", line_width=1
            ),
            hv.Text(at, level, f" {feature.name} ", halign=align, valign="bottom", fontsize=8),
        ]  # fmt: skip
    return layers


def protocol_traces_figure(store) -> hv.Layout:
    """One panel per protocol: the best's recordings and the feature means drawn over them."""
    spec = store.attrs["spec"]
    traces = best_recordings(store.arrays("best"))
    recordings = _recordings(spec)
    colours = ["#222222", *PICK_COLOURS]
    panels = []
    for protocol in dict.fromkeys(r.protocol for r in recordings):
        layers = []
        members = [r for r in recordings if r.protocol == protocol]
        for k, recording in enumerate(members):
            trace, colour = traces[recording.column], colours[k % len(colours)]
            layers += _bands(recording, trace, colour)
            layers.append(
                hv.Curve((trace.time_ms, trace.values), "time (ms)", "mV",
                         label=recording.name).opts(color=colour, line_width=1)
            )  # fmt: skip
        panels.append(
            hv.Overlay(layers).opts(
                title=protocol,
                width=PANEL_WIDTH,
                height=PANEL_HEIGHT,
                legend_position="bottom_right",
                show_legend=len(members) > 1,
            )  # fmt: skip
        )
    return grid(panels, 2, shared_axes=False)


@dataclass(frozen=True)
class FeatureTable:
    """The features of an e-model as ``feature_figure`` reads a features target: a "sweep" per
    protocol at its stimulus amplitude, a panel per (recording, feature), ``statistics`` the
    (mean, std) where the protocol scores that feature, else None."""

    features: list[str]
    amplitudes: list[float]
    statistics: list[list[tuple[float, float] | None]]
    keys: list[tuple[str, str]]  # (recording name, feature name) of each panel


def _amplitude(protocol) -> float:
    """A protocol's step: its stimulus of largest magnitude (a holding current beside it)."""
    return max((s.amplitude_nA for s in protocol.stimuli), key=abs, default=0.0)


def feature_table(spec: dict) -> FeatureTable:
    problem, _ = _problem(spec)
    keys = list(
        dict.fromkeys(
            (r.name, f.name) for p in problem.protocols for r in p.recordings for f in r.features
        )
    )
    soma = {
        r.name for p in problem.protocols for r in p.recordings
        if r.location.sections == "somatic" and r.location.soma_distance_um is None
    }  # fmt: skip
    statistics = []
    for protocol in problem.protocols:
        found = {(r.name, f.name): (f.mean, f.std) for r in protocol.recordings for f in r.features}
        statistics.append([found.get(key) for key in keys])
    labels = [name if recording in soma else f"{recording}: {name}" for recording, name in keys]
    amplitudes = [_amplitude(p) for p in problem.protocols]
    return FeatureTable(labels, amplitudes, statistics, keys)


def feature_values(spec: dict, traces: list[Trace], table: FeatureTable) -> list[list]:
    """Per protocol and panel, the best's value (None: not scored there, or not computed)."""
    from neuroptimus.optimization.scoring.emodel_objective import feature_value  # noqa: PLC0415 (lazy: eFEL loads only when a report draws an e-model)

    recordings = _recordings(spec)
    protocols = list(dict.fromkeys(r.protocol for r in recordings))
    values = [[None] * len(table.keys) for _ in protocols]
    for recording in recordings:
        s = protocols.index(recording.protocol)
        for feature in recording.features:
            j = table.keys.index((recording.name, feature.name))
            trace = traces[recording.column]
            values[s][j] = feature_value(trace, recording.window_ms, feature)
    return values


def emodel_feature_figure(store) -> hv.Layout:
    """The best individual's feature values against the experimental means, per feature."""
    spec = store.attrs["spec"]
    table = feature_table(spec)
    values = feature_values(spec, best_recordings(store.arrays("best")), table)
    return feature_figure(table, [("best individual", values)])


__all__ = [
    "FEATURES_NOTE", "TRACES_NOTE", "best_recordings", "emodel_feature_figure", "feature_table",
    "feature_values", "is_emodel", "protocol_traces_figure",
]  # fmt: skip
