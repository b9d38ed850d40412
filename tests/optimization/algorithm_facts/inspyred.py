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


def facts(sphere: float, rosenbrock: float, batch: str = "population", islands: int = 0) -> Facts:
    settings = {"islands": islands} if islands else {}
    thresholds = {"sphere": sphere, "rosenbrock": rosenbrock}
    return Facts(thresholds, fail_inspyred, batch=batch, settings=settings)


# For scale: random search needs 0.08 on the sphere and 20 on Rosenbrock (see core.py). The
# runs are deterministic; the thresholds leave a margin of about 2-5x over the worst of seeds
# 1-3. Most algorithms keep inspyred's Gaussian mutation (std 1, i.e. the width of the cube):
# the simple GA then does no better than random search on the sphere, but all beat it clearly
# on Rosenbrock.
FACTS = {
    "inspyred-ceo": facts(3e-3, 4.0),
    "inspyred-es": facts(0.01, 6.0),
    "inspyred-pso": facts(1e-3, 2.0),
    "inspyred-nsga2": facts(0.01, 8.0),
    "inspyred-de": facts(0.03, 5.0),
    # Serial: independent runs (islands), one point of each per ask. Simulated annealing
    # needs its whole small budget in one chain to beat random search.
    "inspyred-paes": facts(0.04, 15.0, batch="islands", islands=2),
    "inspyred-sa": facts(0.08, 15.0, batch="islands", islands=1),
    "inspyred-ga": facts(0.2, 10.0),
    "inspyred-eda": facts(0.1, 15.0),
}
