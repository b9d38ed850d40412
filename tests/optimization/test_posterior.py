"""Posterior sampling (algorithm emcee) on real runs of a UC1-like problem: a charging curve
with three parameters fitted to a recording made from known true values plus noise of SD
1 mV (tests/optimization/charging.py). The true values lie inside the 95 % intervals,
the intervals agree with the posterior computed on a grid, a run stopped halfway and resumed
stores the same chain, and a problem with no likelihood is refused in one line."""

from __future__ import annotations

import csv
from functools import partial

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroptimus.analysis.posterior_tables import contains, posterior_of
from neuroptimus.flows.benchmarks import posterior as charging
from neuroptimus.flows.cli import app
from neuroptimus.optimization.loop.preflight import check_algorithm
from neuroptimus.optimization.problem.problem_file import load_problem
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.storage.runs.algorithm_rows import read_rows
from neuroptimus.storage.runs.run_store import RunStore
from tests.analysis.trust_runs import in_fresh_process

POPULATION, GENERATIONS = 8, 300  # 16 walkers, about 150 steps, 2,400 evaluations


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("charging")
    run = partial(charging.run_store, population=POPULATION, generations=GENERATIONS)
    return in_fresh_process(run, folder)


def chain(path):
    store = RunStore.open(path)
    return read_rows(store.group, "chain", int(store.attrs["chain_steps"]))


def test_the_true_values_lie_inside_the_intervals_which_match_the_grid_posterior(sampled):
    summary = posterior_of(sampled, burn=50)
    assert summary.walkers == 2 * POPULATION
    assert summary.steps >= (GENERATIONS - 2) // 2
    assert contains(summary, charging.TRUE) == dict.fromkeys(charging.TRUE, True)
    for axis, marginal in enumerate(summary.parameters):
        low, high = charging.grid_interval(axis)
        # a likelihood off by a factor (a missing N, range² or σ²) moves the ends by the width
        assert abs(marginal.low - low) < 0.25 * (high - low), marginal
        assert abs(marginal.high - high) < 0.25 * (high - low), marginal
        assert 1 < marginal.tau_steps < summary.steps - summary.burn
    assert 0.2 < summary.acceptance < 0.8
    # every stored step is the walkers' log-probability at their stored positions
    rows = RunStore.open(sampled).evaluations()
    stored = chain(sampled)
    last = stored["log_probability"][-1]
    assert np.all(np.isfinite(last)) and np.all(last <= 0)
    # log L = -1/2 N range² MSE / σ² (σ = 1 mV, N = 61 samples) of an evaluated individual
    evaluated = -0.5 * rows["errors"][:, 0] * 61 * np.ptp(charging.recording()) ** 2
    assert all(np.isclose(evaluated, value, rtol=1e-8, atol=0).any() for value in last)


def whole_and_resumed(folder):
    """The same short run uninterrupted, and stopped after generation 17 (a half-step: the
    state holds the split of the step under way) then resumed to its end."""
    run = partial(charging.run_store, folder, population=4, generations=41)
    whole = run(name="whole.zarr")
    run(name="halves.zarr", stop_after=17)
    return whole, run(name="halves.zarr")


def test_a_run_stopped_halfway_and_resumed_stores_the_same_chain(tmp_path):
    whole, halves = in_fresh_process(whole_and_resumed, tmp_path)
    first, second = chain(whole), chain(halves)
    assert len(first["positions"]) >= 15
    for name in ("positions", "log_probability", "accepted"):
        assert np.array_equal(first[name], second[name]), name
    rows = [RunStore.open(path).evaluations() for path in (whole, halves)]
    assert np.array_equal(rows[0]["parameters"], rows[1]["parameters"])


def test_analyze_posterior_prints_the_table_and_writes_the_csv(sampled, tmp_path):
    out = tmp_path / "posterior.csv"
    result = CliRunner().invoke(
        app, ["analyze", str(sampled), "--posterior", "--burn", "50", "--csv", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "95 % interval" in result.output and "mean acceptance fraction" in result.output
    assert "shorter than 50 autocorrelation times" in result.output  # a short chain, said so
    with open(out, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["parameter"] for row in table] == ["rest_mV", "amplitude_mV", "tau_ms"]
    assert float(table[1]["ci95_low"]) < 10 < float(table[1]["ci95_high"])
    refused = CliRunner().invoke(app, ["analyze", str(sampled), "--posterior", "--burn", "999"])
    assert refused.exit_code == 2 and "give a burn-in below that" in refused.output


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"settings": {}}, "give the trace noise SD as the algorithm setting noise_sd_mV"),
        ({"costs": ["MSE", "Spike count"]}, "set the weight of Spike count to 0"),
        ({"stopping": True}, "remove stopping.error_target"),
        ({"chain": True}, "cannot be a stage of a chain"),
    ],
)
def test_a_problem_without_a_likelihood_is_refused_in_one_line(tmp_path, change, message):
    spec = load_problem(charging.write_problem(tmp_path, settings=change.get("settings")))
    if "costs" in change:
        terms = [{"name": name} for name in change["costs"]]
        spec = spec.model_copy(update={"costs": spec.costs.model_validate({"functions": terms})})
    if "stopping" in change:
        spec = spec.model_copy(update={"stopping": spec.stopping.model_copy(
            update={"error_target": 0.1})})  # fmt: skip
    if "chain" in change:
        algorithm = spec.algorithm.model_validate({"chain": [
            {"name": "cmaes", "evaluations": 40},
            {"name": "emcee", "evaluations": 40, "settings": {"noise_sd_mV": 1.0}},
        ]})  # fmt: skip
        spec = spec.model_copy(update={"algorithm": algorithm})
    with pytest.raises(SpecError, match=message) as refused:
        check_algorithm(spec)
    assert "\n" not in str(refused.value)


def test_the_report_and_the_explorer_show_the_posterior(sampled):
    from neuroptimus.analysis.explorer import TABS, Explorer
    from neuroptimus.analysis.report import report_parts

    parts = report_parts(RunStore.open(sampled))
    text = "\n".join(p for p in parts if isinstance(p, str))
    assert ">Posterior<" in text
    assert "<td>10 (inside)</td>" in text  # the true amplitude, inside its interval
    titles = [getattr(p, "opts", None) and p.opts.get().kwargs.get("title") for p in parts]
    assert any(t and t.startswith("Posterior: ") for t in titles)
    assert "Walkers (burn-in shaded)" in titles
    explorer = Explorer([str(sampled)])
    explorer.tabs.active = TABS.index("posterior")
    views = explorer.holders["posterior"].objects
    assert "95 % interval" in views[1].object and len(views) == 4


def test_a_features_problem_has_the_likelihood_of_its_z_scores_whatever_the_weights(tmp_path):
    """UC1's soma scored by eFEL features (tests/analysis/features_run.py): told the weighted
    components w·z, the likelihood is -1/2 Σ z² (the weights choose what an optimizer
    stresses, not the likelihood); a trace noise SD is refused for it."""
    from neuroptimus.optimization.evaluation.problem import build_problem
    from neuroptimus.optimization.scoring.likelihood import NoLikelihoodError, likelihood_of
    from tests.analysis.features_run import write_features_problem

    spec = load_problem(write_features_problem(tmp_path))
    terms = [term.model_copy(update={"weight": w}) for term, w in
             zip(spec.costs.features, (1.0, 2.0, 0.0), strict=True)]  # fmt: skip
    spec = spec.model_copy(update={"costs": spec.costs.model_copy(update={"features": terms})})
    spec = spec.model_copy(update={"algorithm": spec.algorithm.model_validate(
        {"name": "emcee", "population": 4})})  # fmt: skip
    check_algorithm(spec)  # z-scores: nothing to add
    problem = build_problem(spec, [])
    likelihood = likelihood_of(problem)
    z = np.array([[1.0, 2.0, 3.0] * 3, [0.5, 0.0, 9.0] * 3])  # three sweeps of three features
    told = z * problem.objective.weights
    used = problem.objective.weights > 0  # a feature of weight 0 is left out
    assert np.allclose(likelihood(told), -0.5 * (z[:, used] ** 2).sum(axis=1))
    assert likelihood.kind == "feature z-scores"
    with pytest.raises(NoLikelihoodError, match="feature targets carry their own SD"):
        likelihood_of(problem, noise_sd_mV=1.0)


def test_a_warm_start_puts_the_walkers_in_a_small_ball_around_the_best_point():
    from neuroptimus.optimization.algorithms import create_algorithm
    from neuroptimus.optimization.algorithms.emcee_adapter import MAX_START_SCALE
    from neuroptimus.optimization.algorithms.start import StartingPoint

    sampler = create_algorithm("emcee", 3, 6, 1, {})
    best = np.array([0.2, 0.5, 0.8])
    points = np.vstack([best, best + 0.3, best - 0.1])
    assert sampler.start_from(StartingPoint(points, np.array([1.0, 5.0, 3.0]))) is None
    first = sampler.ask()  # the initial ensemble, one half per ask
    sampler.tell(first, np.zeros((6, 1)), np.zeros(6))
    walkers = np.vstack([first, sampler.ask()])
    assert walkers.shape == (12, 3)
    assert np.all(np.abs(walkers - best) < 5 * MAX_START_SCALE)
    assert np.all(walkers.std(axis=0) > 0)


def test_a_stuck_walker_is_left_out_and_named():
    """Fifteen walkers drawing a standard normal (log p = -x²/2) and one sitting at x = 12
    (log p = -72, accepting nothing), as a walker caught in a corner of the bounds does: the
    interval is the normal's, and the warning names walker 3."""
    from neuroptimus.optimization.trust.posterior import summarise

    rng = np.random.default_rng(2)
    positions = rng.standard_normal((400, 16, 1))
    positions[:, 3] = 12.0
    accepted = rng.random((400, 16)) < 0.6
    accepted[:, 3] = False
    summary = summarise(["x"], positions, accepted, -0.5 * positions[..., 0] ** 2, burn=100)
    assert list(summary.stuck) == [3]
    assert summary.parameters[0].low == pytest.approx(-1.96, abs=0.1)
    assert summary.parameters[0].high == pytest.approx(1.96, abs=0.1)
    assert len(summary.samples) == 300 * 15 and 0.55 < summary.acceptance < 0.65
    assert any("walker 3) at least 72 below" in note for note in summary.warnings)
    moving = summarise(["x"], positions[:, :3], accepted[:, :3],
                       -0.5 * positions[:, :3, 0] ** 2, burn=100)  # fmt: skip
    assert not len(moving.stuck)
