"""Search algorithms behind one ask/tell interface, and the registry that names them.

>>> algorithm = create_algorithm("cmaes", dimension=3, population=10, seed=1, settings={})
>>> points = algorithm.ask()  # (10, 3) in the unit cube; evaluate, then tell(points, ...)

The registry is lazy: its names come from ``CATALOGUE`` below, and a family's module (one per
optimizer package, whose classes carry the facts) is imported only when one of its algorithms
is looked up. Every process imports ``neuroptimus.optimization.problem.spec`` (a Dask worker
too), and
importing every family cost each of them most of a second; the family modules themselves import
their optimizer package only when an algorithm is created.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from neuroptimus.optimization.algorithms.base import Algorithm, AlgorithmError, AlgorithmInfo
from neuroptimus.optimization.errors import UserError

# Registry name -> family module (neuroptimus.optimization.algorithms.<module>), in listing order.
# Each family module lists its adapter classes in ``ADAPTERS``; a test checks the two agree.
CATALOGUE: dict[str, str] = {
    "random": "random_search",
    "cmaes": "cmaes_adapter",
    "cma-lq": "pycma_adapter",
    "optuna-tpe": "optuna_adapter",
    **dict.fromkeys(("scipy-nelder-mead", "scipy-lbfgsb", "scipy-basinhopping"), "scipy_adapter"),
    **dict.fromkeys(
        (
            "inspyred-ceo",
            "inspyred-es",
            "inspyred-pso",
            "inspyred-nsga2",
            "inspyred-de",
            "inspyred-paes",
            "inspyred-sa",
            "inspyred-ga",
            "inspyred-eda",
        ),
        "inspyred_adapters",
    ),  # fmt: skip
    **dict.fromkeys(
        (
            "pygmo-pso",
            "pygmo-pso-gen",
            "pygmo-nsga2",
            "pygmo-de",
            "pygmo-sade",
            "pygmo-de1220",
            "pygmo-cmaes",
            "pygmo-xnes",
            "pygmo-gaco",
            "pygmo-maco",
            "pygmo-nspso",
            "pygmo-praxis",
            "pygmo-abc",
        ),
        "pygmo_adapters",
    ),  # fmt: skip
    **dict.fromkeys(("bluepyopt-nsga2", "bluepyopt-ibea"), "bluepyopt_adapters"),
    "emcee": "emcee_adapter",  # posterior sampling, not optimization
}
FAMILY_MODULES = tuple(dict.fromkeys(CATALOGUE.values()))


def family_classes(module: str) -> dict[str, type[Algorithm]]:
    """The adapter classes of one family module, by registry name (imports the module)."""
    adapters = importlib.import_module(f"neuroptimus.optimization.algorithms.{module}").ADAPTERS
    return {cls.info.name: cls for cls in adapters}


class _Registry(Mapping[str, type[Algorithm]]):
    """Registry name -> algorithm class; a lookup imports that algorithm's family only."""

    def __getitem__(self, name: str) -> type[Algorithm]:
        return family_classes(CATALOGUE[name])[name]

    def __contains__(self, name: object) -> bool:  # names only: imports nothing
        return name in CATALOGUE

    def __iter__(self) -> Iterator[str]:
        return iter(CATALOGUE)

    def __len__(self) -> int:
        return len(CATALOGUE)

    def __repr__(self) -> str:
        return f"<algorithm registry: {', '.join(CATALOGUE)}>"


ALGORITHMS: Mapping[str, type[Algorithm]] = _Registry()


class UnknownAlgorithmError(UserError, KeyError, ValueError):
    """No algorithm of that name (both a KeyError and a ValueError, for either style)."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0])


def get_algorithm(name: str) -> type[Algorithm]:
    """The class registered as ``name``."""
    if name not in CATALOGUE:
        known = ", ".join(sorted(CATALOGUE))
        raise UnknownAlgorithmError(f"unknown algorithm {name!r}; known: {known}")
    return ALGORITHMS[name]


def create_algorithm(
    name: str, dimension: int, population: int, seed: int, settings: dict[str, Any] | None = None
) -> Algorithm:
    """A new instance; unknown settings raise ValueError naming them."""
    return get_algorithm(name)(dimension, population, seed, **(settings or {}))


def list_algorithms() -> list[AlgorithmInfo]:
    """Registry facts of every algorithm, in registration order (imports every family)."""
    return [cls.info for cls in ALGORITHMS.values()]


__all__ = [
    "ALGORITHMS",
    "CATALOGUE",
    "Algorithm",
    "AlgorithmError",
    "AlgorithmInfo",
    "UnknownAlgorithmError",
    "create_algorithm",
    "get_algorithm",
    "list_algorithms",
]
