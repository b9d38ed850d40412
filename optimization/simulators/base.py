"""Simulator interface: build the model once per process, then run it many times."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neuroptimus.optimization.errors import UserError

if TYPE_CHECKING:
    from neuroptimus.optimization.problem.spec import ProblemSpec


class SimulationTimeout(UserError, RuntimeError):
    """A simulation ran past its per-evaluation deadline."""


class ModelError(UserError, RuntimeError):
    """The user's model cannot be built (bad hoc file, unknown section or parameter …)."""


class VectorError(UserError, RuntimeError):
    """One parameter vector cannot be applied to the model (a hoc assignment NEURON refuses,
    a user function that raises, a NaN): that individual fails, the run goes on."""


@dataclass(frozen=True)
class Trace:
    """One recorded sweep sampled every ``dt_ms`` from ``t0_ms``."""

    values: np.ndarray
    dt_ms: float
    t0_ms: float = 0.0
    spike_times_ms: np.ndarray | None = None  # when the simulator reports spikes itself

    @property
    def time_ms(self) -> np.ndarray:
        return self.t0_ms + self.dt_ms * np.arange(len(self.values))


class Simulator(abc.ABC):
    """Runs one model. ``setup`` is called once per worker process before the first ``run``.

    ``ruined``: why this process can run the model no more, set by the evaluation that
    changed it beyond repair (a NEURON section its user function deleted; that individual
    fails). The evaluations left need a fresh process: a Dask worker retires and is replaced
    (``retirement``); ``run`` raises ModelError meanwhile."""

    ruined: str | None = None

    def __init__(self, spec: ProblemSpec) -> None:
        self.spec = spec
        self._ready = False

    def __getstate__(self) -> dict:
        # a built model belongs to its process: a copy sent elsewhere builds its own
        return {"spec": self.spec, "_ready": False}

    @abc.abstractmethod
    def setup(self) -> None:
        """Load mechanisms and build the model (expensive, once per process)."""

    @abc.abstractmethod
    def run(self, parameters: dict[str, float], deadline: float | None = None) -> list[Trace]:
        """Simulate every sweep with these parameter values (real units).

        ``deadline`` is a ``time.monotonic()`` value; past it, raise SimulationTimeout.
        """
