"""eFEL feature statistics as a target: the original tool's features mode (use case 6).

A features file is the original tool's JSON: ``stimuli {delay, duration, amplitudes}`` (ms,
nA) and, per feature and stimulus amplitude, ``features.<name>.stimAmp_<amp>: {Mean, Std}``
(a per-feature ``weight`` may be present; like the original, the problem's weights are used
instead). Each simulated sweep is measured with eFEL (stimulus window from the protocol,
Threshold = the problem's spike threshold) and every (sweep, feature) is one error component:
``|Mean − value| / Std``; 250 where eFEL gives nothing but the file has a statistic at that
amplitude; 0 where the file has none. A feature with several values is reduced to their mean,
without the first action potential for the five features in ``FIRST_AP_DROPPED``.

eFEL 5 returns nothing where eFEL 4 (used by the paper) returned 0 for the four features in
``EFEL4_ZERO`` (no spike, no ISI); ``efel_rule: efel4`` restores that, so the numbers are the
original's. Checked against the original tool's own numbers with eFEL 5.7.34.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import efel
import numpy as np

from neuroptimus.optimization.problem.feature_targets import (
    check_against,
    features_file,
    held_out_amplitudes,
    read_features,
    same_amplitude,
)
from neuroptimus.optimization.problem.spec import ProblemSpec

MISSING = 250.0  # the original's error for a feature eFEL cannot compute
FIRST_AP_DROPPED = frozenset(
    {"AP_rise_time", "AP_amplitude", "AP_duration_half_width", "AP_begin_voltage", "AP_rise_rate"}
)
EFEL4_ZERO = frozenset(
    {"inv_first_ISI", "inv_last_ISI", "inv_time_to_first_spike", "time_to_last_spike"}
)


def measure(
    time_ms: np.ndarray,
    voltage_mV: np.ndarray,
    names: list[str],
    window_ms: tuple[float, float],
    threshold_mV: float,
) -> dict[str, np.ndarray | None]:
    """eFEL's values of the features of one sweep, in one call (None or empty: not computed)."""
    efel.reset()  # the numbers must not depend on what ran before in this process
    efel.set_setting("Threshold", float(threshold_mV))
    trace = {
        "T": np.asarray(time_ms, float),
        "V": np.asarray(voltage_mV, float),
        "stim_start": [float(window_ms[0])],
        "stim_end": [float(window_ms[1])],
    }
    with warnings.catch_warnings():  # eFEL 5 deprecates names the original's files use
        warnings.simplefilter("ignore", DeprecationWarning)
        return efel.get_feature_values([trace], names, raise_warnings=False)[0]


def reduce_values(name: str, values: np.ndarray | None, efel_rule: str) -> float | None:
    """One number per feature and sweep, as the original reduces eFEL's array (None: none)."""
    if (values is None or len(values) == 0) and efel_rule == "efel4" and name in EFEL4_ZERO:
        return 0.0
    if values is None or len(values) == 0:
        return None
    if len(values) > 1 and name in FIRST_AP_DROPPED:
        return float(np.mean(values[1:]))
    return float(np.mean(values)) if len(values) > 1 else float(values[0])


def feature_error(statistic: tuple[float, float] | None, value: float | None) -> float:
    if statistic is None:
        return 0.0
    if value is None:
        return MISSING
    mean, std = statistic
    return abs(mean - value) / std


@dataclass(frozen=True)
class FeatureObjective:
    """Error components, one per (sweep, feature), sweep-major and unweighted; ``total``
    weights them. Same interface as ``neuroptimus.optimization.scoring.objective.Objective``."""

    features: tuple[str, ...]
    amplitudes: tuple[float, ...]  # one per sweep, nA
    statistics: tuple[tuple[tuple[float, float] | None, ...], ...]  # [sweep][feature]
    weights: np.ndarray  # one per component
    window_ms: tuple[float, float]  # eFEL's stim_start, stim_end
    threshold_mV: float
    efel_rule: str
    targets: tuple = ()  # no target traces

    @classmethod
    def from_spec(cls, spec: ProblemSpec) -> FeatureObjective:
        """The objective of a spec whose protocol is complete (see ``complete_protocol``)."""
        features = read_features(features_file(spec))
        stimulus = spec.protocol.stimulus
        check_against(spec, features, [*stimulus.amplitudes, *held_out_amplitudes(spec)])
        names = tuple(term.name for term in spec.costs.features)
        statistics = tuple(
            tuple(_statistic_at(features.statistics[name], amplitude) for name in names)
            for amplitude in stimulus.amplitudes
        )
        weights = np.tile([term.weight for term in spec.costs.features], len(statistics))
        window = (stimulus.delay_ms, stimulus.delay_ms + stimulus.duration_ms)
        return cls(
            names, tuple(stimulus.amplitudes), statistics, weights, window,
            spec.costs.spike_threshold_mV, spec.target.efel_rule,
        )  # fmt: skip

    @property
    def component_names(self) -> list[str]:
        return [f"{f} [{a:g} nA]" for a in self.amplitudes for f in self.features]

    def values(self, traces: list) -> list[list[float | None]]:
        """The reduced feature values of every sweep ([sweep][feature]; None: not computed)."""
        if len(traces) != len(self.amplitudes):
            raise ValueError(
                f"simulator returned {len(traces)} sweeps, the features target has "
                f"{len(self.amplitudes)} amplitudes"
            )
        names = list(self.features)
        found = [
            measure(trace.time_ms, trace.values, names, self.window_ms, self.threshold_mV)
            for trace in traces
        ]
        return [[reduce_values(n, sweep[n], self.efel_rule) for n in names] for sweep in found]

    def errors(self, traces: list) -> np.ndarray:
        """Unweighted components; raises ValueError for a wrong number of sweeps."""
        return np.array(
            [
                feature_error(statistic, value)
                for stats, values in zip(self.statistics, self.values(traces), strict=True)
                for statistic, value in zip(stats, values, strict=True)
            ]
        )

    def total(self, errors: np.ndarray) -> np.ndarray:
        """Weighted sum of components (works on one vector or an (n, k) array)."""
        return np.asarray(errors) @ self.weights


def _statistic_at(
    statistics: dict[float, tuple[float, float]], amplitude: float
) -> tuple[float, float] | None:
    for at, statistic in statistics.items():
        if same_amplitude(at, amplitude):
            return statistic
    return None
