"""Facts of the pygmo adapters.

Serial UDAs run as islands (two here, for the small budgets): the initial populations of all
islands form the first batch, then one point per live island per ``ask``; UDAs with a batch
fitness evaluator ask whole populations. Praxis islands start from one point each.
Thresholds are the worst of seeds 1, 2, 3 with some margin. The multi-objective algorithms
and the ant colonies get 20 individuals: with 10, NSGA-II and NSPSO barely improve on random
search within these budgets.
"""

from __future__ import annotations

import pygmo

from . import Facts


def fail_pygmo(monkeypatch, algorithm) -> None:
    """``pygmo.algorithm.evolve`` raises, as pygmo does on a bad population or setting."""

    def evolve(self, population):
        raise RuntimeError("boom")

    monkeypatch.setattr(pygmo.algorithm, "evolve", evolve)


def _facts(sphere: float, rosenbrock: float, population=10, **kw) -> Facts:
    thresholds = {"sphere": sphere, "rosenbrock": rosenbrock}
    return Facts(thresholds, fail_pygmo, population=population, **kw)


SERIAL = {"batch": "islands", "settings": {"islands": 2}}
TOLERANCES = {"may_stop_early": True}  # ftol/xtol and the like end pygmo's evolve

FACTS = {
    "pygmo-pso": _facts(3e-3, 1.5, **SERIAL),
    "pygmo-pso-gen": _facts(1e-3, 1.0),
    "pygmo-nsga2": _facts(0.03, 10.0, population=20),
    "pygmo-de": _facts(6e-3, 1.0, **SERIAL, **TOLERANCES),
    "pygmo-sade": _facts(4e-3, 1.5, **SERIAL, **TOLERANCES),
    "pygmo-de1220": _facts(3e-3, 1.0, **SERIAL, **TOLERANCES),
    "pygmo-cmaes": _facts(1e-4, 0.1, **TOLERANCES),
    "pygmo-xnes": _facts(0.05, 3.0, **SERIAL, **TOLERANCES),
    "pygmo-gaco": _facts(2e-3, 1.0, population=20, **TOLERANCES),
    "pygmo-maco": _facts(1e-3, 1.5, population=20, **TOLERANCES),
    "pygmo-nspso": _facts(0.03, 5.0, population=20),
    "pygmo-praxis": _facts(1e-8, 1e-6, population=1, **SERIAL, **TOLERANCES),
    "pygmo-abc": _facts(0.06, 1.5, **SERIAL),
}
