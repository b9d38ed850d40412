"""Which parameters the data determine, from the evaluated individuals alone (no simulation).

For each parameter, in the unit cube the algorithms search (log-scaled parameters uniform in
log10):

* the **profile**: the lower envelope of the total error over its range, i.e. in each of
  ``bins`` equal slices of the range the lowest total any stored individual reached with the
  parameter in that slice (the others free);
* the **near-optimal set**: the individuals whose total is within ``factor`` of the best (for
  a features target: every feature within ``k_sd`` standard deviations, i.e. every component
  ≤ ``k_sd``), with each parameter's range there and the correlations between parameters;
* flags: ``not constrained``, ``at lower bound`` / ``at upper bound``, ``correlated with …``.

*Not constrained* asks whether the error depends on the parameter at all. Looking along the
profile alone cannot tell: an optimizer samples its late, good individuals where it converged,
and couples the parameters it samples (CMA-ES's covariance), so a parameter with no effect
still shows low errors in one part of its range. The test therefore compares individuals
evaluated together (a generation; consecutive ones merged until a group has at least
max(10, d + 5) rows for d parameters) and takes out what the other parameters say about this
one: in each group the parameter's normalised value is regressed on the others' (linearly:
exact for CMA-ES's Gaussian samples, nothing to take out for random ones; a group too small
for the regression is only centred), and the residual, what the algorithm chose for this
parameter independently of the rest, is set against each individual's rank of total error in
its group (a quadratic in the residual, so a valley counts as well as a slope). If the error
does not depend on the parameter, that residual is independent of the error and shuffling it
within each group changes nothing; ``constraint_z`` is how many standard deviations (over
``PERMUTATIONS`` shuffles, fixed seed) the explained variation lies above the shuffles'
mean. Below ``Z`` the parameter is flagged *not constrained*: the stored errors do not show
that it matters. A parameter with no effect stays below ``Z`` about 98 times in 100 (the
shuffles' spread is close to normal);
with few individuals a weak parameter is flagged too (the population cannot tell it from no
effect), which the local sensitivity at the best
(``neuroptimus.optimization.trust.sensitivity``: an exactly inert parameter has a zero column)
settles. The profile's rise (decades between its highest and lowest slice) is reported
beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from neuroptimus.optimization.errors import UserError

FACTOR = 2.0  # near-optimal: total ≤ FACTOR × best total
K_SD = 2.0  # near-optimal for a features target: every feature within K_SD standard deviations
Z = 2.0  # not constrained: explained rank variation within Z SDs of the shuffles' (or below)
PERMUTATIONS = 100  # shuffles per parameter
MIN_INDIVIDUALS = 10  # fewer: no "not constrained" flag (too few distinct shuffles)
MAX_ROWS = 10_000  # the test uses an evenly spaced subset of larger populations
MIN_NEAR = 5  # the features rule needs this many individuals, else the factor applies
CORRELATED = 0.7  # |Pearson r| among the near-optimal individuals (unit cube) for the flag
MIN_CORRELATED = 10  # near-optimal individuals needed before a correlation is flagged
AT_BOUND = 0.01  # the best within this share of the range of a bound


class IdentifiabilityError(UserError, ValueError):
    """The individuals cannot be analysed (none succeeded, a factor that admits nothing)."""


@dataclass(frozen=True)
class Profile:
    """One parameter's lower-envelope profile over ``len(envelope)`` equal slices."""

    edges_unit: np.ndarray  # slice edges in the unit cube (bins + 1)
    centres: np.ndarray  # slice centres in real units
    envelope: np.ndarray  # lowest total in each slice (NaN: none evaluated there)
    counts: np.ndarray  # individuals per slice
    near: np.ndarray  # bool: a near-optimal individual lies in the slice


@dataclass(frozen=True)
class ParameterTrust:
    """What the population says about one parameter."""

    name: str
    best: float
    near_low: float  # range among the near-optimal individuals (real units)
    near_high: float
    near_width: float  # that range as a share of the bounds (unit cube)
    envelope_rise: float  # decades between the profile's highest and lowest slice
    constraint_z: float  # dependence of the error on it, in SDs above no effect (see above)
    bound: str | None  # "lower" / "upper" when the best sits at a bound
    correlated: tuple[tuple[str, float], ...]  # (other parameter, r) above CORRELATED
    not_constrained: bool
    profile: Profile = field(repr=False)

    @property
    def flags(self) -> list[str]:
        flags = ["not constrained"] if self.not_constrained else []
        if self.bound:
            flags.append(f"at {self.bound} bound")
        flags += [f"correlated with {other} (r = {r:+.2f})" for other, r in self.correlated]
        return flags


@dataclass(frozen=True)
class Identifiability:
    """The whole analysis: per parameter, and the near-optimal set it rests on."""

    parameters: list[ParameterTrust]
    best_total: float
    threshold: float | None  # the near-optimal total (None for the features rule)
    rule: str  # the near-optimal rule, in words
    evaluated: int  # individuals used (status ok, finite total)
    near_rows: np.ndarray  # their store rows
    correlation: np.ndarray  # d × d among the near-optimal individuals (NaN: undefined)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def table(self) -> list[dict[str, object]]:
        """One row per parameter: what the CSV holds."""
        return [
            {
                "parameter": p.name,
                "best": p.best,
                "near_optimal_low": p.near_low,
                "near_optimal_high": p.near_high,
                "near_optimal_width": p.near_width,
                "envelope_rise_decades": p.envelope_rise,
                "constraint_z": p.constraint_z,
                "flags": "; ".join(p.flags),
            }
            for p in self.parameters
        ]


def near_optimal(
    total: np.ndarray,
    errors: np.ndarray,
    features: bool,
    factor: float = FACTOR,
    k_sd: float = K_SD,
) -> tuple[np.ndarray, float | None, str]:
    """(mask, threshold, rule in words) of the near-optimal individuals among ``total``
    (finite totals only). A features target uses ``k_sd`` when at least MIN_NEAR individuals
    meet it, else falls back to the factor (and says so)."""
    best = float(np.min(total))
    if features:
        mask = np.all(errors <= k_sd, axis=1)
        if mask.sum() >= MIN_NEAR:
            return mask, None, f"every feature within {k_sd:g} standard deviations"
    # a best of exactly 0 (a surrogate hit exactly) would admit nothing but exact hits
    base = best if best > 0 else float(np.min(total[total > 0], initial=np.inf))
    threshold = factor * base if np.isfinite(base) else 0.0
    rule = f"total ≤ {factor:g} × best ({threshold:.4g})"
    if features:
        rule += f"; fewer than {MIN_NEAR} individuals have every feature within {k_sd:g} SD"
    return total <= threshold, threshold, rule


def analyse(
    parameters: Sequence[dict],
    values: np.ndarray,
    unit: np.ndarray,
    total: np.ndarray,
    errors: np.ndarray,
    status: np.ndarray,
    generation: np.ndarray | None = None,
    features: bool = False,
    factor: float = FACTOR,
    k_sd: float = K_SD,
    bins: int | None = None,
) -> Identifiability:
    """The identifiability of ``parameters`` (specs with name, lower, upper, log) from the
    stored individuals: ``values`` (n × d, real units), ``unit`` (the same in the unit cube),
    ``total``, ``errors`` (n × k, unweighted), ``status`` (0: ok) and ``generation`` (None:
    all evaluated at once)."""
    if factor <= 1:
        raise IdentifiabilityError(f"the near-optimal factor must be above 1, not {factor:g}")
    total = np.asarray(total, dtype=float)
    usable = (np.asarray(status) == 0) & np.isfinite(total)
    rows = np.flatnonzero(usable)
    if not len(rows):
        raise IdentifiabilityError(
            "no successfully evaluated individual to analyse: every stored evaluation failed"
        )
    generation = np.zeros(len(total)) if generation is None else np.asarray(generation)
    values, unit, total = values[rows], np.clip(unit[rows], 0.0, 1.0), total[rows]
    errors = np.asarray(errors, dtype=float)[rows]
    near, threshold, rule = near_optimal(total, errors, features, factor, k_sd)
    bins = bins or int(np.clip(round(np.sqrt(len(rows))), 5, 30))
    best = int(np.argmin(total))
    correlation = _correlation(unit[near])
    names = [p["name"] for p in parameters]
    dependence = DependenceTest(unit, total, generation[rows])
    trusted = []
    for j, spec in enumerate(parameters):
        profile = _profile(spec, unit[:, j], total, near, bins)
        searched = profile.counts > 0
        z = dependence.z(j)
        partners = []
        if near.sum() >= MIN_CORRELATED:
            for i, other in enumerate(names):
                r = correlation[j, i]
                if i != j and np.isfinite(r) and abs(r) >= CORRELATED:
                    partners.append((other, float(r)))
        trusted.append(
            ParameterTrust(
                name=spec["name"],
                best=float(values[best, j]),
                near_low=float(values[near, j].min()),
                near_high=float(values[near, j].max()),
                near_width=float(np.ptp(unit[near, j])),
                envelope_rise=_rise(profile.envelope[searched]),
                constraint_z=z,
                bound=_bound(unit[best, j]),
                correlated=tuple(partners),
                not_constrained=len(rows) >= MIN_INDIVIDUALS and z < Z,
                profile=profile,
            )
        )
    return Identifiability(
        parameters=trusted, best_total=float(total[best]), threshold=threshold, rule=rule,
        evaluated=len(rows), near_rows=rows[near], correlation=correlation,
    )  # fmt: skip


class DependenceTest:
    """Whether the error depends on each parameter, given the others (see the module's
    documentation): ``z(j)``."""

    def __init__(self, unit: np.ndarray, total: np.ndarray, generation: np.ndarray):
        if len(total) > MAX_ROWS:  # evenly spaced rows keep every stage of the run
            keep = np.linspace(0, len(total) - 1, MAX_ROWS).astype(int)
            unit, total, generation = unit[keep], total[keep], generation[keep]
        self.unit = unit
        group = _groups(generation, max(10, unit.shape[1] + 5))
        self.groups = [np.flatnonzero(group == g) for g in range(int(group.max()) + 1)]
        self.rank = []  # per group: the centred rank quantile of each row's total
        for rows in self.groups:
            order = np.argsort(np.argsort(total[rows], kind="stable"), kind="stable")
            self.rank.append((order + 0.5) / len(rows) - 0.5)

    def z(self, j: int) -> float:
        """Explained rank variation of parameter ``j``'s residual against that of its
        residual shuffled within the groups (and taken out of the others again, so that both
        have the degrees of freedom the regression leaves)."""
        rng = np.random.default_rng(j)  # fixed: the same store gives the same table
        explained = np.zeros(PERMUTATIONS + 1)  # [observed, shuffles...]
        for rows, rank in zip(self.groups, self.rank, strict=True):
            design = _design(self.unit[rows], j)
            projection = np.eye(len(rows)) - design @ np.linalg.pinv(design)
            residual = projection @ self.unit[rows, j]
            orders = np.argsort(rng.random((PERMUTATIONS, len(rows))), axis=1)
            columns = np.column_stack([residual, projection @ residual[orders].T])
            explained += _explained(columns, rank)
        observed, shuffled = explained[0], explained[1:]
        spread = shuffled.std()
        return float((observed - shuffled.mean()) / spread) if spread > 1e-15 else 0.0


def _explained(columns: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Per column x (standardised): the variation of ``rank`` that a least-squares fit on x
    and x² (centred) explains."""
    spread = columns.std(axis=0)
    x = columns / np.where(spread > 1e-12, spread, np.inf)
    square = x**2 - (x**2).mean(axis=0)
    sxx, sxq, sqq = (x * x).sum(0), (x * square).sum(0), (square * square).sum(0)
    a, b = x.T @ rank, square.T @ rank
    det = sxx * sqq - sxq**2
    usable = det > 1e-12 * np.maximum(sxx * sqq, 1e-300)
    fitted = np.zeros(columns.shape[1])
    fitted[usable] = ((sqq * a * a - 2 * sxq * a * b + sxx * b * b) / np.where(usable, det, 1))[
        usable
    ]
    return fitted


def _design(unit: np.ndarray, j: int) -> np.ndarray:
    """The regressors of column ``j``: a constant and the other columns (the constant alone
    when the rows are too few to regress on every other parameter)."""
    m = len(unit)
    if m <= unit.shape[1] + 1:
        return np.ones((m, 1))
    return np.column_stack([np.ones(m), np.delete(unit, j, axis=1)])


def _groups(generation: np.ndarray, size: int) -> np.ndarray:
    """A group number per row: its generation, consecutive generations merged (in order)
    until each group has at least ``size`` rows (a smaller last one joins the one before)."""
    values, inverse, counts = np.unique(generation, return_inverse=True, return_counts=True)
    label = np.zeros(len(values), dtype=int)
    current, filled = 0, 0
    for i, count in enumerate(counts):
        label[i] = current
        filled += count
        if filled >= size:
            current, filled = current + 1, 0
    if 0 < filled < size and current > 0:
        label[label == current] = current - 1
    return label[inverse]


def _profile(spec: dict, u: np.ndarray, total: np.ndarray, near: np.ndarray, bins: int):
    edges = np.linspace(0.0, 1.0, bins + 1)
    slot = np.minimum((u * bins).astype(int), bins - 1)
    envelope = np.full(bins, np.inf)
    np.minimum.at(envelope, slot, total)
    counts = np.bincount(slot, minlength=bins)
    hit = np.bincount(slot[near], minlength=bins) > 0
    envelope[counts == 0] = np.nan
    return Profile(
        edges_unit=edges, centres=_to_real(spec, (edges[:-1] + edges[1:]) / 2),
        envelope=envelope, counts=counts, near=hit,
    )  # fmt: skip


def _to_real(spec: dict, u: np.ndarray) -> np.ndarray:
    low, high = float(spec["lower"]), float(spec["upper"])
    if spec.get("log"):
        return 10 ** (np.log10(low) + u * (np.log10(high) - np.log10(low)))
    return low + u * (high - low)


def _rise(envelope: np.ndarray) -> float:
    """Decades between the highest and lowest envelope value (a zero counts as a tenth of the
    lowest positive one)."""
    if not len(envelope) or envelope.max() <= 0:
        return 0.0
    positive = envelope[envelope > 0]
    floor = positive.min() if len(positive) == len(envelope) else positive.min() / 10
    return float(np.log10(envelope.max() / floor))


def _bound(u: float) -> str | None:
    if u <= AT_BOUND:
        return "lower"
    if u >= 1 - AT_BOUND:
        return "upper"
    return None


def _correlation(unit: np.ndarray) -> np.ndarray:
    """Pearson correlations of the columns; NaN where a column does not vary (or < 3 rows)."""
    d = unit.shape[1]
    if len(unit) < 3:
        return np.full((d, d), np.nan)
    centred = unit - unit.mean(axis=0)
    scale = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (centred.T @ centred) / np.outer(scale, scale)
    r[:, scale == 0] = np.nan
    r[scale == 0, :] = np.nan
    return np.clip(r, -1.0, 1.0)


__all__ = [
    "FACTOR", "K_SD", "Identifiability", "IdentifiabilityError", "ParameterTrust", "Profile",
    "analyse",
]  # fmt: skip
