"""Fixtures shared by the algorithm tests."""

from __future__ import annotations

import pytest

from neuroptimus.optimization.algorithms import create_algorithm


@pytest.fixture
def make():
    """create_algorithm, closing every created algorithm at the end of the test."""
    created = []

    def factory(name, dimension=3, population=10, seed=1, settings=None):
        created.append(create_algorithm(name, dimension, population, seed, settings or {}))
        return created[-1]

    yield factory
    for algorithm in created:
        algorithm.close()
