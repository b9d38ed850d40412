"""The log-likelihood a posterior sampler reads from a problem's error components.

Two kinds of problem have one, because their costs are (squared) residuals of a stated noise:

* feature z-scores (``target.features`` or e-model ``protocols``): every component is
  ``|value - mean| / std``, so ``log L = -1/2 Σ z²``;
* trace targets scored by ``MSE`` alone, with the trace noise SD given as the sampler's
  ``noise_sd_mV`` setting: ``MSE = mean(r²) / range(target)²`` over the ``N`` samples of a
  sweep, so ``log L = -1/2 Σ r² / σ² = -1/2 Σ_sweeps N range² MSE / σ²`` (a target with zero
  range is not divided, as the cost does).

The sampler is told the *weighted* components (what every algorithm is told); the
coefficients undo the weights, so weights choose what an optimizer stresses but never change
the likelihood. A component of weight 0 is left out. The prior is uniform in the unit cube of
the parameter space: uniform within the bounds, log-uniform for log-scaled parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroptimus.optimization.algorithms.emcee_adapter import NOISE_SETTING
from neuroptimus.optimization.errors import UserError

if TYPE_CHECKING:
    from neuroptimus.optimization.problem.spec import ProblemSpec


class NoLikelihoodError(UserError, ValueError):
    """The problem's costs are not residuals of a stated noise: no posterior to sample."""


@dataclass(frozen=True)
class Likelihood:
    """``log L = -1/2 Σ coefficient · error^power`` over the told (weighted) components."""

    kind: str  # "feature z-scores" or "trace noise SD 0.5 mV"
    coefficients: np.ndarray  # one per component (0: left out)
    powers: np.ndarray  # 2 for a z-score, 1 for an MSE

    def __call__(self, errors: np.ndarray) -> np.ndarray:
        """The log-likelihood of each row of told errors, shape (n,)."""
        errors = np.atleast_2d(np.asarray(errors, dtype=float))
        terms = np.where(self.coefficients > 0, self.coefficients * errors**self.powers, 0.0)
        return -0.5 * terms.sum(axis=1)


def refusal(spec: ProblemSpec, noise_sd_mV: Any) -> str | None:
    """Why the problem has no likelihood to sample (one sentence naming what to change), or
    None when it has one."""
    rules = spec.stopping
    if rules.error_target is not None or rules.stagnation_generations is not None:
        return (
            "a posterior sample runs its whole budget: remove stopping.error_target and "
            "stopping.stagnation_generations"
        )
    zscores = spec.protocols is not None or (
        spec.target is not None and spec.target.features is not None
    )
    if zscores:
        if noise_sd_mV is not None:
            return (
                f"setting {NOISE_SETTING!r} is for trace targets; feature targets carry their "
                "own SD: remove the setting"
            )
        return None
    if noise_sd_mV is None:
        return (
            "posterior sampling needs costs that are residuals of a known noise: give the "
            f"trace noise SD as the algorithm setting {NOISE_SETTING} (mV), or use feature "
            "targets (target.features or protocols)"
        )
    if not float(noise_sd_mV) > 0:
        return f"setting {NOISE_SETTING!r} must be a positive SD in mV, got {noise_sd_mV!r}"
    others = sorted({t.name for t in spec.costs.functions if t.weight > 0 and t.name != "MSE"})
    if others:
        return (
            f"a trace noise SD gives a likelihood for MSE only: set the weight of "
            f"{', '.join(others)} to 0 or remove them"
        )
    return None


def likelihood_of(problem: Any, noise_sd_mV: Any = None) -> Likelihood:
    """The likelihood of an evaluation ``Problem`` (its ``spec`` and ``objective``);
    NoLikelihoodError says what to change when it has none."""
    reason = refusal(problem.spec, noise_sd_mV)
    if reason is not None:
        raise NoLikelihoodError(reason)
    objective = problem.objective
    weights = np.asarray(objective.weights, dtype=float)
    used = weights > 0
    safe = np.where(used, weights, 1.0)
    if noise_sd_mV is None:  # z-scores: told w·z, so (w·z)² / w² = z²
        coefficients = np.where(used, 1.0 / safe**2, 0.0)
        return Likelihood("feature z-scores", coefficients, np.full(len(weights), 2.0))
    sigma = float(noise_sd_mV)
    per_sweep = []
    for target in objective.targets:  # told w·MSE; Σ r² = N range² MSE
        value_range = float(np.ptp(target))
        per_sweep.append(len(target) * (value_range**2 if value_range != 0 else 1.0))
    scale = np.repeat(per_sweep, len(objective.functions)) / sigma**2
    coefficients = np.where(used, scale / safe, 0.0)
    return Likelihood(f"trace noise SD {sigma:g} mV", coefficients, np.ones(len(weights)))


__all__ = ["NOISE_SETTING", "Likelihood", "NoLikelihoodError", "likelihood_of", "refusal"]
