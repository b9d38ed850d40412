"""How far to trust a fit, from a real run store of a cheap problem whose `unused` parameter
the model never reads (tests/analysis/trust_runs.py): the identifiability table flags it and
only it, the CSV holds one row per parameter, the report and the explorer show it."""

from __future__ import annotations

import csv
import shutil
from functools import partial

import numpy as np
import pytest
from typer.testing import CliRunner

from neuroptimus.analysis.report import report_parts
from neuroptimus.analysis.snapshot import read_snapshot
from neuroptimus.analysis.trust_tables import identifiability_of
from neuroptimus.flows.cli import app
from neuroptimus.optimization.trust.identifiability import analyse
from neuroptimus.storage.runs.run_store import RunStore
from tests.analysis import trust_runs


@pytest.fixture(scope="module")
def wave_store(tmp_path_factory):
    return trust_runs.wave_store_in(tmp_path_factory.mktemp("wave"))


@pytest.fixture(scope="module")
def tradeoff_store(tmp_path_factory):
    """The two-gain variant (only their product matters; the period's bound is below the
    recording's 40 ms), CMA-ES 20 × 20."""
    folder = tmp_path_factory.mktemp("tradeoff")
    return trust_runs.in_fresh_process(partial(trust_runs.run_store, tradeoff=True), folder)


def test_the_parameter_the_model_never_reads_is_the_one_not_constrained(wave_store):
    result = identifiability_of(wave_store)
    by_name = {p.name: p for p in result.parameters}
    assert result.evaluated == 400
    assert by_name["unused"].not_constrained
    assert by_name["unused"].constraint_z < 2
    for name in ("amplitude_mV", "period_ms"):  # the model's trace depends on both
        assert not by_name[name].not_constrained, name
        assert by_name[name].constraint_z > 4, name
    # the near-optimal set: within a factor 2 of the best, its ranges contain the best
    rows = RunStore.open(wave_store).evaluations()
    assert np.all(rows["total"][result.near_rows] <= 2 * result.best_total)
    assert len(result.near_rows) == np.count_nonzero(rows["total"] <= 2 * result.best_total)
    for p in result.parameters:
        assert p.near_low <= p.best <= p.near_high
    # the near-optimal fits spread much wider in the unused parameter than in the others
    assert by_name["unused"].near_width > 2.5 * by_name["amplitude_mV"].near_width


def test_a_trade_off_is_a_correlation_and_a_best_at_its_bound_is_flagged(tradeoff_store):
    result = identifiability_of(tradeoff_store)
    gain_a, gain_b, period = result.parameters
    # only the product matters: among the near-optimal fits, one gain falls as the other rises
    assert len(result.near_rows) >= 10
    assert gain_a.correlated[0][0] == "gain_b" and gain_a.correlated[0][1] < -0.8
    assert "correlated with gain_a" in "; ".join(gain_b.flags)
    # each gain is determined once the other is given: the dependence test sees both
    assert not gain_a.not_constrained and not gain_b.not_constrained
    # the recording's period (40 ms) lies beyond the upper bound (39.8 ms)
    assert period.bound == "upper" and "at upper bound" in period.flags
    assert not period.correlated


def test_profile_is_the_lower_envelope_of_the_stored_totals(wave_store):
    snapshot = read_snapshot(wave_store)
    result = identifiability_of(snapshot)
    profile = result.parameters[0].profile
    unit = snapshot.unit[:, 0]
    bins = len(profile.envelope)
    for b in range(bins):
        inside = (np.minimum((unit * bins).astype(int), bins - 1)) == b
        if inside.any():
            assert profile.envelope[b] == snapshot.rows["total"][inside].min()
        else:
            assert np.isnan(profile.envelope[b])
    assert np.nanmin(profile.envelope) == result.best_total


def test_the_dependence_test_does_not_see_time_as_an_effect(wave_store):
    """Each parameter's values shuffled among the individuals of their generation keep the
    optimizer's drift (late, good individuals where it converged) but lose any effect: the
    test then flags every parameter."""
    snapshot = read_snapshot(wave_store)
    rows = snapshot.rows
    unit = snapshot.unit.copy()
    rng = np.random.default_rng(0)
    for g in np.unique(rows["generation"]):
        members = np.flatnonzero(rows["generation"] == g)
        for j in range(unit.shape[1]):
            unit[members, j] = unit[rng.permutation(members), j]
    shuffled = analyse(
        snapshot.parameters, rows["parameters"], unit, rows["total"], rows["errors"],
        rows["status"], rows["generation"],
    )  # fmt: skip
    assert all(p.not_constrained for p in shuffled.parameters)


def test_analyze_identifiability_prints_the_table_and_writes_the_csv(wave_store, tmp_path):
    report = (wave_store / "report.html").exists()
    out = tmp_path / "trust.csv"
    result = CliRunner().invoke(app, ["analyze", str(wave_store), "--identifiability",
                                      "--csv", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line}
    assert "not constrained" in lines["unused"]
    assert "not constrained" not in lines["amplitude_mV"]
    assert "near-optimal: total ≤ 2 × best" in result.output
    with open(out, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["parameter"] for row in table] == ["amplitude_mV", "unused", "period_ms"]
    assert {"best", "near_optimal_low", "near_optimal_high", "near_optimal_width",
            "envelope_rise_decades", "constraint_z", "flags"} <= set(table[0])  # fmt: skip
    assert table[1]["flags"] == "not constrained"
    assert float(table[0]["constraint_z"]) > 4
    assert (wave_store / "report.html").exists() == report  # a table only: no report rewrite
    # a wider near-optimal set admits more individuals
    wider = CliRunner().invoke(app, ["analyze", str(wave_store), "--identifiability",
                                     "--factor", "10", "--csv", str(out)])  # fmt: skip
    assert "total ≤ 10 × best" in wider.output


def test_a_store_with_no_successful_individual_is_one_line(wave_store, tmp_path):
    broken = tmp_path / "failed.zarr"
    shutil.copytree(wave_store, broken)
    store = RunStore.open(broken, mode="r+")
    status = store.group["evaluations"]["status"]
    status[...] = np.ones(status.shape, dtype=status.dtype)
    result = CliRunner().invoke(app, ["analyze", str(broken), "--identifiability"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: no successfully evaluated individual to analyse: every stored evaluation failed"
    )


def test_report_has_the_identifiability_section_and_says_how_to_add_sensitivity(wave_store):
    parts = report_parts(RunStore.open(wave_store))
    text = "\n".join(p for p in parts if isinstance(p, str))
    assert "How far to trust the fit: identifiability" in text
    assert "<td>unused</td>" in text and "not constrained" in text
    assert "neuroptimus analyze STORE --sensitivity" in text
    titles = [getattr(p, "opts", None) and p.opts.get().kwargs.get("title") for p in parts]
    assert any(t and t.startswith("Profiles: lowest total error") for t in titles)


def test_near_optimal_for_features_is_every_feature_within_k_sd_else_the_factor():
    from neuroptimus.optimization.trust.identifiability import near_optimal

    # components of a features target: |mean − value| / std per feature
    errors = np.array([[0.5, 1.9], [2.5, 0.1], [1.0, 1.0], [0.2, 0.3], [1.5, 1.5], [0.0, 2.0],
                       [3.0, 3.0]])  # fmt: skip
    total = errors.sum(axis=1)
    mask, threshold, rule = near_optimal(total, errors, features=True, k_sd=2.0)
    assert list(mask) == [True, False, True, True, True, True, False]
    assert threshold is None and rule == "every feature within 2 standard deviations"
    # with fewer than 5 such individuals the factor applies, and the rule says so
    mask, threshold, rule = near_optimal(total, errors, features=True, k_sd=1.0)
    assert threshold == pytest.approx(2 * 0.5) and list(mask) == [False] * 3 + [True] + [False] * 3
    assert "fewer than 5 individuals have every feature within 1 SD" in rule
