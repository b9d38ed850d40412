"""What a sampled chain says: marginal intervals, autocorrelation times and acceptance.

The chain is what the ``emcee`` algorithm stores (``chain/`` in the run store): the walkers'
positions after every step, in real units here (steps, walkers, d). The first ``burn`` steps
are dropped (default: half the chain, emcee's usual advice when nothing better is known) and
every ``thin``-th step kept. Numbers only: no store access, no figures.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from neuroptimus.optimization.errors import UserError

LEVEL = 0.95
# emcee's advice: an autocorrelation estimate needs a chain of about 50 τ to be trusted
TRUSTED_LENGTH_TAUS = 50
# A walker whose median log-probability after burn-in lies more than STRAGGLER_SDS × √(d/2)
# below the median walker's has not reached the posterior: stuck in a corner of the bounds or a
# small local mode, or still on its way in. Under the posterior, log p falls χ²_d / 2 below its
# peak (SD √(d/2)), and a walker's median over even ten independent steps varies by less than
# half that SD, so such a gap does not happen to a walker that samples it.
STRAGGLER_SDS = 5.0


class ChainError(UserError, ValueError):
    """The chain cannot be summarised as asked (too short for the burn-in, no chain)."""


@dataclass(frozen=True)
class Marginal:
    """One parameter's posterior marginal (real units)."""

    name: str
    median: float
    mean: float
    sd: float
    low: float  # the central LEVEL interval
    high: float
    tau_steps: float  # integrated autocorrelation time (steps)


@dataclass(frozen=True)
class PosteriorSummary:
    parameters: list[Marginal]
    samples: np.ndarray  # (n, d) real units, after burn-in and thinning (walker-major)
    steps: int  # steps in the stored chain
    walkers: int
    burn: int
    thin: int
    acceptance: float  # mean acceptance fraction over the kept steps and walkers
    acceptance_per_walker: np.ndarray  # every walker's, after burn-in
    stuck: np.ndarray  # walkers left out (see stuck_walkers)
    warnings: list[str]
    chain: np.ndarray  # (steps, walkers, d) real units, the whole stored chain
    level: float = LEVEL

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]


def stuck_walkers(log_probability: np.ndarray, dimension: int) -> np.ndarray:
    """Indices of the walkers far below the others, stuck or still burning in
    (``log_probability``: steps × walkers, after burn-in)."""
    medians = np.median(log_probability, axis=0)
    finite = np.isfinite(medians)
    if not finite.any():
        return np.empty(0, dtype=int)
    typical = np.median(medians[finite])
    gap = STRAGGLER_SDS * np.sqrt(dimension / 2)
    return np.flatnonzero(~finite | (medians < typical - gap))


def summarise(
    names: list[str],
    positions: np.ndarray,
    accepted: np.ndarray,
    log_probability: np.ndarray,
    burn: int | None = None,
    thin: int = 1,
    level: float = LEVEL,
) -> PosteriorSummary:
    """Marginals, ``level`` central credible intervals and diagnostics of a chain
    (``positions``: steps × walkers × d, real units; ``accepted`` and ``log_probability``:
    steps × walkers). Stuck walkers (``stuck_walkers``) are left out, and a warning says so."""
    from emcee.autocorr import integrated_time  # noqa: PLC0415 (lazy: emcee loads only once a chain is read)

    steps, walkers, dimension = positions.shape
    burn = steps // 2 if burn is None else int(burn)
    if thin < 1:
        raise ChainError(f"--thin must be at least 1, got {thin}")
    if not 0 <= burn < steps:
        raise ChainError(
            f"the chain has {steps} steps: give a burn-in below that (--burn), got {burn}"
        )
    stuck = stuck_walkers(log_probability[burn:], dimension)
    if len(stuck) == walkers:
        raise ChainError("every walker is stuck: give a longer chain or a later --burn")
    moving = np.setdiff1d(np.arange(walkers), stuck)
    kept = positions[burn::thin][:, moving]
    samples = kept.transpose(1, 0, 2).reshape(-1, dimension)
    with warnings.catch_warnings():  # the length check is ours, stated below
        warnings.simplefilter("ignore")
        tau = np.atleast_1d(integrated_time(positions[burn:, moving], tol=0, quiet=True))
    tail = (1 - level) / 2
    marginals = [
        Marginal(
            name,
            float(np.median(samples[:, j])),
            float(samples[:, j].mean()),
            float(samples[:, j].std(ddof=1)) if len(samples) > 1 else 0.0,
            float(np.quantile(samples[:, j], tail)),
            float(np.quantile(samples[:, j], 1 - tail)),
            float(tau[j]),
        )
        for j, name in enumerate(names)
    ]
    notes = []
    if len(stuck):
        below = np.median(log_probability[burn:], axis=0)
        gap = float(np.median(below[moving]) - below[stuck].max())
        rate = float(accepted[burn:, stuck].mean())
        notes.append(
            f"{len(stuck)} of {walkers} walkers (walker {', '.join(str(w) for w in stuck)}) "
            f"at least {gap:.0f} below the others' log-probability (acceptance {rate:.2f}): "
            "stuck where the posterior has no mass, or still burning in; left out of the "
            "samples (a later --burn, a longer run or walkers started near a fit with "
            "--warm-start avoid it)"
        )
    used = steps - burn
    longest = float(np.nanmax(tau)) if np.isfinite(tau).any() else float("nan")
    if not np.isfinite(longest) or used < TRUSTED_LENGTH_TAUS * longest:
        notes.append(
            f"the chain after burn-in ({used} steps) is shorter than {TRUSTED_LENGTH_TAUS} "
            f"autocorrelation times ({TRUSTED_LENGTH_TAUS} × {longest:.3g} steps): the "
            "autocorrelation estimate and the intervals are rough; run more generations"
        )
    per_walker = accepted[burn:].mean(axis=0)
    acceptance = float(per_walker[moving].mean())
    if not 0.1 <= acceptance <= 0.8:
        notes.append(
            f"mean acceptance fraction {acceptance:.2f} lies outside 0.1–0.8: the walkers "
            "may be stuck or the stretch scale unsuited"
        )
    return PosteriorSummary(
        marginals, samples, steps, walkers, burn, thin, acceptance, per_walker, stuck, notes,
        positions, level,
    )  # fmt: skip


__all__ = ["LEVEL", "ChainError", "Marginal", "PosteriorSummary", "stuck_walkers", "summarise"]
