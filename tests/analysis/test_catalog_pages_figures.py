"""The catalog's figures are built from generation curves alone: on generation boundaries
they give the same curves and scores as ``analysis.comparison`` computes from the stores, and
they render as embeddable Bokeh components."""

from __future__ import annotations

import numpy as np
import pytest

from analysis import catalog_figures as cf
from analysis.comparison import score_run
from optimization.scores import convergence_curve
from storage.catalog.schema import GenerationRow
from tests.analysis.conftest import make_store


def _curve_of(store) -> list[GenerationRow]:
    """The catalog's rows of a store: each generation's own minimum, cumulative count."""
    totals = store.evaluations()["total"]
    generations = store.evaluations()["generation"]
    rows, running = [], np.inf
    for g in range(store.committed_generations):
        mine = totals[generations == g]
        running = min(running, float(mine.min()))
        rows.append(GenerationRow(generation=g, evaluations=int(np.count_nonzero(generations <= g)),
                                  best=float(mine.min()), cumulative_best=running,
                                  median=float(np.median(mine))))  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalog-figures")
    return [make_store(folder, "cmaes", "CMA-ES (cmaes)", seed=s, generations=4, population=6)
            for s in (1, 2)] + [make_store(folder, "random", "Random search", seed=3,
                                           generations=4, population=6)]  # fmt: skip


def _row(store, run_id):
    attrs = store.attrs
    return {"run_id": run_id, "algorithm_label": attrs["algorithm"]["label"],
            "seed": attrs["seed"], "population": attrs["spec"]["algorithm"]["population"],
            "budget": attrs["budget"], "evaluations": store.committed_evaluations}  # fmt: skip


def test_scores_from_curves_equal_the_scores_from_the_stores(stores):
    runs = [_row(s, f"run-{i}") for i, s in enumerate(stores)]
    curves = {r["run_id"]: _curve_of(s) for r, s in zip(runs, stores, strict=True)}
    step, budget = cf.common_grid(runs)
    assert step == 6
    scored = cf.run_scores(runs, curves)
    assert [s.store for s in scored] == ["run-0", "run-1", "run-2"]
    for store, mine in zip(stores, scored, strict=True):
        theirs = score_run(store.path, step, budget)
        np.testing.assert_array_equal(mine.curve, theirs.curve)
        assert mine.final == theirs.final
        assert mine.convergence == pytest.approx(theirs.convergence)
        assert mine.algorithm == theirs.algorithm and mine.seed == theirs.seed


def test_grid_reads_generation_ends_and_keeps_the_last_value():
    rows = [{"generation": 0, "evaluations": 4, "best": 8.0},
            {"generation": 1, "evaluations": 8, "best": 9.0},  # worse: the best so far stays
            {"generation": 2, "evaluations": 12, "best": 2.0, "cumulative_best": 2.0}]  # fmt: skip
    # step 2 is finer than the generations: a mark reads the last generation finished by then
    assert list(cf.grid_curve(rows, 2, 16)) == [8, 8, 8, 8, 8, 2, 2, 2]
    totals = np.array([9, 8, 9, 9, 9, 9, 9, 9, 2, 5, 5, 5], dtype=float)
    np.testing.assert_array_equal(cf.grid_curve(rows, 4, 16), convergence_curve(totals, 4, 16))
    with pytest.raises(ValueError, match="without a scored generation"):
        cf.grid_curve([{"generation": 0, "evaluations": 4, "best": None}], 4, 8)
    with pytest.raises(ValueError, match="step"):
        cf.grid_curve(rows, 5, 4)


def test_runs_without_a_curve_are_left_out():
    runs = [
        {"run_id": "a", "algorithm_label": "A", "seed": 1, "population": 2, "budget": 4},
        {"run_id": "b", "algorithm_label": "B", "seed": 1, "population": 2, "budget": 4},
    ]
    curves = {"a": [{"generation": 0, "evaluations": 2, "best": 1.0}]}
    scored = cf.run_scores(runs, curves)
    assert [s.store for s in scored] == ["a"]
    assert list(scored[0].curve) == [1.0, 1.0]
    assert cf.comparison_figures([]) == []


def test_figures_embed_as_bokeh_components(stores):
    runs = [_row(s, f"run-{i}") for i, s in enumerate(stores)]
    curves = {r["run_id"]: _curve_of(s) for r, s in zip(runs, stores, strict=True)}
    convergence, boxes = cf.comparison_figures(cf.run_scores(runs, curves))
    script, div = cf.embed(convergence)
    assert "data-root-id" in div and "<script" in script
    assert "Convergence: median cumulative minimum" in script  # the title, in the document
    assert "CMA-ES (cmaes)" in script and "Random search" in script
    script, _ = cf.embed(boxes)
    assert "Final score (lowest error)" in script and "Convergence score" in script
    script, div = cf.embed(cf.generation_figure(curves["run-0"], "Generation plot"))
    assert "Generation plot" in script and "best so far" in script
    assert cf.embed(None) == ("", "")
