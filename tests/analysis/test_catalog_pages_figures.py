"""The catalog's figures come from the curves it keeps: a catalog comparison of the real
``hh`` run gives the same curve and scores as ``neuroptimus.analysis.comparison`` computes from
its store, and the paper's figures and the generation plot render as embeddable Bokeh components."""

from __future__ import annotations

import numpy as np
import pytest

from neuroptimus.analysis.comparison import score_run
from neuroptimus.storage.catalog.db.database import open_catalog
from neuroptimus.storage.catalog.intake.ingest import run_from_store
from neuroptimus.storage.catalog.web import figures as cf


def _comparison() -> dict:
    """A comparison in ``Catalog.compare``'s shape: two algorithms, a run without a curve."""
    rng = np.random.default_rng(0)
    runs = []
    for key, label, scale in (("cmaes", "CMA-ES (cmaes)", 1.0), ("random", "Random search", 9.0)):
        for seed in range(3):
            curve = np.minimum.accumulate(scale * rng.uniform(0.5, 1.0, 5) / np.arange(1, 6))
            score = float(np.log10(curve).sum())
            runs.append({"run_id": f"{key}-{seed}", "algorithm_key": key, "algorithm_label": label,
                         "seed": seed, "budget": 50, "curve": curve.tolist(),
                         "final": float(curve[-1]), "convergence": score})  # fmt: skip
    runs.append({"run_id": "empty", "algorithm_key": "x", "algorithm_label": "X", "seed": 0,
                 "budget": 50, "curve": None, "final": None, "convergence": None})  # fmt: skip
    return {"budget": 50, "grid": [10, 20, 30, 40, 50], "runs": runs}


def test_a_catalog_comparison_scores_runs_as_the_stores_do(tmp_path, hh_run_store):
    catalog = open_catalog(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    run = run_from_store(hh_run_store)
    catalog.put_run(run, catalog.authenticate(catalog.issue_token("alice")))
    population, budget = run.population, run.budget
    # a grid of one point per generation: the store's own scoring step
    comparison = catalog.compare(run_ids=[run.run_id], budget=budget, grid=budget // population)
    (mine,) = cf.run_scores(comparison, {run.run_id: run.model_dump()})
    theirs = score_run(hh_run_store, population, budget)
    np.testing.assert_array_equal(mine.curve, theirs.curve)
    assert mine.final == theirs.final and mine.step == theirs.step == population
    assert mine.convergence == pytest.approx(theirs.convergence)
    assert (mine.algorithm, mine.seed) == (theirs.algorithm, theirs.seed)
    assert mine.evaluations == theirs.evaluations
    assert mine.evaluations_to_best == run.evaluations_to_best


def test_runs_without_a_curve_on_the_grid_are_left_out():
    scored = cf.run_scores(_comparison(), {"cmaes-0": {"evaluations": 50, "wall_seconds": 2.5}})
    assert len(scored) == 6 and "empty" not in {s.store for s in scored}
    first = scored[0]
    assert (first.step, first.budget, first.evaluations, first.seconds) == (10, 50, 50, 2.5)
    assert cf.comparison_figures([]) == []


def test_the_figures_embed_as_bokeh_components(hh_run_store):
    convergence, boxes = cf.comparison_figures(cf.run_scores(_comparison()))
    script, div = cf.embed(convergence)
    assert "data-root-id" in div and "<script" in script
    assert "Convergence: median cumulative minimum" in script  # the title, in the document
    assert "CMA-ES (cmaes)" in script and "Random search" in script
    script, _ = cf.embed(boxes)
    assert "Final score (lowest error)" in script and "Convergence score" in script
    curve = run_from_store(hh_run_store).curve
    evaluations, best = cf.cumulative_points(curve)
    assert list(evaluations) == [row.evaluations for row in curve]
    assert list(best) == list(np.minimum.accumulate([row.best for row in curve]))
    script, div = cf.embed(cf.generation_figure(curve, "Generation plot"))
    assert "Generation plot" in script and "best so far" in script
    assert cf.embed(None) == ("", "")
