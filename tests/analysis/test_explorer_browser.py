"""The explorer served on localhost and driven in headless Chromium: the views render without
JavaScript errors, choosing runs updates them, a box selection in the parameter space shows
the picked individuals everywhere, and a store that grows shows each new generation."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from neuroptimus.analysis.serve import free_port, serve_explorer
from tests.analysis.conftest import make_store, wait_until
from tests.analysis.synthetic import append_generation, simulate_synthetic

# Figures on show, found through BokehJS's views (models of replaced figures may linger in
# the document until it is garbage-collected, their views do not).
FIGURES = """() => {
    const views = [];
    const visit = (v) => { views.push(v); for (const c of (v.child_views ?? [])) visit(c); };
    for (const v of Object.values(Bokeh.index)) visit(v);
    return views.filter(v => v.model.type == 'Figure' && v.el.isConnected);
}"""
TITLES = f"""() => ({FIGURES})().map(v => v.model.title?.text ?? '')"""
LEGEND = f"""() => ({FIGURES})().flatMap(v => [...v.model.right, ...v.model.center])
    .filter(m => m.type == 'Legend').flatMap(l => l.items.map(i => i.label?.value ?? ''))"""
FRAME = f"""(title) => {{  // the plotting area of the figure with this title, in page pixels
    const view = ({FIGURES})().find(v => v.model.title?.text == title);
    if (!view) return null;
    const canvas = view.canvas_view.el.getBoundingClientRect(), frame = view.frame.bbox;
    return {{x: canvas.left + frame.left, y: canvas.top + frame.top, w: frame.width,
             h: frame.height}};
}}"""


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    """Three runs (the random search still running) served on a free port."""
    folder = tmp_path_factory.mktemp("explore")
    stores = {
        "cmaes-1": make_store(folder, seed=1),
        "cmaes-2": make_store(folder, seed=2),
        "random": make_store(folder, "random", "Random search", seed=3, finished=False),
    }
    port = free_port()
    server = serve_explorer([folder], port=port, show=False, refresh_seconds=0.5,
                            threaded=True, simulate=simulate_synthetic)  # fmt: skip

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return True
        except OSError:
            return False

    assert wait_until(listening, timeout=60), "the explorer did not start"
    yield f"http://localhost:{port}/", stores
    server.stop()


@pytest.fixture(scope="module")
def session(chromium, explorer):
    """One browser tab on the explorer for the module (each page load builds a session on
    the server: the tests share one), and the JavaScript errors it has logged."""
    tab = chromium.new_page(viewport={"width": 1400, "height": 1600})
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.goto(explorer[0])
    tab.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60_000)
    yield tab, errors
    tab.close()


@pytest.fixture
def page(session):
    """The shared tab; a test fails on any JavaScript error logged while it ran."""
    tab, errors = session
    yield tab
    assert errors == [], f"JavaScript errors: {errors}"


def _wait_for_title(page, text: str, timeout: float = 60_000) -> None:
    try:
        page.wait_for_function(
            f"() => ({TITLES})().some(t => t.includes({text!r}))", timeout=timeout
        )
    except Exception:
        raise AssertionError(f"no {text!r} among {page.evaluate(TITLES)}") from None


def _tab(page, name: str) -> None:
    page.get_by_text(name, exact=True).first.click()


def test_every_view_renders(page):
    _wait_for_title(page, "Convergence: median cumulative minimum")
    assert page.locator("canvas").count() > 0
    assert {"CMA-ES (cmaes)", "Random search"} <= set(page.evaluate(LEGEND))
    for tab, title in [
        ("Parameter space", "gkbar_hh vs gnabar_hh"),
        ("Diversity", "Population diversity per generation"),
        ("Pareto front", "Pareto front after generation 4"),
        ("Traces", "Target and best: Random search · seed 3"),
        ("Identifiability", "Correlations among the"),
    ]:
        _tab(page, tab)
        _wait_for_title(page, title)


def test_box_selection_shows_the_picked_individuals_everywhere(page):
    _tab(page, "Parameter space")
    _wait_for_title(page, "gkbar_hh vs gnabar_hh")
    page.wait_for_timeout(500)  # let the plot settle before dragging on it
    frame = page.evaluate(FRAME, "gkbar_hh vs gnabar_hh")
    page.mouse.move(frame["x"] + 2, frame["y"] + 2)
    page.mouse.down()  # the box-select tool is active: dragging selects
    page.mouse.move(frame["x"] + frame["w"] - 2, frame["y"] + frame["h"] - 2, steps=6)
    page.mouse.up()
    note = page.get_by_text("individuals selected")
    note.wait_for(timeout=30_000)
    assert note.inner_text().startswith("180 individuals selected")  # the whole panel
    rows = page.locator("table tbody tr")
    cells = lambda: rows.first.inner_text().split("\t")  # noqa: E731
    assert wait_until(lambda: cells()[0] == "1"), cells()
    assert rows.count() == 13  # the best 12 of the table, and its ellipsis row
    assert cells()[1] in {"CMA-ES (cmaes) · seed 1", "CMA-ES (cmaes) · seed 2",
                          "Random search · seed 3"}  # fmt: skip
    _wait_for_title(page, "Error components of the selected individuals")
    _wait_for_title(page, "Simulated traces of the selected individuals")
    labels = page.evaluate(LEGEND)
    assert {"#1", "#2", "best of CMA-ES (cmaes) · seed 1"} <= set(labels)
    assert sum(label.startswith("#1: gen") for label in labels if label) == 1
    page.get_by_role("button", name="Clear selection").click()
    page.get_by_text("Drag a box in any panel of the pair plot").wait_for(timeout=30_000)


def test_a_growing_store_shows_each_new_generation(page, explorer):
    store = explorer[1]["random"]
    _tab(page, "Parameter space")
    _wait_for_title(page, "gkbar_hh vs gnabar_hh")
    page.get_by_text("generations 0–4").first.wait_for(timeout=30_000)
    append_generation(store, np.random.default_rng(11))  # as the optimize loop writes
    page.get_by_text("generations 0–5").first.wait_for(timeout=30_000)
    status = page.get_by_text("Random search · seed 3:").locator("..")
    assert "6 generations, 72 evaluations" in status.inner_text()
    assert "192 individuals" in page.get_by_text("individuals of 3 run(s)").inner_text()


def test_choosing_algorithms_and_runs_updates_the_views(page):
    _tab(page, "Diversity")
    _wait_for_title(page, "Population diversity per generation")
    runs = lambda: sorted(set(page.evaluate(LEGEND)) - {""})  # noqa: E731
    every = ["CMA-ES (cmaes) · seed 1", "CMA-ES (cmaes) · seed 2", "Random search · seed 3"]
    assert wait_until(lambda: set(every) <= set(runs()))
    page.get_by_role("button", name="Random search").click()  # leave out an algorithm …
    assert wait_until(lambda: "Random search · seed 3" not in runs())
    assert "CMA-ES (cmaes) · seed 2" in runs()
    page.get_by_label("CMA-ES (cmaes) · seed 2").uncheck()  # … and a run
    assert wait_until(lambda: "CMA-ES (cmaes) · seed 2" not in runs())
