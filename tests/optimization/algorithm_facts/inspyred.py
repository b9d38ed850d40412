"""Facts of the inspyred adapters."""

from __future__ import annotations

import inspyred

from . import Facts


def fail_inspyred(monkeypatch, algorithm) -> None:
    """inspyred breaks after the first generation has been evaluated (every EC checks its
    terminator there)."""

    def should_terminate(self, population, num_generations, num_evaluations):
        raise RuntimeError("boom")

    monkeypatch.setattr(inspyred.ec.EvolutionaryComputation, "_should_terminate", should_terminate)


def facts(sphere: float | None, rosenbrock: float | None, batch: str = "population") -> Facts:
    return Facts({"sphere": sphere, "rosenbrock": rosenbrock}, fail_inspyred, batch=batch)


# Factors over random search with the same evaluations and seeds (median of seeds 1-3), set at
# about half the measured ratio (in brackets). Most algorithms keep inspyred's Gaussian
# mutation (std 1, i.e. the width of the cube), and within these budgets the simple GA and the
# EDA do no better than random search on either problem (GA 1.08x / 1.04x, EDA 0.40x / 1.18x),
# simulated annealing not on the sphere (0.45x) and PAES not on Rosenbrock (1.25x).
FACTS = {
    "inspyred-ceo": facts(20.0, 3.0),  # (80, 9.3)
    "inspyred-es": facts(5.0, 20.0),  # (23, 140)
    "inspyred-pso": facts(100.0, 10.0),  # (770, 29)
    "inspyred-nsga2": facts(5.0, 1.5),  # (15, 2.6)
    "inspyred-de": facts(1.5, 1.5),  # (3.8, 3.5)
    "inspyred-paes": facts(1.5, None, batch="one"),  # (2.3, 1.25)
    "inspyred-sa": facts(None, 1.5, batch="one"),  # (0.45, 2.9)
    "inspyred-ga": facts(None, None),  # (1.08, 1.04)
    "inspyred-eda": facts(None, None),  # (0.40, 1.18)
}
