"""Posterior sampling with emcee's affine-invariant ensemble (stretch) move, behind ask/tell.

emcee moves an ensemble of walkers in two halves (its red-blue split): each walker of one
half proposes a point on the line through a random walker of the other half, so one half's
proposals are one batch, evaluated in parallel. Here the ensemble has ``2 × population``
walkers and every generation evaluates one half's proposals (``population`` points, fewer
when some fall outside the unit cube: their prior is 0, so they are rejected unevaluated).
The first two generations evaluate the initial ensemble (drawn from the prior, or around a
warm start's best point). Proposals come from ``emcee.moves.StretchMove.get_proposal``; the
acceptance rule is emcee's (log-ratio plus ``(d - 1) log z`` against ``log U``).

The target density is the problem's likelihood (``neuroptimus.optimization.scoring.likelihood``)
times a prior uniform in the unit cube. After each full step the walkers' positions (unit
cube), log-probabilities and acceptances are handed to the run store as one row of its
``chain/`` group (``store_rows``), so the chain is read back without simulating anything.
The state holds the walkers, the pending half and the ``RandomState``, so a resumed run goes on
with the same draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.base import Algorithm, AlgorithmInfo
from neuroptimus.optimization.algorithms.common import (
    check_sizes,
    checked_results,
    describe,
    library_errors,
)
from neuroptimus.optimization.algorithms.start import StartingPoint

CHAIN_GROUP = "chain"
# a warm start's walkers: a Gaussian ball around the best point, this wide at most (cube units)
MAX_START_SCALE = 0.05


def _stretch_move(scale: float) -> Any:
    from emcee.moves import StretchMove  # noqa: PLC0415 (lazy: emcee loads only when a sampler is created)

    return StretchMove(a=scale)


NOISE_SETTING = "noise_sd_mV"  # the trace noise SD, for trace targets (see scoring.likelihood)


class EnsembleSampler(Algorithm):
    """emcee's ensemble sampler, one half of ``2 × population`` walkers per ``ask``.

    Settings: ``noise_sd_mV`` — the trace noise SD (mV) that makes MSE a likelihood (trace
    targets only; feature targets carry their own SD); ``stretch`` — the stretch move's scale
    ``a`` (emcee's default 2). The runner binds the problem's likelihood (``bind_likelihood``);
    used alone, the sampler takes the told errors as z-scores (``log L = -1/2 Σ e²``).
    """

    info = AlgorithmInfo(
        name="emcee",
        label="Ensemble MCMC (emcee)",
        package="emcee",
        multi_objective=False,
        parallel=True,
        defaults={NOISE_SETTING: None, "stretch": 2.0},
        samples_posterior=True,
        summary="Samples the posterior (likelihood of the feature z-scores or of a stated "
        "trace noise, prior uniform in the bounds); 2 × population walkers, one half per "
        "generation.",
    )

    def __init__(self, dimension: int, population: int, seed: int, **settings: Any) -> None:
        super().__init__(dimension, population, seed, **settings)
        check_sizes(self.info, dimension, population)
        if population < max(2, dimension):
            raise ValueError(
                f"{describe(self.info)} needs a population of at least max(2, number of "
                f"parameters) = {max(2, dimension)} (2 × population walkers), got {population}"
            )
        if not float(self.settings["stretch"]) > 1:
            raise ValueError(f"{describe(self.info)}: setting 'stretch' must be above 1")
        self.walkers = 2 * population
        self._rng = np.random.RandomState(seed)  # emcee's moves draw from a RandomState
        self._positions = self._rng.random_sample((self.walkers, dimension))
        self._log_prob = np.full(self.walkers, np.nan)
        self._likelihood: Callable[[np.ndarray], np.ndarray] | None = None
        self._initialised = 0  # initial halves evaluated (0, 1, 2)
        self._half = 0  # the half moving in the current step
        self._split: np.ndarray | None = None  # walker -> half, drawn per step
        self._proposal: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._accepted = np.zeros(self.walkers, dtype=bool)  # in the current step
        self.steps = 0  # full steps done
        self._rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # not yet stored
        self._asked: np.ndarray | None = None

    # -- the problem ------------------------------------------------------------------------
    def bind_likelihood(self, likelihood: Callable[[np.ndarray], np.ndarray]) -> None:
        self._likelihood = likelihood

    def start_from(self, start: StartingPoint) -> str | None:
        """The initial walkers in a Gaussian ball around the best point, as wide as the
        spread of the best points (at most MAX_START_SCALE), clipped to the cube."""
        spread = start.spread(max(2, self.population))
        scale = MAX_START_SCALE if spread is None else min(max(spread, 1e-4), MAX_START_SCALE)
        ball = start.best + scale * self._rng.standard_normal((self.walkers, self.dimension))
        self._positions = np.clip(ball, 0.0, 1.0)
        return None

    # -- ask/tell ---------------------------------------------------------------------------
    def ask(self) -> np.ndarray:
        with library_errors(self.info, "ask()"):
            if self._initialised < 2:
                self._asked = self._positions[self._members(self._initialised)].copy()
                return self._asked.copy()
            while True:  # a half whose proposals all leave the cube moves unevaluated
                self._propose()
                inside = self._proposal[2]
                if inside.any():
                    break
                self._settle(np.full(len(inside), -np.inf))
            self._asked = self._proposal[0][inside].copy()
        return self._asked.copy()

    def tell(self, points: np.ndarray, errors: np.ndarray, totals: np.ndarray) -> None:
        errors, _ = checked_results(self.info, self._asked, points, errors, totals)
        if self._likelihood is None:  # used alone: the told errors taken as z-scores
            log_prob = -0.5 * (errors**2).sum(axis=1)
        else:
            log_prob = self._likelihood(errors)
        if self._initialised < 2:
            self._log_prob[self._members(self._initialised)] = log_prob
            self._initialised += 1
        else:
            inside = self._proposal[2]
            new = np.full(len(inside), -np.inf)
            new[inside] = log_prob
            self._settle(new)
        self._asked = None

    def _members(self, half: int) -> np.ndarray:
        """Walkers of the initial ensemble evaluated in initial generation ``half``."""
        return np.arange(self.walkers) % 2 == half

    def _propose(self) -> None:
        """The current half's proposals: (points, log factors, inside the cube)."""
        if self._half == 0:  # emcee's randomized split, drawn once per step
            self._split = np.arange(self.walkers) % 2
            self._rng.shuffle(self._split)
        moving = self._positions[self._split == self._half]
        others = [self._positions[self._split != self._half]]
        move = _stretch_move(float(self.settings["stretch"]))
        points, factors = move.get_proposal(moving, others, self._rng)
        inside = np.all((points >= 0.0) & (points <= 1.0), axis=1)
        self._proposal = (points, factors, inside)

    def _settle(self, new_log_prob: np.ndarray) -> None:
        """Accept or reject the current half's proposals (emcee's rule), then move on."""
        points, factors, _ = self._proposal
        members = np.flatnonzero(self._split == self._half)
        for i, walker in enumerate(members):
            difference = factors[i] + new_log_prob[i] - self._log_prob[walker]
            if difference > np.log(self._rng.rand()):
                self._positions[walker] = points[i]
                self._log_prob[walker] = new_log_prob[i]
                self._accepted[walker] = True
        self._proposal = None
        self._half = 1 - self._half
        if self._half == 0:  # both halves moved: one step of the chain
            self._rows.append(
                (self._positions.copy(), self._log_prob.copy(), self._accepted.copy())
            )
            self._accepted[:] = False
            self.steps += 1

    # -- what the store keeps ---------------------------------------------------------------
    def store_rows(self) -> tuple[str, int, dict[str, np.ndarray]] | None:
        """The chain's steps since the last call: ``positions`` (steps, walkers, d; unit
        cube), ``log_probability`` (steps, walkers), ``accepted`` (steps, walkers)."""
        if not self._rows:
            return None
        first = self.steps - len(self._rows)
        names = ("positions", "log_probability", "accepted")
        arrays = {name: np.array([row[i] for row in self._rows]) for i, name in enumerate(names)}
        self._rows = []
        return CHAIN_GROUP, first, arrays

    def store_attributes(self) -> dict[str, Any]:
        return {"chain_steps": self.steps, "chain_walkers": self.walkers}


ADAPTERS = (EnsembleSampler,)
