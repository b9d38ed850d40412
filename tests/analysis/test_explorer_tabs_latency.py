"""How long the explorer takes to answer a click on each tab, on a small store (2 generations
× 12 individuals of the HH problem), measured in headless Chromium from the click to the tab's
first figure or note on the page, and printed in the test summary ("measured").

The goal, an answer within 2 s, is a figure to read on an idle machine (docs/exploring.md says
what it was); the test itself fails only past 10 s, as tabs took before, since timings on a
machine shared with the rest of the suite say little."""

from __future__ import annotations

import os
import socket
import time

from neuroptimus.analysis.serve import free_port, serve_explorer
from tests.analysis.conftest import make_store, wait_until
from tests.analysis.synthetic import simulate_synthetic
from tests.analysis.test_explorer_browser import TITLES

GOAL_S = 2.0  # printed against each time
BROKEN_S = 10.0  # the test fails past this
# What each tab shows first: a figure's title, or the text of a note.
SHOWN = {
    "Parameter space": ("title", "gkbar_hh vs gnabar_hh"),
    "Diversity": ("title", "Population diversity per generation"),
    "Pareto front": ("title", "Pareto front after generation 1"),
    "Traces": ("title", "Target and best: CMA-ES (cmaes) · seed 1"),
    "Identifiability": ("title", "Correlations among the"),
    "Posterior": ("text", "sampled no posterior"),
    "Convergence": ("title", "Convergence: median cumulative minimum"),
}


def _shown(page, kind: str, text: str) -> bool:
    if kind == "title":
        return any(text in title for title in page.evaluate(TITLES))
    return page.get_by_text(text).count() > 0


def _seconds_to_show(page, tab: str) -> float:
    kind, text = SHOWN[tab]
    started = time.monotonic()
    page.get_by_text(tab, exact=True).first.click()
    assert wait_until(lambda: _shown(page, kind, text), timeout=60, step=0.02), (
        f"the {tab} tab showed no {text!r} within 60 s"
    )
    return time.monotonic() - started


def test_every_tab_answers_a_click_within_two_seconds(tmp_path, chromium, record_property):
    make_store(tmp_path, generations=2, population=12)
    port = free_port()
    server = serve_explorer([tmp_path], port=port, show=False, refresh_seconds=0.5,
                            threaded=True, simulate=simulate_synthetic)  # fmt: skip
    try:
        assert wait_until(lambda: _listening(port), timeout=60), "the explorer did not start"
        page = chromium.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"http://localhost:{port}/")
        page.wait_for_function(
            f"() => ({TITLES})().some(t => t.includes('Convergence'))", timeout=60_000
        )
        # each tab once (drawn on its first opening), then each again (already drawn)
        first = {tab: _seconds_to_show(page, tab) for tab in SHOWN}
        again = {tab: _seconds_to_show(page, tab) for tab in SHOWN}
        page.close()
    finally:
        server.stop()
    line = ", ".join(f"{tab} {first[tab]:.2f} s ({again[tab]:.2f} s)" for tab in SHOWN)
    over = sum(s > GOAL_S for times in (first, again) for s in times.values())
    load = os.getloadavg()[0]
    record_property("printed", f"explorer tabs, first click (again): {line}; {over} over the "
                               f"goal of {GOAL_S:g} s; load {load:.1f}")  # fmt: skip
    broken = [f"{tab} {s:.2f} s" for times in (first, again) for tab, s in times.items()
              if s > BROKEN_S]  # fmt: skip
    assert not broken, f"tabs slower than {BROKEN_S:g} s to answer a click: {broken} ({line})"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False
