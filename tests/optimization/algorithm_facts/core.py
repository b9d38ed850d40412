"""Random search, CMA-ES (cmaes) and SciPy's methods."""

from __future__ import annotations

import cmaes
import scipy.optimize

from . import Facts


class FailingGenerator:
    def random(self, *args, **kwargs):
        raise RuntimeError("boom")


def fail_random(monkeypatch, algorithm) -> None:
    algorithm._rng = FailingGenerator()


def fail_cmaes(monkeypatch, algorithm) -> None:
    def tell(self, solutions):
        raise RuntimeError("boom")

    monkeypatch.setattr(cmaes.CMA, "tell", tell)


def fail_scipy(monkeypatch, algorithm) -> None:
    def minimize(fun, x0, **kwargs):
        fun(x0)  # one evaluation, then the library breaks
        raise RuntimeError("boom")

    monkeypatch.setattr(scipy.optimize, "minimize", minimize)


# Measured against random search (median over seeds 1-3, same evaluations): CMA-ES 1.2e5x on
# the sphere and 3.8e6x on Rosenbrock, Nelder-Mead (two islands) 5.1e6x and 8.1e8x. Random
# search itself is checked against its exact stream of points (test_algorithms.py).
FACTS = {
    "random": Facts({"sphere": 1.0, "rosenbrock": 1.0}, fail_random),
    "cmaes": Facts({"sphere": 1e4, "rosenbrock": 1e5}, fail_cmaes, {"x0": 0.4}),
    "scipy-nelder-mead": Facts(  # restarts: x0, then a start drawn from the seed
        {"sphere": 2e6, "rosenbrock": 3e8},
        fail_scipy,
        {"x0": 0.4},
        batch="islands",
        may_stop_early=True,
        settings={"islands": 2},
    ),
}
