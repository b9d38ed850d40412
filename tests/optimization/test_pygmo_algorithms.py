"""pygmo-specific checks; the generic ones run in test_algorithms.py."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pygmo
import pytest
from uc1_runs import assert_reproducible

from neuroptimus.optimization.algorithms import ALGORITHMS, AlgorithmError, create_algorithm
from neuroptimus.optimization.algorithms import pygmo_adapters as adapters
from neuroptimus.optimization.algorithms import pygmo_base as machinery

NAMES = [cls.info.name for cls in adapters.ADAPTERS]
BATCHED = {"pygmo-pso-gen", "pygmo-nsga2", "pygmo-cmaes", "pygmo-gaco", "pygmo-maco", "pygmo-nspso"}
MULTI_OBJECTIVE = {"pygmo-nsga2", "pygmo-maco", "pygmo-nspso"}


def sphere(points: np.ndarray) -> np.ndarray:
    return ((points - 0.3) ** 2).sum(axis=1)


def errors_of(points: np.ndarray) -> np.ndarray:
    """Three distinct error components (the third one conflicts with the other two)."""
    values = sphere(points)
    return np.column_stack([values, 2 * values, points[:, 0]])


def step(algorithm) -> np.ndarray:
    points = algorithm.ask()
    algorithm.tell(points, errors_of(points), sphere(points))
    return points


@pytest.fixture
def evaluated(monkeypatch):
    """(objectives, fitness rows) of every batch pygmo's batch evaluator returns."""
    seen = []
    call = machinery._BatchEvaluator.__call__

    def recording_call(self, problem, decision_vectors):
        values = call(self, problem, decision_vectors)
        seen.append((problem.get_nobj(), values.reshape(-1, problem.get_nobj())))
        return values

    monkeypatch.setattr(machinery._BatchEvaluator, "__call__", recording_call)
    return seen


def bridge_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("neuroptimus-bridge")]


def test_registry_facts():
    assert NAMES == [
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
    ]
    for cls in adapters.ADAPTERS:
        info = cls.info
        assert ALGORITHMS[info.name] is cls
        assert info.package == "pygmo" and info.label.endswith(" (pygmo)")
        assert info.multi_objective == (info.name in MULTI_OBJECTIVE)
        assert info.parallel == (info.name in BATCHED)
        # batch evaluation exactly where pygmo offers a batch hook
        assert info.parallel == hasattr(getattr(pygmo, cls.uda), "set_bfe")
    assert ALGORITHMS["pygmo-pso-gen"].info.label == "PSO generational (pygmo)"


@pytest.mark.parametrize("name", NAMES)
def test_batch_sizes(make, name):
    algorithm = make(name, population=10)
    sizes = [len(step(algorithm)) for _ in range(5)]
    if name == "pygmo-praxis":
        assert sizes == [8] * 5  # a local method from 8 start points (islands)
    elif name in BATCHED:
        assert sizes == [10] * 5  # every generation is one batch
    else:  # the initial populations of 8 islands, then pygmo's serial fitness on each island
        assert sizes == [80, 8, 8, 8, 8]
    assert ("islands" in algorithm.settings) == (name not in BATCHED)
    if name not in BATCHED:
        assert "8 islands" in algorithm.info.summary or "8 independent" in algorithm.info.summary


@pytest.mark.parametrize("name", sorted(BATCHED))
def test_generations_reach_the_batch_evaluator_with_told_values(make, evaluated, name):
    algorithm = make(name, population=10)
    told = []
    for _ in range(4):
        points = step(algorithm)
        told.append(errors_of(points) if name in MULTI_OBJECTIVE else sphere(points)[:, None])
    # the initial population is evaluated before the problem exists, hence told[1:]
    assert [nobj for nobj, _ in evaluated] == [3 if name in MULTI_OBJECTIVE else 1] * 3
    assert all(np.array_equal(v, t) for (_, v), t in zip(evaluated, told[1:], strict=True))


@pytest.mark.parametrize("name", sorted(MULTI_OBJECTIVE))
def test_a_single_error_component_is_given_twice(make, evaluated, name):
    algorithm = make(name, population=10)
    for _ in range(3):
        points = algorithm.ask()
        algorithm.tell(points, sphere(points), sphere(points))
    assert [nobj for nobj, _ in evaluated] == [2, 2]
    assert all(np.array_equal(v[:, 0], v[:, 1]) for _, v in evaluated)


@pytest.mark.parametrize("name", sorted(set(NAMES) - {"pygmo-praxis"}))  # see the next test
def test_seed_reaches_pygmo(make, name):
    """Same seed, same run; another seed changes pygmo's own draws, not just the start."""
    loops = [make(name, seed=seed).library_loop().keywords for seed in (4, 4, 5)]
    assert loops[0]["algorithm_seed"] == loops[1]["algorithm_seed"] != loops[2]["algorithm_seed"]
    runs = []
    for seed in (4, 4, 5):
        algorithm = make(name, seed=seed)
        runs.append(np.concatenate([step(algorithm) for _ in range(12)]))
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


def test_praxis_is_reproducible_through_nlopts_seed(make):
    """PRAXIS draws from NLopt's generator, seeded from the clock unless we seed it."""
    assert machinery._nlopt_srand() is not None

    def rosenbrock_run(seed: int) -> np.ndarray:
        algorithm = make("pygmo-praxis", seed=seed)
        points = []
        while not algorithm.done and len(points) < 2000:
            x = algorithm.ask()
            if len(x):
                z = 4 * x - 2
                f = (100 * (z[:, 1:] - z[:, :-1] ** 2) ** 2 + (1 - z[:, :-1]) ** 2).sum(axis=1)
                algorithm.tell(x, f, f)
                points.append(x)
        return np.concatenate(points)

    first, again, other = rosenbrock_run(3), rosenbrock_run(3), rosenbrock_run(4)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


@pytest.fixture
def constructed(monkeypatch):
    """The keyword arguments of every pygmo UDA constructed from now on, by class name."""
    made: dict[str, list[dict]] = {}
    for cls in adapters.ADAPTERS:
        if cls.uda == "nlopt":
            continue
        original = getattr(pygmo, cls.uda)

        def recording(*args, _name=cls.uda, _original=original, **kwargs):
            made.setdefault(_name, []).append(kwargs)
            return _original(*args, **kwargs)

        monkeypatch.setattr(pygmo, cls.uda, recording)
    return made


def test_settings_reach_pygmo(make, constructed):
    settings = {"omega": 0.5, "neighb_param": 2, "variant": 6, "max_vel": 0.3}
    algorithm = make("pygmo-pso-gen", settings=settings)
    for _ in range(2):
        step(algorithm)
    arguments = constructed["pso_gen"][-1]  # the UDA that evolves (the first only validated)
    assert arguments == {
        **ALGORITHMS["pygmo-pso-gen"].info.defaults,
        **settings,
        "gen": machinery.GENERATIONS,
        "seed": algorithm.library_loop().keywords["algorithm_seed"],
    }
    make("pygmo-de1220", settings={"allowed_variants": "1, 2"})
    assert constructed["de1220"][-1]["allowed_variants"] == [1, 2]
    make("pygmo-cmaes", settings={"sigma0": 0.1, "force_bounds": False})
    assert constructed["cmaes"][-1]["sigma0"] == 0.1
    assert constructed["cmaes"][-1]["force_bounds"] is False


def test_praxis_settings_reach_nlopt(make):
    def evaluations(settings):
        algorithm = make("pygmo-praxis", settings={"islands": 1, "restarts": 0, **settings})
        count = 0
        while not algorithm.done and count < 5000:
            count += len(step(algorithm))
        (result,) = algorithm.result
        assert np.allclose(result.champion_x, 0.3, atol=0.05)
        return count

    assert evaluations({"xtol_rel": 1e-2}) < evaluations({})
    algorithm = make("pygmo-praxis", settings={"x0": "0.2, 0.4, 0.6", "islands": 3})
    starts = algorithm.ask()  # island 0 at x0, the others at points drawn from the seed
    assert starts.shape == (3, 3) and np.array_equal(starts[0], [0.2, 0.4, 0.6])
    assert not np.array_equal(starts[1], starts[2])


@pytest.mark.parametrize("name", ["pygmo-gaco", "pygmo-maco"])
def test_kernel_is_clamped_to_the_population(make, constructed, name):
    make(name, population=8)
    assert constructed[name.removeprefix("pygmo-")][-1]["ker"] == 8
    make(name, population=30, settings={"ker": 12})
    assert constructed[name.removeprefix("pygmo-")][-1]["ker"] == 12
    with pytest.raises(ValueError, match=f"{name}.*'ker' must be at least 2"):
        make(name, settings={"ker": 1})  # pygmo's maco would crash


@pytest.mark.parametrize(
    ("name", "population", "minimum"),
    [
        ("pygmo-pso", 1, 2),  # pygmo crashes on a one-particle swarm
        ("pygmo-nsga2", 4, 5),
        ("pygmo-de", 4, 5),
        ("pygmo-sade", 6, 7),
        ("pygmo-de1220", 6, 7),
        ("pygmo-cmaes", 4, 5),
        ("pygmo-xnes", 3, 4),
        ("pygmo-abc", 1, 2),
    ],
)
def test_too_small_populations_are_refused(name, population, minimum):
    with pytest.raises(ValueError, match=f"{name}.*population of at least {minimum}, got"):
        create_algorithm(name, 3, population, 0, {})
    create_algorithm(name, 3, minimum, 0, {}).close()


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("pygmo-nsga2", {"cr": 2.0}, "invalid settings: .*crossover probability"),
        ("pygmo-pso", {"variant": 9}, "invalid settings: .*variant"),
        ("pygmo-pso", {"variant": 1.5}, "'variant' must be an integer"),
        ("pygmo-de", {"F": "big"}, "'F' must be a number"),
        ("pygmo-cmaes", {"force_bounds": "yes"}, "'force_bounds' must be true or false"),
        ("pygmo-de1220", {"allowed_variants": "2, x"}, "'allowed_variants' must list"),
        ("pygmo-de1220", {"allowed_variants": "2, 40"}, "invalid settings"),
        ("pygmo-nspso", {"diversity_mechanism": "none"}, "invalid settings"),
        ("pygmo-praxis", {"x0": 2.0}, "'x0' must lie in the unit cube"),
    ],
)
def test_bad_settings_are_named(name, settings, message):
    with pytest.raises(ValueError, match=f"{name}.*{message}"):
        create_algorithm(name, 3, 10, 0, settings)


@pytest.mark.parametrize("name", ["pygmo-pso", "pygmo-pso-gen", "pygmo-praxis"])
def test_exception_inside_pygmo_callbacks_surfaces(make, monkeypatch, name):
    """An exception raised in our problem or batch evaluator crosses pygmo's C++ intact."""

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(machinery._Problem, "fitness", broken)
    monkeypatch.setattr(machinery._BatchEvaluator, "__call__", broken)
    algorithm = make(name)
    with pytest.raises(AlgorithmError, match=f"{name}.*boom") as caught:
        step(algorithm)
    assert isinstance(caught.value.__cause__, RuntimeError)


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("name", ["pygmo-pso", "pygmo-nsga2", "pygmo-praxis"])
def test_closing_or_dropping_a_run_inside_pygmo_ends_its_thread(make, name, steps):
    """The bridge unwinds pygmo by raising in our callback; NLopt keeps evaluating after the
    first exception, which the adapter must refuse for the thread to end."""
    settings = {} if name in BATCHED else {"islands": 1}
    algorithm = make(name, seed=5, settings=settings)
    for _ in range(steps):
        step(algorithm)
    (thread,) = bridge_threads()
    algorithm.close()
    assert not thread.is_alive()

    dropped = create_algorithm(name, 3, 10, 5, settings)
    for _ in range(steps):
        step(dropped)
    (thread,) = bridge_threads()
    del dropped
    gc.collect()
    thread.join(timeout=2)
    assert not thread.is_alive()


def test_stopping_by_its_own_criterion_ends_the_run(make):
    """Without restarts, each island stops when its population has converged; the run when
    all have."""
    settings = {"ftol": 1e-3, "xtol": 1e-3, "islands": 3, "restarts": 0}
    algorithm = make("pygmo-de", settings=settings)
    sizes = []
    while not algorithm.done and sum(sizes) < 5000:
        sizes.append(len(step(algorithm)))
    assert algorithm.done and sum(sizes) < 5000
    assert algorithm.ask().shape == (0, 3)
    assert all(isinstance(result, pygmo.population) for result in algorithm.result)
    # converged, not given up: every island 5x below random search with as many points as the
    # whole run (measured 13x, 23x and 25x)
    uniform = np.random.Generator(np.random.PCG64(1)).random((sum(sizes), 3))
    assert all(result.champion_f[0] * 5 < sphere(uniform).min() for result in algorithm.result)
    assert min(sizes[1:]) < 3  # islands finish one after the other


# --- islands -------------------------------------------------------------------------------


def test_ring_migration_replaces_the_worst_by_better_neighbours():
    from neuroptimus.optimization.algorithms.islands import ring_migration

    x = [np.full((3, 2), float(i)) for i in range(3)]
    f = [np.array([[5.0], [1.0], [9.0]]), np.array([[2.0], [7.0], [3.0]]), np.array([[8.0]] * 3)]
    replies = ring_migration(list(zip(x, f, strict=True)), migrants=2)
    # island 0 receives island 2's best two (8, 8): only better than its worst (9)
    assert [(slot, fit[0]) for slot, _, fit in replies[0]] == [(2, 8.0)]
    # island 1 receives island 0's best two (1, 5) for its worst two (7, 3): only 1 is better
    assert [(slot, fit[0]) for slot, _, fit in replies[1]] == [(1, 1.0)]
    assert np.array_equal(replies[1][0][1], x[0][1])
    assert [(slot, fit[0]) for slot, _, fit in replies[2]] == [(0, 2.0), (1, 3.0)]
    assert ring_migration(list(zip(x, f, strict=True))[:1], migrants=2) == [[]]


def _run(make, settings, evaluations=400, seed=3):
    algorithm = make("pygmo-de", population=5, seed=seed, settings=settings)
    batches, count = [], 0
    while count < evaluations:
        batches.append(step(algorithm))
        count += len(batches[-1])
    return algorithm, batches


def test_islands_migrate_in_lockstep_and_stay_reproducible(make, monkeypatch):
    """Every migration happens when all islands are there (one exchange for all of them);
    the run is the same every time, and it differs from islands that never migrate."""
    exchanges = []
    original = machinery.ring_migration

    def counting(snapshots, migrants):
        exchanges.append(len(snapshots))
        return original(snapshots, migrants)

    monkeypatch.setattr(machinery, "ring_migration", counting)
    settings = {"islands": 3, "migration_interval": 2, "ftol": 0.0, "xtol": 0.0}
    _, first = _run(make, settings)
    # 3 islands × 5 individuals: 15 points per 2-generation epoch and island
    assert exchanges and set(exchanges) == {3}
    assert len(exchanges) == (400 - 15) // (3 * 5 * 2)
    _, again = _run(make, settings)
    _, apart = _run(make, {**settings, "migrants": 0})
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    epoch = 1 + 2 * 5  # the initial batch and the rounds of the first epoch: no migration yet
    assert all(np.array_equal(a, b) for a, b in zip(first[:epoch], apart[:epoch], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, apart, strict=True))


def test_islands_resume_bit_identically_across_migrations(make):
    settings = {"islands": 3, "migration_interval": 2}
    uninterrupted, expected = _run(make, settings)
    first, _ = _run(make, settings, evaluations=150)  # past several migrations
    resumed = make("pygmo-de", population=5, seed=3, settings=settings)
    resumed.restore(first.state())
    done = sum(len(points) for points, _, _ in first.journal_state()[1])
    later = [step(resumed) for _ in range(len(expected) - len(first.journal_state()[1]))]
    assert done >= 150
    assert all(np.array_equal(a, b) for a, b in zip(expected[-len(later) :], later, strict=True))


def test_island_seeds_follow_the_run_seed(make):
    """Islands differ from each other; the same seed gives the same islands."""
    first = make("pygmo-de", population=5, seed=1, settings={"islands": 4}).ask()
    again = make("pygmo-de", population=5, seed=1, settings={"islands": 4}).ask()
    other = make("pygmo-de", population=5, seed=2, settings={"islands": 4}).ask()
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert len({tuple(island.ravel()) for island in np.split(first, 4)}) == 4


@pytest.mark.parametrize("value", [0, 1.5, "many", True])
def test_bad_island_settings_are_named(value):
    with pytest.raises(ValueError, match="pygmo-de.*'islands' must be an integer"):
        create_algorithm("pygmo-de", 3, 10, 0, {"islands": value})
    with pytest.raises(ValueError, match="pygmo-de.*'migration_interval' must be at least 2"):
        create_algorithm("pygmo-de", 3, 10, 0, {"migration_interval": 1})


# --- use case 1 (real NEURON) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def hh_problem():
    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.optimization.problem.problem_file import load_problem
    from neuroptimus.usecases import problem_path

    return build_problem(load_problem(problem_path("hh")))  # regenerates the target


@pytest.mark.parametrize("name", ["pygmo-pso-gen", "pygmo-nsga2"])
def test_short_run_on_use_case_1_is_reproducible_and_told_the_components(
    hh_problem, evaluated, name
):
    asked, results = assert_reproducible(hh_problem, name, 8, 8)
    assert [points.shape for points in asked] == [(8, 3)] * 8
    components = len(hh_problem.component_names)
    assert {nobj for nobj, _ in evaluated} == {components if name in MULTI_OBJECTIVE else 1}
    # what pygmo received is what was evaluated: weighted components or totals
    weights = hh_problem.objective.weights
    told = [r.errors * weights if name in MULTI_OBJECTIVE else r.total[:, None] for r in results]
    first = evaluated[: len(told) - 1]  # the first run (the initial population precedes them)
    assert all(np.array_equal(v, t) for (_, v), t in zip(first, told[1:], strict=True))
