"""A generator of its own for each run of a library that draws from the stdlib ``random``.

DEAP's operators (and BluePyOpt's, built on them) call ``random.random()``, ``random.seed()``
etc. on the stdlib module, whose single state belongs to the whole process. No way of sharing
it makes a run a pure function of its seed: any code in the process that does not take part
(a Dask or Prefect thread, a test) may reseed or draw from it while the library computes.

So the library never sees that state. :func:`route` replaces the name ``random`` in the
library's modules by a router: in a thread that holds a generator (:func:`own_generator`),
every function looked up on it is that thread's ``random.Random``; in any other thread, the
stdlib module as before. A library loop runs in its own bridge thread from its first draw to
its last, so each run draws from its own generator only, runs never wait for one another, and
nothing else in the process sees a difference.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_stdlib = random


class _Router:
    """Stands for the ``random`` module in a library's namespace (see the module docs)."""

    def __init__(self) -> None:
        self.local = threading.local()

    def __getattr__(self, name: str) -> Any:
        generator = getattr(self.local, "generator", None)
        if generator is not None and not name.startswith("_") and hasattr(generator, name):
            return getattr(generator, name)
        return getattr(_stdlib, name)  # constants, classes, and every thread without its own

    def __repr__(self) -> str:
        return "<the random module, per thread that owns a generator (neuroptimus)>"


ROUTER = _Router()


def route(*packages: str) -> None:
    """Route the ``random`` of every imported module of ``packages`` (e.g. ``"deap"``) through
    :data:`ROUTER`. Idempotent; call it after importing the modules the run uses, since a
    module imported later still holds the stdlib module."""
    for name, module in list(sys.modules.items()):
        inside = any(name == package or name.startswith(package + ".") for package in packages)
        if inside and getattr(module, "random", None) is _stdlib:
            module.random = ROUTER


@contextmanager
def own_generator(seed: int) -> Iterator[random.Random]:
    """Give the current thread its own ``random.Random(seed)`` for routed modules, meanwhile.

    ``random.Random(seed)`` gives the same numbers as ``random.seed(seed)`` on the module.
    """
    previous = getattr(ROUTER.local, "generator", None)
    ROUTER.local.generator = generator = random.Random(seed)
    try:
        yield generator
    finally:
        ROUTER.local.generator = previous
