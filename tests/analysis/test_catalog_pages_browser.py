"""The catalog served by uvicorn and used in headless Chromium as a visitor would: from the
use cases to a leaderboard (its figures drawn by BokehJS, no JavaScript error), to a run, to
the run table and its filters; then signing in with a token and uploading a metadata.json
through the form."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import uvicorn

from neuroptimus.analysis.serve import free_port
from tests.analysis.catalog_pages_data import filled_site
from tests.analysis.conftest import wait_until
from tests.storage.catalog.original_metadata import original_metadata

DRAWN = """() => window.Bokeh !== undefined &&
    document.querySelectorAll('div[data-root-id]').length > 0 &&
    document.querySelectorAll('div[data-root-id]').length <= Object.keys(Bokeh.index).length"""


@pytest.fixture(scope="module")
def served(tmp_path_factory, hh_run_store):
    folder = tmp_path_factory.mktemp("catalog-browser")
    app, _, data = filled_site(folder, hh_run_store)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    assert wait_until(listening, timeout=30), "the catalog did not start"
    yield f"http://127.0.0.1:{port}", data, folder
    server.should_exit = True
    thread.join(timeout=10)


def test_browsing_filtering_signing_in_and_uploading(chromium, served):
    url, data, folder = served
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto(url + "/")
    page.get_by_role("link", name=data.real.use_case.name, exact=True).click()
    page.wait_for_url(f"**/use-cases/{data.slug}")
    page.wait_for_function(DRAWN, timeout=60_000)
    titles = page.evaluate("""() => Object.values(Bokeh.index).flatMap(function walk(v) {
        return [v.model.title?.text ?? '', ...(v.child_views ?? []).flatMap(walk)] })""")
    assert any(t.startswith("Convergence: median cumulative minimum") for t in titles), titles
    assert "Final score (lowest error)" in titles and page.locator("canvas").count() >= 3
    assert page.locator("#leaderboard tbody tr").first.inner_text().startswith("1\tPSO")

    page.get_by_role("link", name="all its runs").click()
    page.wait_for_url("**/runs?*")
    assert page.locator("#runs tbody tr").count() == 8
    page.locator("#runs tbody tr").first.locator("a[href^='/runs/']").click()
    page.locator("#reproduce").wait_for()
    assert (
        page.locator("#reproduce")
        .inner_text()
        .startswith(f"neuroptimus catalog reproduce {url}/runs/")
    )
    page.wait_for_function(DRAWN, timeout=60_000)  # the generation plot

    page.goto(url + "/runs")
    page.get_by_label("Algorithm").fill("pso")
    page.get_by_label("Uploader").fill("bob")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**algorithm=pso**")
    assert wait_until(lambda: page.locator("#runs tbody tr").count() == 3)
    assert page.locator("#total").inner_text() == "3"
    page.get_by_role("link", name="Final error").click()  # sort by it, best last
    page.wait_for_url("**sort=-final_error**")
    errors_shown = page.locator("#runs tbody tr td:nth-child(10)").all_inner_texts()
    assert errors_shown == sorted(errors_shown, key=float, reverse=True)

    page.get_by_role("link", name="Upload", exact=True).click()
    page.wait_for_url("**/sign-in?next=/upload")
    page.get_by_label("API token").fill(data.tokens["bob"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/upload")
    metadata = original_metadata()
    metadata["seed"] = 4242
    upload = folder / "metadata.json"
    upload.write_text(json.dumps(metadata))
    page.get_by_label("metadata.json").set_input_files(str(upload))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.locator("#upload-result").wait_for()
    assert page.locator("#upload-result").inner_text().startswith("Uploaded.")
    page.get_by_role("link", name="Open the run").click()
    page.wait_for_url("**/runs/*")
    assert "seed 4242" in page.locator("h1").inner_text()
    assert "by bob" in page.content()
    page.close()
    assert errors == [], f"JavaScript errors: {errors}"
