"""BluePyOpt's NSGA-II and IBEA, SciPy's L-BFGS-B and basin-hopping: family-specific checks."""

from __future__ import annotations

import gc
import inspect
import logging
import queue
import random
import sys
import threading
import time

import bluepyopt.deapext.algorithms
import bluepyopt.deapext.tools
import bluepyopt.deapext.utils
import deap.tools
import numpy as np
import pytest
import scipy.optimize
from bluepyopt.deapext.optimisations import DEAPOptimisation
from uc1_runs import assert_reproducible

from neuroptimus.optimization.algorithms import ALGORITHMS, create_algorithm
from neuroptimus.optimization.algorithms.bluepyopt_adapters import _BatchEvaluator
from neuroptimus.optimization.algorithms.scipy_adapter import _value_and_gradient

BLUEPYOPT = ["bluepyopt-nsga2", "bluepyopt-ibea"]


def sphere(points: np.ndarray) -> np.ndarray:
    return ((points - 0.3) ** 2).sum(axis=1)


def rosenbrock(points: np.ndarray) -> np.ndarray:
    z = 4.0 * points - 2.0
    return (100.0 * (z[:, 1:] - z[:, :-1] ** 2) ** 2 + (1.0 - z[:, :-1]) ** 2).sum(axis=1)


def step(algorithm, function=sphere) -> np.ndarray:
    points = algorithm.ask()
    if len(points):
        values = function(points)
        algorithm.tell(points, np.column_stack([values, 2 * values]), values)
    return points


def run(algorithm, function, budget: int) -> list[np.ndarray]:
    batches, used = [], 0
    while used < budget and not algorithm.done:
        points = step(algorithm, function)
        if not len(points):
            break
        batches.append(points)
        used += len(points)
    return batches


@pytest.fixture(autouse=True)
def no_leaked_threads():
    yield
    deadline = time.monotonic() + 5
    alive = lambda: [t for t in threading.enumerate() if t.name.startswith("neuroptimus-bridge")]  # noqa: E731
    while alive() and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert not alive()


# --- BluePyOpt -----------------------------------------------------------------------------


def test_registry_entries_and_bluepyopt_defaults():
    own = inspect.signature(DEAPOptimisation).parameters
    for name in BLUEPYOPT:
        info = ALGORITHMS[name].info
        assert (info.package, info.multi_objective, info.parallel) == ("bluepyopt", True, True)
        assert info.defaults == {key: own[key].default for key in ("eta", "cxpb", "mutpb")}
    for name in ("scipy-lbfgsb", "scipy-basinhopping"):
        info = ALGORITHMS[name].info
        assert (info.package, info.multi_objective, info.parallel) == ("scipy", False, True)
    assert ALGORITHMS["scipy-basinhopping"].info.defaults["niter"] == 100  # paper: 100 x 100
    assert ALGORITHMS["scipy-basinhopping"].info.defaults["local_maxiter"] == 100


@pytest.mark.parametrize("name", BLUEPYOPT)
def test_multi_objective_library_receives_the_error_vectors(name, monkeypatch):
    """DEAP's parents carry the told (n, k) error rows as fitness; the totals are not used."""
    seen = []
    original = bluepyopt.deapext.algorithms._get_offspring

    def get_offspring(parents, *args):
        seen.append([individual.fitness.values for individual in parents])
        return original(parents, *args)

    monkeypatch.setattr(bluepyopt.deapext.algorithms, "_get_offspring", get_offspring)
    algorithm = create_algorithm(name, 3, 6, 0, {})
    told = set()
    for _ in range(3):
        points = algorithm.ask()
        errors = np.column_stack([sphere(points), sphere(1 - points), points[:, 0]])
        told |= {tuple(row) for row in errors}
        algorithm.tell(points, errors, np.zeros(len(points)))
    algorithm.close()
    assert len(seen) == 3
    assert all(len(values) == 3 and values in told for parents in seen for values in parents)


def test_number_of_objectives_comes_from_the_first_tell_or_the_constructor():
    learnt = create_algorithm("bluepyopt-nsga2", 2, 4, 0, {})
    learnt.tell(points := learnt.ask(), np.ones((4, 3)), np.ones(4))
    points = learnt.ask()
    with pytest.raises(ValueError, match="'bluepyopt-nsga2'.*expected 3 error column"):
        learnt.tell(points, np.ones((4, 2)), np.ones(4))
    learnt.tell(points, np.ones((4, 3)), np.ones(4))  # the run goes on
    learnt.close()

    declared = ALGORITHMS["bluepyopt-ibea"](2, 4, 0, objectives=2)
    with pytest.raises(ValueError, match="'bluepyopt-ibea'.*expected 2 error column"):
        declared.tell(points := declared.ask(), np.ones((4, 3)), np.ones(4))
    declared.tell(points, np.ones((4, 2)), np.ones(4))
    declared.close()
    with pytest.raises(ValueError, match="'bluepyopt-ibea'.*objectives"):
        ALGORITHMS["bluepyopt-ibea"](2, 4, 0, objectives=0)


@pytest.mark.parametrize("name", BLUEPYOPT)
def test_a_generation_arrives_as_one_batch(name, monkeypatch):
    def one_by_one(self, values):
        raise AssertionError("an individual was evaluated on its own")

    monkeypatch.setattr(_BatchEvaluator, "init_simulator_and_evaluate_with_lists", one_by_one)
    algorithm = create_algorithm(name, 3, 7, 1, {})
    assert [step(algorithm).shape for _ in range(5)] == [(7, 3)] * 5
    algorithm.close()
    # Lower probabilities leave some offspring unchanged; DEAP evaluates only the others.
    sparing = create_algorithm(name, 3, 7, 1, {"cxpb": 0.3, "mutpb": 0.3})
    sizes = [len(step(sparing)) for _ in range(10)]
    sparing.close()
    assert sizes[0] == 7 and all(1 <= n <= 7 for n in sizes) and min(sizes) < 7


@pytest.mark.parametrize("name", BLUEPYOPT)
def test_global_random_draws_between_generations_change_nothing(name):
    """Same seed, same points although other code draws from ``random`` between generations;
    and the library leaves that other code's stream alone."""

    def batches(interfere: bool) -> tuple[list[np.ndarray], list[float]]:
        algorithm = create_algorithm(name, 3, 6, 4, {})
        random.seed(99)
        asked, drawn = [], []
        for _ in range(6):
            asked.append(step(algorithm))
            if interfere:
                drawn.append(random.random())
        algorithm.close()
        return asked, drawn

    calm, _ = batches(False)
    busy, drawn = batches(True)
    assert all(np.array_equal(a, b) for a, b in zip(calm, busy, strict=True))
    random.seed(99)
    assert drawn == [random.random() for _ in range(6)]


def test_bluepyopt_writes_no_checkpoint_and_logs_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    algorithm = create_algorithm("bluepyopt-ibea", 2, 4, 0, {})
    for _ in range(4):
        step(algorithm)
    algorithm.close()
    assert not list(tmp_path.iterdir())
    assert not [r for r in caplog.records if "bluepyopt" in r.pathname]


# --- SciPy ---------------------------------------------------------------------------------


def test_value_and_gradient_come_from_one_batch_of_forward_differences():
    calls = []

    def objective(points):
        calls.append(points)
        return sphere(points)

    value, gradient = _value_and_gradient(objective, 1e-3)(np.array([0.2, 0.5, 1.0]))
    assert len(calls) == 1 and calls[0].shape == (4, 3)
    assert value == pytest.approx(0.01 + 0.04 + 0.49)
    # (x - a)^2 has forward difference 2 (x - a) + h; backwards (at the upper bound) 2 (x - a) - h
    assert np.allclose(gradient, [-0.2 + 1e-3, 0.4 + 1e-3, 1.4 - 1e-3])


def test_lbfgsb_batches_are_x_and_its_difference_points():
    settings = {"x0": "0.2, 0.5, 1.0", "eps": 0.01, "restarts": 0}
    algorithm = create_algorithm("scipy-lbfgsb", 3, 1, 0, settings)
    batches = run(algorithm, sphere, 10_000)
    assert np.array_equal(batches[0][0], [0.2, 0.5, 1.0])
    assert np.allclose(batches[0][1:] - batches[0][0], np.diag([0.01, 0.01, -0.01]))
    for points in batches:  # d + 1 points whatever the population
        offsets = points[1:] - points[0]
        assert points.shape == (4, 3)
        assert np.allclose(np.abs(offsets), 0.01 * np.eye(3), atol=1e-12)
    # SciPy stops by itself (here when the biased differences stall its line search); without
    # restarts, so does the run
    assert algorithm.done and len(batches) == algorithm.result.nfev
    assert np.allclose(algorithm.result.x, 0.3, atol=0.01)


def test_lbfgsb_settings_reach_scipy():
    algorithm = create_algorithm("scipy-lbfgsb", 3, 1, 0, {"maxiter": 2, "restarts": 0})
    run(algorithm, rosenbrock, 10_000)
    assert algorithm.done and algorithm.result.nit == 2


def test_basinhopping_settings_reach_scipy(monkeypatch):
    received = {}
    real = scipy.optimize.basinhopping

    def spy(func, x0, **kwargs):
        received.update(kwargs)
        return real(func, x0, **kwargs)

    monkeypatch.setattr(scipy.optimize, "basinhopping", spy)
    settings = {"niter": 3, "T": 0.5, "stepsize": 0.2, "interval": 7, "niter_success": 9}
    settings |= {"local_maxiter": 4, "eps": 0.01}
    algorithm = create_algorithm("scipy-basinhopping", 2, 1, 3, settings)
    batches = run(algorithm, rosenbrock, 10_000)
    assert algorithm.done and algorithm.result.nit == 3
    assert {key: received[key] for key in ("niter", "T", "stepsize", "interval")} == {
        "niter": 3,
        "T": 0.5,
        "stepsize": 0.2,
        "interval": 7,
    }
    assert received["niter_success"] == 9
    local = received["minimizer_kwargs"]
    assert local["method"] == "L-BFGS-B" and local["jac"] is True
    assert local["options"] == {"maxiter": 4} and local["bounds"] == [(0.0, 1.0)] * 2
    assert isinstance(received["rng"], np.random.Generator)
    assert algorithm.result.lowest_optimization_result.nit <= 4
    assert all(points.shape == (3, 2) for points in batches)


def test_basinhopping_start_and_jumps_follow_the_seed():
    first = [create_algorithm("scipy-basinhopping", 3, 1, seed, {}).ask() for seed in (1, 1, 2)]
    assert np.array_equal(first[0], first[1]) and not np.array_equal(first[0], first[2])
    given = create_algorithm("scipy-basinhopping", 3, 1, 1, {"x0": 0.25})
    assert np.array_equal(given.ask()[0], [0.25] * 3)


@pytest.mark.parametrize(
    "name, settings, named",
    [
        ("bluepyopt-nsga2", {"cxpb": 1.5}, "cxpb"),
        ("bluepyopt-ibea", {"eta": 0}, "eta"),
        ("bluepyopt-nsga2", {"mutpb": "often"}, "mutpb"),
        ("bluepyopt-ibea", {"cxpb": 0, "mutpb": 0}, "cxpb"),
        ("scipy-lbfgsb", {"eps": 0}, "eps"),
        ("scipy-lbfgsb", {"eps": 0.6}, "eps"),
        ("scipy-lbfgsb", {"maxiter": 2.5}, "maxiter"),
        ("scipy-lbfgsb", {"x0": 1.5}, "x0"),
        ("scipy-basinhopping", {"stepsize": 0}, "stepsize"),
        ("scipy-basinhopping", {"niter": -1}, "niter"),
        ("scipy-basinhopping", {"T": "hot"}, "T"),
        ("scipy-basinhopping", {"x0": 2.0}, "x0"),
    ],
)
def test_bad_settings_are_named(name, settings, named):
    with pytest.raises(ValueError, match=f"'{name}'.*{named}"):
        create_algorithm(name, 3, 8, 0, settings)


# --- a short run on use case 1 (real NEURON simulations) ------------------------------------


@pytest.fixture(scope="module")
def hh_problem():
    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.optimization.problem.problem_file import load_problem
    from neuroptimus.usecases import problem_path

    return build_problem(load_problem(problem_path("hh")))  # regenerates the target


@pytest.mark.parametrize("name, generations", [("bluepyopt-ibea", 8), ("scipy-lbfgsb", 6)])
def test_short_run_on_use_case_1_is_reproducible(hh_problem, name, generations):
    from neuroptimus.optimization.problem.problem_file import with_overrides

    spec = with_overrides(hh_problem.spec, algorithm=name, population=8, generations=generations)
    assert spec.algorithm.name == name  # the registry makes the name valid in problem files
    asked, results = assert_reproducible(hh_problem, name, 8, generations)
    size = 8 if name.startswith("bluepyopt") else 4  # L-BFGS-B: x and its 3 neighbours
    assert [points.shape for points in asked] == [(size, 3)] * generations
    assert [result.errors.shape for result in results] == [(size, 4)] * generations


def _concurrent_or_alone(name: str, seeds: tuple[int, ...], together: bool) -> dict:
    """Asked batches of runs with ``seeds``: one after the other, or in threads stepping in
    lockstep (a benchmark flow runs several optimizations in one process at once)."""
    barrier = threading.Barrier(len(seeds)) if together else None

    def run(seed: int) -> list[np.ndarray]:
        algorithm = create_algorithm(name, 3, 6, seed, {})
        asked = []
        for _ in range(15):
            if barrier:
                barrier.wait()
            asked.append(step(algorithm))
        algorithm.close()
        return asked

    if not together:
        return {seed: run(seed) for seed in seeds}
    results: dict = {}
    threads = [
        threading.Thread(target=lambda seed=seed: results.__setitem__(seed, run(seed)))
        for seed in seeds
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture
def eager_thread_switches():
    """Switch threads every microsecond, so that concurrent runs interleave their draws (with
    the default 5 ms, a library's computation between two batches rarely is interrupted; with
    the runs sharing the process-wide ``random``, this test then fails in most trials)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.parametrize("name", BLUEPYOPT)
def test_concurrent_runs_give_exactly_the_results_of_runs_alone(name, eager_thread_switches):
    seeds = (1, 2, 3, 4)
    alone = _concurrent_or_alone(name, seeds, together=False)
    together = _concurrent_or_alone(name, seeds, together=True)
    assert set(together) == set(alone)
    for seed in alone:
        assert all(np.array_equal(a, b) for a, b in zip(alone[seed], together[seed], strict=True))


class ReseedingNeighbour:
    """Another thread of the process (a Dask or Prefect thread, say) that, when asked, reseeds
    the process-wide generators (``random`` and numpy's) and draws from them."""

    def __init__(self) -> None:
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self.visits = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while (done := self.requests.get()) is not None:
            random.seed(12345)
            random.random()
            np.random.seed(12345)
            np.random.random()
            self.visits += 1
            done.set()

    def visit(self) -> None:
        """Let the thread reseed and draw now; return once it has."""
        done = threading.Event()
        self.requests.put(done)
        done.wait()

    def stop(self) -> None:
        self.requests.put(None)
        self.thread.join()


# What BluePyOpt's NSGA-II and IBEA call between their random draws (looked up when a run starts)
RANDOM_OPERATORS = [
    (bluepyopt.deapext.utils, "uniform"),  # the initial population, right after seeding
    (deap.tools, "cxSimulatedBinaryBounded"),
    (deap.tools, "mutPolynomialBounded"),
    (deap.tools.emo, "selNSGA2"),
    (bluepyopt.deapext.tools, "selIBEA"),
]


@pytest.mark.parametrize("name", BLUEPYOPT)
def test_a_thread_reseeding_the_process_wide_generators_mid_generation_changes_nothing(
    name, monkeypatch
):
    """Two runs stepped in turn while, before each random operator of the library, another
    thread reseeds ``random`` and numpy: each run (and a run resumed from a checkpoint) still
    asks exactly what it asks alone."""
    seeds, generations = (1, 2), 10
    alone = {}
    for seed in seeds:
        algorithm = create_algorithm(name, 3, 6, seed, {})
        alone[seed] = [step(algorithm) for _ in range(generations)]
        algorithm.close()

    neighbour = ReseedingNeighbour()

    def visited_first(operator):
        def call(*args, **kwargs):
            neighbour.visit()
            return operator(*args, **kwargs)

        return call

    for module, attribute in RANDOM_OPERATORS:
        monkeypatch.setattr(module, attribute, visited_first(getattr(module, attribute)))
    runs = {seed: create_algorithm(name, 3, 6, seed, {}) for seed in seeds}
    busy: dict[int, list] = {seed: [] for seed in seeds}
    for _ in range(generations // 2):
        for seed, algorithm in runs.items():
            busy[seed].append(step(algorithm))
    resumed = create_algorithm(name, 3, 6, seeds[0], {})
    resumed.restore(runs[seeds[0]].state())  # replays the first half, visited again
    runs[seeds[0]].close()
    runs[seeds[0]] = resumed
    for _ in range(generations - generations // 2):
        for seed, algorithm in runs.items():
            busy[seed].append(step(algorithm))
    for algorithm in runs.values():
        algorithm.close()
    neighbour.stop()

    assert neighbour.visits >= 2 * generations  # the library really was interrupted
    for seed in seeds:
        assert all(np.array_equal(a, b) for a, b in zip(alone[seed], busy[seed], strict=True))
