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


# For scale: a uniform random point scores 0.49 on the sphere (d=4) and ~900 on Rosenbrock
# (d=3); the cube centre scores 0.16 and 2.
FACTS = {
    "random": Facts({"sphere": 0.08, "rosenbrock": 20.0}, fail_random),
    "cmaes": Facts({"sphere": 1e-4, "rosenbrock": 0.05}, fail_cmaes, {"x0": 0.4}),
    "scipy-nelder-mead": Facts(  # restarts: x0, then a start drawn from the seed
        {"sphere": 1e-6, "rosenbrock": 1e-4},
        fail_scipy,
        {"x0": 0.4},
        batch="islands",
        may_stop_early=True,
        settings={"islands": 2},
    ),
}
