"""Search algorithms behind one ask/tell interface, and the registry that names them.

>>> algorithm = create_algorithm("cmaes", dimension=3, population=10, seed=1, settings={})
>>> points = algorithm.ask()  # (10, 3) in the unit cube; evaluate, then tell(points, ...)
"""

from __future__ import annotations

import importlib
from typing import Any

from optimization.algorithms.base import Algorithm, AlgorithmError, AlgorithmInfo

# One module per package family; each lists its adapter classes in ``ADAPTERS``.
FAMILY_MODULES = (
    "random_search",
    "cmaes_adapter",
    "scipy_adapter",
    "inspyred_adapters",
    "pygmo_adapters",
    "bluepyopt_adapters",
)

ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.info.name: cls
    for module in FAMILY_MODULES
    for cls in importlib.import_module(f"optimization.algorithms.{module}").ADAPTERS
}


class UnknownAlgorithmError(KeyError, ValueError):
    """No algorithm of that name (both a KeyError and a ValueError, for either style)."""

    def __str__(self) -> str:  # KeyError would show the repr of the message
        return str(self.args[0])


def get_algorithm(name: str) -> type[Algorithm]:
    """The class registered as ``name``."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        known = ", ".join(sorted(ALGORITHMS))
        raise UnknownAlgorithmError(f"unknown algorithm {name!r}; known: {known}") from None


def create_algorithm(
    name: str, dimension: int, population: int, seed: int, settings: dict[str, Any] | None = None
) -> Algorithm:
    """A new instance; unknown settings raise ValueError naming them."""
    return get_algorithm(name)(dimension, population, seed, **(settings or {}))


def list_algorithms() -> list[AlgorithmInfo]:
    """Registry facts of every algorithm, in registration order."""
    return [cls.info for cls in ALGORITHMS.values()]


__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "AlgorithmError",
    "AlgorithmInfo",
    "UnknownAlgorithmError",
    "create_algorithm",
    "get_algorithm",
    "list_algorithms",
]
