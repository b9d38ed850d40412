"""Facts of the bluepyopt adapters (NSGA-II and IBEA, multi-objective)."""

from __future__ import annotations

import bluepyopt.deapext.algorithms

from . import Facts


def fail_bluepyopt(monkeypatch, algorithm) -> None:
    def get_offspring(parents, toolbox, cxpb, mutpb):
        raise RuntimeError("boom")

    monkeypatch.setattr(bluepyopt.deapext.algorithms, "_get_offspring", get_offspring)


# Measured over seeds 1-30 with population 10: sphere worst 0.002, Rosenbrock worst 4.6 (the
# generic tests tell two proportional error columns, so the Pareto front is a single point).
# With the default cxpb = mutpb = 1 every offspring is new, so every batch is the population.
FACTS = {
    name: Facts({"sphere": 0.005, "rosenbrock": 6.0}, fail_bluepyopt)
    for name in ("bluepyopt-nsga2", "bluepyopt-ibea")
}
