"""Facts of the bluepyopt adapters (NSGA-II and IBEA, multi-objective)."""

from __future__ import annotations

import bluepyopt.deapext.algorithms

from . import Facts


def fail_bluepyopt(monkeypatch, algorithm) -> None:
    def get_offspring(parents, toolbox, cxpb, mutpb):
        raise RuntimeError("boom")

    monkeypatch.setattr(bluepyopt.deapext.algorithms, "_get_offspring", get_offspring)


# Measured against random search (median over seeds 1-3, same evaluations): IBEA 53x on the
# sphere and 8.5x on Rosenbrock, NSGA-II 62x and 10x (the generic tests tell two proportional
# error columns, so the Pareto front is a single point).
# With the default cxpb = mutpb = 1 every offspring is new, so every batch is the population.
FACTS = {
    name: Facts({"sphere": 20.0, "rosenbrock": 3.0}, fail_bluepyopt)
    for name in ("bluepyopt-nsga2", "bluepyopt-ibea")
}
