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
    acceptance: float  # mean acceptance fraction over the kept steps and every walker
    acceptance_per_walker: np.ndarray
    warnings: list[str]
    chain: np.ndarray  # (steps, walkers, d) real units, the whole stored chain
    level: float = LEVEL

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]


def summarise(
    names: list[str],
    positions: np.ndarray,
    accepted: np.ndarray,
    burn: int | None = None,
    thin: int = 1,
    level: float = LEVEL,
) -> PosteriorSummary:
    """Marginals, ``level`` central credible intervals and diagnostics of a chain
    (``positions``: steps × walkers × d, real units; ``accepted``: steps × walkers)."""
    from emcee.autocorr import integrated_time  # emcee is needed only once a chain is read

    steps, walkers, dimension = positions.shape
    burn = steps // 2 if burn is None else int(burn)
    if thin < 1:
        raise ChainError(f"--thin must be at least 1, got {thin}")
    if not 0 <= burn < steps:
        raise ChainError(
            f"the chain has {steps} steps: give a burn-in below that (--burn), got {burn}"
        )
    kept = positions[burn::thin]
    samples = kept.transpose(1, 0, 2).reshape(-1, dimension)
    with warnings.catch_warnings():  # the length check is ours, stated below
        warnings.simplefilter("ignore")
        tau = np.atleast_1d(integrated_time(positions[burn:], tol=0, quiet=True))
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
    used = steps - burn
    longest = float(np.nanmax(tau)) if np.isfinite(tau).any() else float("nan")
    if not np.isfinite(longest) or used < TRUSTED_LENGTH_TAUS * longest:
        notes.append(
            f"the chain after burn-in ({used} steps) is shorter than {TRUSTED_LENGTH_TAUS} "
            f"autocorrelation times ({TRUSTED_LENGTH_TAUS} × {longest:.3g} steps): the "
            "autocorrelation estimate and the intervals are rough; run more generations"
        )
    per_walker = accepted[burn:].mean(axis=0)
    acceptance = float(per_walker.mean())
    if not 0.1 <= acceptance <= 0.8:
        notes.append(
            f"mean acceptance fraction {acceptance:.2f} lies outside 0.1–0.8: the walkers "
            "may be stuck or the stretch scale unsuited"
        )
    return PosteriorSummary(
        marginals, samples, steps, walkers, burn, thin, acceptance, per_walker, notes,
        positions, level,
    )  # fmt: skip


__all__ = ["LEVEL", "ChainError", "Marginal", "PosteriorSummary", "summarise"]
