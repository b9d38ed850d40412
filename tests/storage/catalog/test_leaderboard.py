"""Leaderboards at an equal budget, comparisons and verification, against numbers computed by
hand."""

from __future__ import annotations

import math

import pytest
from variants import variant

from neuroptimus.storage.catalog.db.repository import InvalidInput, NotFound

L = math.log10


@pytest.fixture
def board(catalog, hh_run):
    """Runs of ``hh`` with hand-made curves (cumulative evaluations, best so far)."""
    ada = catalog.authenticate(catalog.issue_token("ada"))
    bob = catalog.authenticate(catalog.issue_token("bob", {"read", "upload", "verify"}))
    runs = {
        "c1": variant(hh_run, [(50, 4.0), (100, 1.0)], budget=100, seed=1),
        "c2": variant(hh_run, [(50, 2.0), (100, 0.5)], budget=100, seed=2),
        "c3": variant(hh_run, [(50, 3.0), (100, 2.0)], budget=100, seed=3),
        "d1": variant(hh_run, [(50, 10.0), (100, 0.1), (150, 0.01), (200, 0.001)], budget=200,
                      seed=1, algorithm_key="pygmo-de", algorithm_label="DE (pygmo)"),
        "d2": variant(hh_run, [(50, 1.0), (100, 0.2)], budget=100, seed=2,
                      algorithm_key="pygmo-de", algorithm_label="DE (pygmo)"),
        "short": variant(hh_run, [(50, 0.0001)], budget=50, algorithm_key="pso"),
        "partial": variant(hh_run, [(50, 0.0001)], budget=100, state="partial"),
    }  # fmt: skip
    for name, run in runs.items():
        catalog.put_run(run, bob if name == "d2" else ada)
    hidden = variant(hh_run, [(50, 1e-9), (100, 1e-9)], budget=100)
    catalog.put_run(hidden, ada, visibility="private")
    return catalog, runs, bob


def _stats(values):
    values = sorted(values)

    def quantile(q):  # linear interpolation between order statistics
        position = q * (len(values) - 1)
        low = math.floor(position)
        high = min(low + 1, len(values) - 1)
        return values[low] + (position - low) * (values[high] - values[low])

    return {"median": quantile(0.5), "q1": quantile(0.25), "q3": quantile(0.75),
            "min": values[0], "max": values[-1]}  # fmt: skip


def _close(found, expected):
    assert found.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(found[key], value, rel_tol=1e-12, abs_tol=1e-12), key


def test_the_leaderboard_at_the_common_budget_matches_a_hand_computation(board):
    catalog, _, _ = board
    table = catalog.leaderboard("hh", target=0.5)
    assert table["budget"] == 100  # most runs had 100 evaluations
    assert table["runs"] == 5 and table["excluded"] == {"below_budget": 1, "partial": 1}
    de, cmaes = table["groups"]
    assert (de["rank"], de["algorithm_key"], de["algorithm_label"]) == (1, "pygmo-de", "DE (pygmo)")
    assert (cmaes["rank"], cmaes["runs"], cmaes["seeds"], cmaes["uploaders"]) == (2, 3, 3, 1)
    assert (de["runs"], de["seeds"], de["uploaders"]) == (2, 2, 2)
    # final error after 100 evaluations (d1 had 200: its value at 100 counts)
    _close(cmaes["final"], _stats([1.0, 0.5, 2.0]))
    _close(de["final"], _stats([0.1, 0.2]))
    # grid of 100 marks (1 … 100): marks before 100 hold the first generation's best
    _close(cmaes["convergence"], _stats([99 * L(4), 99 * L(2) + L(0.5), 99 * L(3) + L(2)]))
    _close(de["convergence"], _stats([99 * L(10) + L(0.1), L(0.2)]))
    assert cmaes["success_rate"] == pytest.approx(1 / 3) and de["success_rate"] == 1.0


def test_other_budgets_grids_groupings_and_verified_runs(board):
    catalog, runs, bob = board
    coarse = catalog.leaderboard("hh", grid=10)  # marks 10, 20 … 100
    cmaes = next(g for g in coarse["groups"] if g["algorithm_key"] == "cmaes")
    _close(cmaes["convergence"], _stats([9 * L(4), 9 * L(2) + L(0.5), 9 * L(3) + L(2)]))
    longest = catalog.leaderboard("hh", budget=200)
    assert longest["runs"] == 1 and longest["excluded"]["below_budget"] == 5
    assert longest["groups"][0]["final"]["median"] == 0.001
    by_uploader = catalog.leaderboard("hh", group_by="uploader")
    assert {g["uploader"]: g["runs"] for g in by_uploader["groups"]} == {"ada": 4, "bob": 1}
    bobs = catalog.leaderboard("hh", uploader="bob")
    assert bobs["runs"] == 1 and bobs["groups"][0]["final"]["median"] == 0.2
    one_package = catalog.leaderboard("hh", package=runs["d2"].package)
    assert one_package["runs"] == 5 and catalog.leaderboard("hh", package="nope")["runs"] == 0
    catalog.record_verification(runs["c2"].run_id, bob, "resimulate-best", 0.5, 0.5000001,
                                True, {"rel_diff": 2e-7})  # fmt: skip
    catalog.record_verification(runs["c3"].run_id, bob, "resimulate-best", 2.0, 3.0, False, {})
    verified = catalog.leaderboard("hh", verified_only=True)
    assert verified["runs"] == 1 and verified["groups"][0]["final"]["median"] == 0.5
    shown = catalog.get_run(runs["c3"].run_id)
    assert shown["verified"] is False and shown["verifications"][0]["by"] == "bob"
    assert catalog.get_run(runs["c2"].run_id)["verifications"][0]["ok"] is True
    with pytest.raises(InvalidInput):
        catalog.leaderboard("hh", group_by="colour")
    with pytest.raises(NotFound):
        catalog.leaderboard("nope")


def test_curves_and_comparisons_on_a_common_grid(board):
    catalog, runs, _ = board
    chosen = [runs["c1"].run_id, runs["d1"].run_id]
    curves = catalog.curves(chosen)
    assert [row["cumulative_best"] for row in curves[runs["d1"].run_id]] == [10, 0.1, 0.01, 0.001]
    compared = catalog.compare(chosen, grid=4)
    assert compared["budget"] == 100 and compared["grid"] == [25, 50, 75, 100]
    d1 = next(r for r in compared["runs"] if r["run_id"] == runs["d1"].run_id)
    assert d1["curve"] == [10.0, 10.0, 10.0, 0.1] and d1["final"] == 0.1
    assert d1["convergence"] == pytest.approx(3 * L(10) + L(0.1))
    by_algorithm = catalog.compare(slug="hh", algorithms=["cmaes"], grid=2)
    assert by_algorithm["grid"] == [50, 100]  # common budget: the smallest of the runs'
    group = by_algorithm["groups"]["cmaes"]
    assert group["runs"] == 3 and group["median_curve"] == [3.0, 1.0]
    assert group["min_curve"] == [2.0, 0.5] and group["max_curve"] == [4.0, 2.0]
