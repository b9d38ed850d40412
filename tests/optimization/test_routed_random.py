"""The router that gives each run of DEAP/BluePyOpt a generator of its own."""

from __future__ import annotations

import random
import sys
import threading
import types

import deap.tools
import deap.tools.mutation

from neuroptimus.optimization.algorithms.routed_random import ROUTER, own_generator, route


def mutated(seed: int | None = None) -> list[float]:
    """DEAP's polynomial mutation of a fixed individual (seeding ``random`` first if given)."""
    if seed is not None:
        random.seed(seed)
    individual = [0.5] * 8
    deap.tools.mutPolynomialBounded(individual, eta=10.0, low=0.0, up=1.0, indpb=0.5)
    return individual


def test_a_thread_without_a_generator_still_uses_the_process_wide_random():
    route("deap")
    assert deap.tools.mutation.random is ROUTER
    assert mutated(3) == mutated(3) != mutated(4)  # DEAP follows random.seed as before
    random.seed(3)
    expected = mutated()
    random.seed(3)
    with own_generator(3):
        pass  # owning a generator for a while leaves the process-wide state alone
    assert mutated() == expected


def test_a_thread_that_owns_a_generator_draws_only_from_it():
    route("deap")
    random.seed(99)
    with own_generator(5):
        inside = mutated()
        deap.tools.mutation.random.seed(6)  # as BluePyOpt seeds: the thread's generator
        reseeded = mutated()
    assert random.random() == random.Random(99).random()  # the process-wide state is intact
    assert inside == mutated(5)  # same numbers as random.seed(5) would give
    assert reseeded == mutated(6)


def test_threads_owning_generators_do_not_disturb_each_other():
    route("deap")
    alone = {}
    for seed in (1, 2):
        with own_generator(seed):
            alone[seed] = [mutated() for _ in range(50)]
    together: dict[int, list] = {}
    barrier = threading.Barrier(3)

    def draw(seed: int) -> None:
        with own_generator(seed):
            barrier.wait()
            together[seed] = [mutated() for _ in range(50)]

    threads = [threading.Thread(target=draw, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        barrier.wait()
        while any(thread.is_alive() for thread in threads):
            random.seed(0)  # this thread reseeds the process-wide generator all the while
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert together == alone


def test_only_the_named_packages_are_routed(monkeypatch):
    for name in ("deapish", "deap_like.tools"):  # same prefix, other packages
        module = types.ModuleType(name)
        module.random = random
        monkeypatch.setitem(sys.modules, name, module)
    route("deap")
    route("deap")  # idempotent
    assert sys.modules["deapish"].random is random
    assert sys.modules["deap_like.tools"].random is random
    assert deap.tools.mutation.random is ROUTER
    assert ROUTER.Random is random.Random  # what a generator lacks comes from the module
