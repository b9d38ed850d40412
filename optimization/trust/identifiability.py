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

*Not constrained* uses the profile's **flat fraction**: of the slices the search reached, the
share where the envelope is near-optimal (a near-optimal individual lies there). A parameter
the error does not depend on has a flat profile: near-optimal individuals turn up wherever the
search put it, so its flat fraction is that of a parameter drawn at random (close to 1 once
the near-optimal set has a few members per slice). A parameter the data determine has
near-optimal individuals in a narrow part of its range only. The flag is raised at a flat
fraction of at least ``FLAT`` when the near-optimal set has at least ``MIN_NEAR`` members
(fewer cannot tell a flat profile from a lucky one). What the flag says is *the error found
does not depend on it within the near-optimal tolerance*: an exactly inert parameter and one
whose effect stays below the tolerance look alike from the population (the local sensitivity
at the best, ``neuroptimus.optimization.trust.sensitivity``, tells them apart). The envelope's
rise (decades between its highest and lowest slice) is reported beside it: how much moving the
parameter alone across the searched range can worsen the best error found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

FACTOR = 2.0  # near-optimal: total ≤ FACTOR × best total
K_SD = 2.0  # near-optimal for a features target: every feature within K_SD standard deviations
FLAT = 0.5  # not constrained: near-optimal over at least this share of the searched range
MIN_NEAR = 5  # fewer near-optimal individuals: no "not constrained" flag
CORRELATED = 0.7  # |Pearson r| among the near-optimal individuals (unit cube) for the flag
MIN_CORRELATED = 10  # near-optimal individuals needed before a correlation is flagged
AT_BOUND = 0.01  # the best within this share of the range of a bound


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
    flat_fraction: float  # share of the searched slices where the profile is near-optimal
    envelope_rise: float  # decades between the profile's highest and lowest slice
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
                "flat_fraction": p.flat_fraction,
                "envelope_rise_decades": p.envelope_rise,
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
    features: bool = False,
    factor: float = FACTOR,
    k_sd: float = K_SD,
    bins: int | None = None,
) -> Identifiability:
    """The identifiability of ``parameters`` (specs with name, lower, upper, log) from the
    stored individuals: ``values`` (n × d, real units), ``unit`` (the same in the unit cube),
    ``total``, ``errors`` (n × k, unweighted) and ``status`` (0: ok)."""
    if factor <= 1:
        raise ValueError(f"the near-optimal factor must be above 1, not {factor:g}")
    total = np.asarray(total, dtype=float)
    usable = (np.asarray(status) == 0) & np.isfinite(total)
    rows = np.flatnonzero(usable)
    if not len(rows):
        raise ValueError("no successfully evaluated individual to analyse")
    values, unit, total = values[rows], np.clip(unit[rows], 0.0, 1.0), total[rows]
    errors = np.asarray(errors, dtype=float)[rows]
    near, threshold, rule = near_optimal(total, errors, features, factor, k_sd)
    bins = bins or int(np.clip(round(np.sqrt(len(rows))), 5, 30))
    best = int(np.argmin(total))
    correlation = _correlation(unit[near])
    names = [p["name"] for p in parameters]
    trusted = []
    for j, spec in enumerate(parameters):
        profile = _profile(spec, unit[:, j], total, near, bins)
        searched = profile.counts > 0
        flat = float(profile.near[searched].mean())
        enough = int(near.sum()) >= MIN_NEAR
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
                flat_fraction=flat,
                envelope_rise=_rise(profile.envelope[searched]),
                bound=_bound(unit[best, j]),
                correlated=tuple(partners),
                not_constrained=enough and flat >= FLAT,
                profile=profile,
            )
        )
    return Identifiability(
        parameters=trusted, best_total=float(total[best]), threshold=threshold, rule=rule,
        evaluated=len(rows), near_rows=rows[near], correlation=correlation,
    )  # fmt: skip


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


__all__ = ["FACTOR", "K_SD", "Identifiability", "ParameterTrust", "Profile", "analyse"]
