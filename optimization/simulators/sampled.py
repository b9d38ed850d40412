"""Traces a model hands over as plain arrays (python and external models): checked against
the protocol and sampled down to the rate the costs compare at."""

from __future__ import annotations

import numpy as np

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.base import Trace


class TraceError(UserError, ValueError):
    """A model returned or wrote something that is not a usable trace (one line, names the
    file and what to fix)."""


def step_factor(spec: ProblemSpec) -> int:
    """Simulation samples per compared sample (the spec checked that it is an integer)."""
    return max(1, round(1000 / (spec.protocol.dt_ms * spec.comparison_rate_hz)))


def expected_samples(spec: ProblemSpec) -> int:
    """Samples of a sweep recorded every dt_ms from 0 to tstop_ms, both ends included."""
    return int(round(spec.protocol.tstop_ms / spec.protocol.dt_ms)) + 1


def as_trace(spec: ProblemSpec, values, spike_times_ms, where: str, sweep: int) -> Trace:
    """A model's sweep as a Trace at the comparison rate; ``where`` names the model file or
    output file in messages. tstop/dt + 1 samples are expected (tstop/dt also accepted: a
    recorder that skips t = 0 or t = tstop)."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TraceError(f"{where}: sweep {sweep}: the trace is not an array of numbers") from None
    if array.ndim != 1:
        raise TraceError(
            f"{where}: sweep {sweep}: the trace must be one-dimensional, got shape {array.shape}"
        )
    expected = expected_samples(spec)
    if len(array) not in (expected, expected - 1):
        protocol = spec.protocol
        raise TraceError(
            f"{where}: sweep {sweep}: the trace has {len(array)} samples, expected {expected} "
            f"(one every dt_ms {protocol.dt_ms:g} from 0 to tstop_ms {protocol.tstop_ms:g}): "
            "fix the model's recording or the protocol"
        )
    spikes = None
    if spike_times_ms is not None:
        try:
            spikes = np.asarray(spike_times_ms, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise TraceError(
                f"{where}: sweep {sweep}: the spike times are not numbers (ms)"
            ) from None
    factor = step_factor(spec)
    dt = spec.protocol.dt_ms
    return Trace(array[::factor].copy(), dt * factor, spike_times_ms=spikes)


def check_point(spec: ProblemSpec) -> dict[str, float]:
    """The values a setup check simulates: the true values, else the middle of the bounds."""
    return {
        p.name: p.true_value if p.true_value is not None else (p.lower + p.upper) / 2
        for p in spec.parameters
    }
