"""What the generic algorithm tests expect of each registered algorithm, one file per family.

Every registered algorithm needs an entry (a test checks it), so a new adapter cannot skip the
generic tests of test_algorithms.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass(frozen=True)
class Facts:
    # Per analytic problem (see test_algorithms.py): the median over seeds 1-3 of the best
    # total is at least this many times below random search's median with the same
    # evaluations and seeds; None: the algorithm does not beat random search clearly at this
    # budget (the test is then an expected failure, strict: it says so when that changes).
    beats_random: dict[str, float | None]
    # fail(monkeypatch, algorithm): make the optimizer package raise RuntimeError("boom").
    fail: Callable[[Any, Any], None]
    # Settings for the restore test (e.g. a start point); {} for the defaults.
    restore_settings: dict[str, Any] = field(default_factory=dict)
    # Deterministic methods ignore the seed.
    seed_independent: bool = False
    # Batch size of each ask: the whole population, one point, anything from 1 to the
    # population, a point with its d finite-difference neighbours, or (serial methods run as
    # islands) from 1 to the islands' populations together.
    batch: Literal["population", "one", "at most population", "dimension + 1", "islands"] = (
        "population"
    )
    # Settings of the generic tests (serial methods: fewer islands for their small budgets).
    settings: dict[str, Any] = field(default_factory=dict)
    # Population used by the generic tests (some algorithms need more individuals).
    population: int = 10
    # Fewer evaluations than these budgets are fine for methods that stop by themselves.
    may_stop_early: bool = False


def batch_ok(facts: Facts, points: np.ndarray, population: int) -> bool:
    n = len(points)
    if facts.batch == "population":
        return n == population
    if facts.batch == "one":
        return n == 1
    if facts.batch == "dimension + 1":  # a point and its finite-difference neighbours
        return n == points.shape[1] + 1
    if facts.batch == "islands":  # a point (or the first population) of each live island
        return 1 <= n <= facts.settings["islands"] * population
    return 1 <= n <= population


def _merge() -> dict[str, Facts]:
    from . import bluepyopt, core, inspyred, pygmo, sampling, scipy_extra, surrogate

    merged: dict[str, Facts] = {}
    for family in (core, scipy_extra, inspyred, pygmo, bluepyopt, surrogate, sampling):
        assert not set(family.FACTS) & set(merged), "an algorithm listed twice"
        merged.update(family.FACTS)
    return merged


FACTS = _merge()
