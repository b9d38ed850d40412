"""The score of an e-model problem: per (protocol, recording, feature), eFEL's distance
``|value - mean| / std`` of the recorded trace at the simulator's own time points, with the
recording's (or the feature's) Threshold and the protocol's stimulus window; 250 where eFEL
computes nothing (BluePyOpt's rule, through eFEL's own ``get_distance``, its trace check off
as BluePyOpt has it)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import efel
import numpy as np

from neuroptimus.optimization.problem.emodel_spec import MISSING_SCORE, component_names
from neuroptimus.optimization.simulators.base import Trace


@dataclass(frozen=True)
class ScoredFeature:
    name: str
    mean: float
    std: float
    threshold_mV: float


@dataclass(frozen=True)
class ScoredRecording:
    """One recording's window and features (the traces come in this order)."""

    window_ms: tuple[float, float]
    features: tuple[ScoredFeature, ...]


@dataclass(frozen=True)
class EModelObjective:
    """Same interface as objective.Objective: ``errors``, ``total``, ``component_names``."""

    recordings: tuple[ScoredRecording, ...]
    weights: np.ndarray
    names: tuple[str, ...]

    @classmethod
    def from_spec(cls, spec) -> EModelObjective:
        recordings, weights = [], []
        for protocol in spec.protocols:
            for recording in protocol.recordings:
                features = tuple(
                    ScoredFeature(
                        f.name,
                        f.mean,
                        f.std,
                        recording.threshold_mV if f.threshold_mV is None else f.threshold_mV,
                    )  # fmt: skip
                    for f in recording.features
                )
                weights += [f.weight for f in recording.features]
                recordings.append(ScoredRecording(protocol.window_ms, features))
        names = tuple(component_names(spec.protocols))
        return cls(tuple(recordings), np.array(weights, float), names)

    @property
    def targets(self) -> tuple:
        """No target traces: the features' statistics are the target."""
        return ()

    @property
    def component_names(self) -> list[str]:
        return list(self.names)

    def errors(self, traces: list[Trace]) -> np.ndarray:
        if len(traces) != len(self.recordings):
            raise ValueError(
                f"simulator returned {len(traces)} recordings, the protocols have "
                f"{len(self.recordings)}"
            )
        return np.array([
            value
            for trace, recording in zip(traces, self.recordings, strict=True)
            for value in scores(trace, recording.window_ms, recording.features)
        ])  # fmt: skip

    def total(self, errors: np.ndarray) -> np.ndarray:
        return np.asarray(errors) @ self.weights


def _efel_trace(trace: Trace, window_ms: tuple[float, float], feature: ScoredFeature) -> dict:
    """eFEL's trace of one feature, its settings reset to the feature's threshold alone."""
    efel.reset()  # no setting of an earlier feature may remain
    efel.set_setting("Threshold", float(feature.threshold_mV))
    return {
        "T": np.asarray(trace.time_ms, float),
        "V": np.asarray(trace.values, float),
        "stim_start": [float(window_ms[0])],
        "stim_end": [float(window_ms[1])],
    }


def score(trace: Trace, window_ms: tuple[float, float], feature: ScoredFeature) -> float:
    """One feature's score on one trace (MISSING_SCORE where eFEL computes nothing)."""
    efel_trace = _efel_trace(trace, window_ms, feature)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, RuntimeWarning))
        distance = efel.get_distance(
            efel_trace, feature.name, feature.mean, feature.std,
            trace_check=False, error_dist=MISSING_SCORE,
        )  # fmt: skip
    efel.reset()
    return float(distance)


def scores(
    trace: Trace, window_ms: tuple[float, float], features: tuple[ScoredFeature, ...]
) -> list[float]:
    """``score`` of each feature on one trace, with one eFEL computation per threshold: the
    features sharing it share eFEL's intermediate results (spike times, peaks), which
    ``score`` would compute again for each."""
    by_threshold: dict[float, list[int]] = {}
    for index, feature in enumerate(features):
        by_threshold.setdefault(feature.threshold_mV, []).append(index)
    found = [MISSING_SCORE] * len(features)
    for indices in by_threshold.values():
        names = list(dict.fromkeys(features[i].name for i in indices))
        efel_trace = _efel_trace(trace, window_ms, features[indices[0]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, RuntimeWarning))
            values = efel.get_feature_values([efel_trace], names, raise_warnings=False)[0]
        efel.reset()
        for i in indices:
            found[i] = _distance(values[features[i].name], features[i])
    return found


def _distance(values, feature: ScoredFeature) -> float:
    """eFEL's distance of a feature's values (``get_distance``): the mean of their absolute
    deviations from the mean, in standard deviations; MISSING_SCORE for no value or NaN."""
    if values is None or len(values) < 1:
        return MISSING_SCORE
    total = 0.0
    for value in values:  # summed in order, as eFEL does: the same rounding
        total += abs(value - feature.mean)
    distance = total / feature.std / len(values)
    return MISSING_SCORE if distance != distance else float(distance)


def feature_value(
    trace: Trace, window_ms: tuple[float, float], feature: ScoredFeature
) -> float | None:
    """The value ``score`` compares with the feature's mean (eFEL's mean of the feature's
    values), None where eFEL computes nothing: for figures."""
    efel_trace = _efel_trace(trace, window_ms, feature)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, RuntimeWarning))
        found = efel.get_mean_feature_values([efel_trace], [feature.name], raise_warnings=False)
    efel.reset()
    value = found[0][feature.name]
    return None if value is None or not np.isfinite(value) else float(value)
