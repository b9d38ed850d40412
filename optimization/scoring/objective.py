"""Objective: the weighted Table-1 cost functions over every recorded sweep."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.scoring.costs import COST_FUNCTIONS, CostSettings
from neuroptimus.optimization.simulators.base import Trace


@dataclass(frozen=True)
class Objective:
    """Error components, one per (sweep, cost function), unweighted; ``total`` weights them."""

    functions: tuple[str, ...]
    weights: np.ndarray  # one per component (sweep-major)
    targets: tuple[np.ndarray, ...]  # one per sweep
    settings: CostSettings

    @classmethod
    def from_spec(cls, spec: ProblemSpec, targets: list[np.ndarray]) -> Objective:
        stimulus = spec.protocol.stimulus
        settings = CostSettings(
            sampling_rate_hz=spec.comparison_rate_hz,
            spike_threshold_mV=spec.costs.spike_threshold_mV,
            spike_window_samples=spec.costs.spike_window_samples,
            stim_delay_ms=(stimulus.delay_ms if stimulus else None) or 0.0,
            stim_duration_ms=(stimulus.duration_ms if stimulus else None) or 0.0,
            input_length_ms=spec.protocol.tstop_ms,
        )
        functions = tuple(term.name for term in spec.costs.functions)
        weights = np.tile([term.weight for term in spec.costs.functions], len(targets))
        return cls(functions, weights, tuple(np.asarray(t, float) for t in targets), settings)

    @property
    def component_names(self) -> list[str]:
        if len(self.targets) == 1:
            return list(self.functions)
        return [f"{f} [sweep {s + 1}]" for s in range(len(self.targets)) for f in self.functions]

    def errors(self, traces: list[Trace]) -> np.ndarray:
        """Unweighted components; raises ValueError for traces the costs cannot score."""
        if len(traces) != len(self.targets):
            raise ValueError(
                f"simulator returned {len(traces)} sweeps, target has {len(self.targets)}"
            )
        return np.array(
            [
                COST_FUNCTIONS[name](trace.values, target, self.settings, trace.spike_times_ms)
                for trace, target in zip(traces, self.targets, strict=True)
                for name in self.functions
            ]
        )

    def total(self, errors: np.ndarray) -> np.ndarray:
        """Weighted sum of components (works on one vector or an (n, k) array)."""
        return np.asarray(errors) @ self.weights


def make_objective(spec: ProblemSpec, targets: list[np.ndarray]):
    """The objective of a problem: Table-1 costs over target traces, or eFEL feature
    statistics (``target.features``; ``targets`` is then unused)."""
    if spec.protocols is not None:
        from neuroptimus.optimization.scoring.emodel_objective import EModelObjective  # noqa: PLC0415 (lazy: eFEL loads only for feature targets)

        return EModelObjective.from_spec(spec)
    if spec.target.features is not None:
        from neuroptimus.optimization.scoring.features import (  # noqa: PLC0415 (lazy: eFEL loads only for feature targets)
            FeatureObjective,  # imports eFEL: only when needed
        )

        return FeatureObjective.from_spec(spec)
    return Objective.from_spec(spec, targets)
