"""Facts of the pygmo adapters.

Serial UDAs evaluate their initial population as one batch and then one point per ``ask``
("at most population"); UDAs with a batch fitness evaluator ask whole populations. Praxis
starts from one point and is serial throughout. The factors over random search (median of
seeds 1-3, same evaluations) are about half the measured ratio (in brackets). The
multi-objective algorithms and the ant colonies get 20 individuals: with 10, NSGA-II and NSPSO
barely improve on random search within these budgets (with 20: 2-5x).
"""

from __future__ import annotations

import pygmo

from . import Facts


def fail_pygmo(monkeypatch, algorithm) -> None:
    """``pygmo.algorithm.evolve`` raises, as pygmo does on a bad population or setting."""

    def evolve(self, population):
        raise RuntimeError("boom")

    monkeypatch.setattr(pygmo.algorithm, "evolve", evolve)


def _facts(sphere: float, rosenbrock: float, batch="population", population=10, **kw) -> Facts:
    factors = {"sphere": sphere, "rosenbrock": rosenbrock}
    return Facts(factors, fail_pygmo, batch=batch, population=population, **kw)


SERIAL = "at most population"
TOLERANCES = {"may_stop_early": True}  # ftol/xtol and the like end pygmo's evolve

FACTS = {
    "pygmo-pso": _facts(100.0, 5.0, SERIAL),  # (2800, 12)
    "pygmo-pso-gen": _facts(50.0, 5.0),  # (205, 17)
    "pygmo-nsga2": _facts(2.0, 1.5, population=20),  # (4.0, 2.0)
    "pygmo-de": _facts(20.0, 100.0, SERIAL, **TOLERANCES),  # (52, 6400)
    "pygmo-sade": _facts(100.0, 3.0, SERIAL, **TOLERANCES),  # (820, 10)
    "pygmo-de1220": _facts(100.0, 100.0, SERIAL, **TOLERANCES),  # (330, 930)
    "pygmo-cmaes": _facts(1e3, 1e3, **TOLERANCES),  # (1.3e4, 5.7e4)
    "pygmo-xnes": _facts(3.0, 100.0, SERIAL, **TOLERANCES),  # (7.0, 1.3e4)
    "pygmo-gaco": _facts(20.0, 5.0, population=20, **TOLERANCES),  # (81, 18)
    "pygmo-maco": _facts(1e3, 5.0, population=20, **TOLERANCES),  # (1.5e4, 13)
    "pygmo-nspso": _facts(2.0, 1.5, population=20),  # (4.8, 3.5)
    "pygmo-praxis": _facts(1e20, 1e20, "one", population=1, **TOLERANCES),  # (5e23, 1e28)
    "pygmo-abc": _facts(20.0, 3.0, SERIAL),  # (59, 9.6)
}
