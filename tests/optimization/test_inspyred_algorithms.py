"""inspyred-specific checks; the generic ones run in test_algorithms.py."""

from __future__ import annotations

import numpy as np
import pytest
from inspyred import ec, swarm
from inspyred.ec import archivers, emo, replacers, variators
from uc1_runs import assert_reproducible

from neuroptimus.optimization.algorithms import ALGORITHMS, AlgorithmError, create_algorithm
from neuroptimus.optimization.algorithms.inspyred_adapters import ADAPTERS

NAMES = [cls.info.name for cls in ADAPTERS]
SERIAL = {"inspyred-paes", "inspyred-sa"}
MULTI_OBJECTIVE = {"inspyred-nsga2", "inspyred-paes"}
EC_CLASS = {
    "inspyred-ceo": ec.EvolutionaryComputation,
    "inspyred-es": ec.ES,
    "inspyred-pso": swarm.PSO,
    "inspyred-nsga2": emo.NSGA2,
    "inspyred-de": ec.DEA,
    "inspyred-paes": emo.PAES,
    "inspyred-sa": ec.SA,
    "inspyred-ga": ec.GA,
    "inspyred-eda": ec.EDA,
}
# A non-default value for every setting, to check that each one reaches inspyred.
CUSTOM = {
    "inspyred-ceo": {
        "num_elites": 2,
        "mutation_rate": 0.3,
        "gaussian_stdev": 0.2,
        "tournament_size": 3,
        "crossover_rate": 0.9,
        "blx_alpha": 0.2,
    },
    "inspyred-es": {"tau": 0.4, "tau_prime": 0.3, "epsilon": 1e-3},
    "inspyred-pso": {
        "inertia": 0.7,
        "cognitive_rate": 1.5,
        "social_rate": 1.7,
        "topology": "ring",
        "neighborhood_size": 5,
    },
    "inspyred-nsga2": {
        "tournament_size": 3,
        "crossover_rate": 0.8,
        "blx_alpha": 0.3,
        "mutation_rate": 0.2,
        "gaussian_stdev": 0.3,
    },
    "inspyred-de": {
        "num_selected": 6,
        "tournament_size": 3,
        "crossover_rate": 0.7,
        "mutation_rate": 0.2,
        "gaussian_stdev": 0.3,
    },
    "inspyred-paes": {
        "max_archive_size": 20,
        "num_grid_divisions": 2,
        "mutation_rate": 0.5,
        "gaussian_stdev": 0.2,
        "islands": 1,
    },
    "inspyred-sa": {
        "temperature": 2.0,
        "cooling_rate": 0.5,
        "mutation_rate": 0.5,
        "gaussian_stdev": 0.2,
        "islands": 1,
    },
    "inspyred-ga": {
        "num_elites": 1,
        "num_crossover_points": 2,
        "crossover_rate": 0.9,
        "mutation_rate": 0.2,
        "gaussian_stdev": 0.3,
    },
    "inspyred-eda": {"num_selected": 3, "num_elites": 1},
}


def sphere(points: np.ndarray) -> np.ndarray:
    return ((points - 0.3) ** 2).sum(axis=1)


def step(algorithm, told: dict | None = None) -> np.ndarray:
    """ask, evaluate three proportional error components, tell (totals reversed, so that
    only an algorithm using the error vector minimises the sphere); returns the points."""
    points = algorithm.ask()
    values = sphere(points)
    errors = np.column_stack([values, 2 * values, 3 * values])
    if told is not None:
        told.update({tuple(p): list(e) for p, e in zip(points, errors, strict=True)})
    algorithm.tell(points, errors, -values if algorithm.info.multi_objective else values)
    return points


@pytest.fixture
def ecs(monkeypatch):
    """The inspyred EC objects whose ``evolve`` starts from now on, in order."""
    started = []
    evolve = ec.EvolutionaryComputation.evolve

    def recording_evolve(self, *args, **kwargs):
        started.append(self)
        return evolve(self, *args, **kwargs)

    monkeypatch.setattr(ec.EvolutionaryComputation, "evolve", recording_evolve)
    return started


def test_registry_facts():
    assert set(NAMES) <= set(ALGORITHMS) and len(NAMES) == 9
    for name in NAMES:
        info = ALGORITHMS[name].info
        assert info.package == "inspyred" and info.label.endswith("(inspyred)")
        assert info.multi_objective == (name in MULTI_OBJECTIVE)
        assert info.parallel == (name not in SERIAL)
        assert set(CUSTOM[name]) == set(info.defaults)


@pytest.mark.parametrize("population", [10, 7])
def test_ceo_defaults_are_the_papers_and_reach_inspyred(make, ecs, population):
    defaults = ALGORITHMS["inspyred-ceo"].info.defaults
    assert defaults["mutation_rate"] == 0.25 and defaults["gaussian_stdev"] == 0.5
    assert defaults["num_elites"] is None  # half the population
    algorithm = make("inspyred-ceo", population=population)
    for _ in range(3):
        step(algorithm)
    (run,) = ecs
    assert type(run) is ec.EvolutionaryComputation and run.maximize is False
    assert run._kwargs["num_elites"] == population // 2
    assert run._kwargs["mutation_rate"] == 0.25 and run._kwargs["gaussian_stdev"] == 0.5
    assert run.variator == [variators.blend_crossover, variators.gaussian_mutation]
    assert run.replacer is replacers.generational_replacement
    assert len(run.population) == population


@pytest.mark.parametrize("which", ["defaults", "custom"])
@pytest.mark.parametrize("name", NAMES)
def test_settings_reach_inspyred(make, ecs, name, which):
    settings = CUSTOM[name] if which == "custom" else {}
    algorithm = make(name, settings=settings)
    algorithm.ask()
    run = ecs[0]  # (serial algorithms: of the first island)
    assert len(ecs) == algorithm.settings.get("islands", 1)
    assert type(run) is EC_CLASS[name] and run.maximize is False
    assert isinstance(run.bounder, ec.Bounder) and run.bounder([-1, 0.5, 2], {}) == [0, 0.5, 1]
    expected = {**algorithm.info.defaults, **settings}
    expected.pop("islands", None)  # the adapter's, not inspyred's
    assert {key: run._kwargs[key] for key in expected if expected[key] is not None} == {
        key: value for key, value in expected.items() if value is not None
    }
    if name == "inspyred-pso":
        topology = "ring" if which == "custom" else "star"
        assert run.topology is getattr(swarm.topologies, f"{topology}_topology")


@pytest.mark.parametrize(
    ("name", "settings", "population", "match"),
    [
        ("inspyred-ceo", {"mutation_rate": 1.5}, 10, "'mutation_rate' must be a number in"),
        ("inspyred-ceo", {"num_elites": 2.5}, 10, "'num_elites' must be an integer"),
        ("inspyred-ceo", {"num_elites": 11}, 10, "'num_elites'"),
        ("inspyred-ceo", {}, 1, "population of at least 2"),
        ("inspyred-es", {"epsilon": 0}, 10, "'epsilon'"),
        ("inspyred-pso", {"topology": "square"}, 10, "'topology' must be 'star' or 'ring'"),
        ("inspyred-pso", {"inertia": "fast"}, 10, "'inertia'"),
        ("inspyred-nsga2", {"gaussian_stdev": 0}, 10, "'gaussian_stdev'"),
        ("inspyred-de", {"num_selected": 20}, 10, "'num_selected'"),
        ("inspyred-paes", {"max_archive_size": True}, 10, "'max_archive_size'"),
        ("inspyred-sa", {"cooling_rate": 0}, 10, "'cooling_rate'"),
        ("inspyred-ga", {"num_crossover_points": 0}, 10, "'num_crossover_points'"),
        ("inspyred-eda", {}, 3, "population of at least 4"),
    ],
)
def test_bad_settings_are_refused_naming_the_algorithm(name, settings, population, match):
    with pytest.raises(ValueError, match=match) as caught:
        create_algorithm(name, 3, population, 1, settings)
    assert repr(name) in str(caught.value)


@pytest.mark.parametrize("name", sorted(MULTI_OBJECTIVE))
def test_multi_objective_algorithms_get_the_error_vectors(make, ecs, name):
    algorithm = make(name, settings={"islands": 1} if name in SERIAL else {})
    told: dict = {}
    for _ in range(6):
        step(algorithm, told)
    (run,) = ecs
    for individual in run.population + run.archive:
        assert isinstance(individual.fitness, emo.Pareto)
        assert individual.fitness.values == told[tuple(individual.candidate)]
    # The proportional components make the best point the whole Pareto front (minimising,
    # while the reversed totals would pick the worst).
    best = min(told.values())
    assert [individual.fitness.values for individual in run.archive] == [best]


@pytest.mark.parametrize("name", NAMES)
def test_one_batch_per_generation(make, ecs, name):
    algorithm = make(name)
    size = 8 if name in SERIAL else 10  # serial: one point from each of 8 islands
    assert all(len(step(algorithm)) == size for _ in range(4))
    assert len(ecs) == (8 if name in SERIAL else 1)
    for run in ecs:
        # The initial population, then three generations, each one evaluator call.
        assert (run.num_generations, run.num_evaluations) == (3, 4 * size // len(ecs))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_points_different_seed_different(make, name):
    def points(seed: int) -> np.ndarray:
        algorithm = make(name, seed=seed)
        return np.concatenate([step(algorithm) for _ in range(5)])

    first = points(3)
    assert np.array_equal(first, points(3))
    assert not np.array_equal(first, points(4))


def test_paes_runs_keep_their_own_adaptive_grid(make):
    """inspyred keeps PAES's grid on a module-level function, sized by the first run's number
    of objectives and grid divisions; a shared grid would break the next, larger run."""

    def step_k(algorithm, k: int) -> None:
        points = algorithm.ask()
        errors = np.column_stack([((points - c) ** 2).sum(axis=1) for c in np.linspace(0, 1, k)])
        algorithm.tell(points, errors, errors.sum(axis=1))

    small, large = make("inspyred-paes"), make("inspyred-paes", settings={"num_grid_divisions": 3})
    for _ in range(40):
        step_k(small, 1)
        step_k(large, 4)
    assert not hasattr(archivers.adaptive_grid_archiver, "grid_population")


def test_library_failure_names_the_algorithm(make, monkeypatch):
    def broken(random, candidates, args):
        raise RuntimeError("boom")

    monkeypatch.setattr(variators, "blend_crossover", broken)
    algorithm = make("inspyred-nsga2")
    with pytest.raises(AlgorithmError, match="'inspyred-nsga2'.*boom"):
        step(algorithm)


# --- a short run on use case 1 (real NEURON simulations) ------------------------------------


@pytest.fixture(scope="module")
def hh_problem():
    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.optimization.problem.problem_file import load_problem
    from neuroptimus.usecases import problem_path

    return build_problem(load_problem(problem_path("hh")))  # regenerates the target


@pytest.mark.parametrize("name", ["inspyred-pso", "inspyred-nsga2"])
def test_short_run_on_use_case_1_is_reproducible(hh_problem, name):
    from neuroptimus.optimization.problem.problem_file import with_overrides

    spec = with_overrides(hh_problem.spec, algorithm=name, population=8, generations=5, seed=1)
    assert spec.algorithm.name == name  # the registry makes the name valid in problem files
    asked, results = assert_reproducible(hh_problem, name, 8, 5)
    assert [points.shape for points in asked] == [(8, 3)] * 5
    assert [result.errors.shape for result in results] == [(8, 4)] * 5
