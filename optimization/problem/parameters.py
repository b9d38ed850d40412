"""Parameter space: maps the algorithms' unit cube to parameter values in real units."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from neuroptimus.optimization.problem.model_spec import ParameterSpec


@dataclass(frozen=True)
class ParameterSpace:
    """Bounds of the fitted parameters; log-scaled parameters are uniform in log10."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    log: np.ndarray

    @classmethod
    def from_specs(cls, specs: Sequence[ParameterSpec]) -> ParameterSpace:
        return cls(
            names=tuple(p.name for p in specs),
            lower=np.array([p.lower for p in specs], dtype=float),
            upper=np.array([p.upper for p in specs], dtype=float),
            log=np.array([p.log for p in specs], dtype=bool),
        )

    @property
    def dimension(self) -> int:
        return len(self.names)

    def _scaled_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        low = np.where(self.log, np.log10(np.where(self.log, self.lower, 1.0)), self.lower)
        high = np.where(self.log, np.log10(np.where(self.log, self.upper, 1.0)), self.upper)
        return low, high

    def to_real(self, unit_points: np.ndarray) -> np.ndarray:
        """(n, d) points in [0, 1]^d -> parameter values (clipped into the bounds)."""
        unit_points = np.clip(np.asarray(unit_points, dtype=float), 0.0, 1.0)
        low, high = self._scaled_bounds()
        scaled = low + unit_points * (high - low)
        # the power only where the scale is log: a linear bound like 3000 would overflow it
        powered = 10.0 ** np.where(self.log, scaled, 0.0)
        return np.clip(np.where(self.log, powered, scaled), self.lower, self.upper)

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_real`."""
        values = np.asarray(values, dtype=float)
        low, high = self._scaled_bounds()
        scaled = np.where(self.log, np.log10(np.where(self.log, values, 1.0)), values)
        return (scaled - low) / (high - low)

    def as_dict(self, values: np.ndarray) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.names, values, strict=True)}
