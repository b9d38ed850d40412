"""Facts of the pygmo adapters.

Serial UDAs run as islands (two here, for the small budgets): the initial populations of all
islands form the first batch, then one point per live island per ``ask``; UDAs with a batch
fitness evaluator ask whole populations. Praxis islands start from one point each. The factors
over random search (median of seeds 1-3, same evaluations) are about half the measured ratio
(in brackets); two islands of xNES do not beat random search on the sphere. Praxis converges
to NLopt's tolerances (errors near 1e-25), where a round 1e20 is safer than half the ratio.
The multi-objective algorithms and the ant colonies get 20 individuals: with 10, NSGA-II and
NSPSO barely improve on random search within these budgets (with 20: 2-5x).
"""

from __future__ import annotations

import pygmo

from . import Facts


def fail_pygmo(monkeypatch, algorithm) -> None:
    """``pygmo.algorithm.evolve`` raises, as pygmo does on a bad population or setting."""

    def evolve(self, population):
        raise RuntimeError("boom")

    monkeypatch.setattr(pygmo.algorithm, "evolve", evolve)


def _facts(sphere: float | None, rosenbrock: float | None, population=10, **kw) -> Facts:
    factors = {"sphere": sphere, "rosenbrock": rosenbrock}
    return Facts(factors, fail_pygmo, population=population, **kw)


SERIAL = {"batch": "islands", "settings": {"islands": 2}}
TOLERANCES = {"may_stop_early": True}  # ftol/xtol and the like end pygmo's evolve

FACTS = {
    "pygmo-pso": _facts(5.0, 5.0, **SERIAL),  # (17.5, 12)
    "pygmo-pso-gen": _facts(50.0, 5.0),  # (205, 17)
    "pygmo-nsga2": _facts(2.0, 1.5, population=20),  # (4.0, 2.0)
    "pygmo-de": _facts(2.0, 30.0, **SERIAL, **TOLERANCES),  # (4.9, 65)
    "pygmo-sade": _facts(5.0, 30.0, **SERIAL, **TOLERANCES),  # (14, 87)
    "pygmo-de1220": _facts(10.0, 10.0, **SERIAL, **TOLERANCES),  # (29, 34)
    "pygmo-cmaes": _facts(1e3, 1e3, **TOLERANCES),  # (1.3e4, 5.7e4)
    "pygmo-xnes": _facts(None, 5.0, **SERIAL, **TOLERANCES),  # (0.61, 11)
    "pygmo-gaco": _facts(20.0, 5.0, population=20, **TOLERANCES),  # (81, 18)
    "pygmo-maco": _facts(1e3, 5.0, population=20, **TOLERANCES),  # (1.5e4, 13)
    "pygmo-nspso": _facts(2.0, 1.5, population=20),  # (4.8, 3.5)
    "pygmo-praxis": _facts(1e20, 1e20, population=1, **SERIAL, **TOLERANCES),  # (8e22, 1.6e26)
    "pygmo-abc": _facts(2.0, 5.0, **SERIAL),  # (4.2, 14)
}
