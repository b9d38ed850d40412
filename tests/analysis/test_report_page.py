"""The report page: its figures are rendered in two processes when the writer has one thread
(a forked copy renders half of them), in one otherwise, and open from disk, offline, in a
real browser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from neuroptimus.analysis.report import write_report

UUID = re.compile(r'"id": "[0-9a-f]{8}-[0-9a-f]{4}-')  # the copy's model ids (see bokeh_page)
ITEMS = re.compile(r'<script type="application/json" id="figures">(.*?)</script>', re.S)


def _write_in_fresh_process(store: Path, page: Path, copy: str = "renders") -> str:
    """write_report(path) in a new process: one thread, so it forks a copy; the copy
    ``dies`` as it starts building (killed, out of memory) or builds a page that ``differs``
    (a store that grew meanwhile), or ``renders`` its share."""
    script = f"""
import os
from neuroptimus.analysis import report
parent = os.getpid()
build = report.report_parts
def in_copy(store):
    if os.getpid() != parent and {copy!r} == "dies":
        os._exit(3)
    parts = build(store)
    return parts + ["<p>one more</p>"] if os.getpid() != parent and {copy!r} == "differs" else parts
report.report_parts = in_copy
report.write_report({str(store)!r}, {str(page)!r})
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    return page.read_text()


def _figures(page: str) -> list[tuple[str, list[str]]]:
    """(target, the titles of its plots) of each embedded figure."""
    items = json.loads(ITEMS.search(page).group(1).replace("<\\/", "</"))
    return [(target, sorted(re.findall(r'"text": "([^"]+)"', json.dumps(item))))
            for target, item in items]  # fmt: skip


@pytest.fixture(scope="module")
def alone(store, tmp_path_factory) -> str:
    """The page written in this process, which has threads: rendered by it alone."""
    return write_report(store, tmp_path_factory.mktemp("alone") / "alone.html").read_text()


@pytest.fixture(scope="module")
def forked(store, tmp_path_factory) -> Path:
    """The page written by a new process, whose forked copy rendered a share."""
    path = tmp_path_factory.mktemp("forked") / "report.html"
    _write_in_fresh_process(store.path, path)
    return path


def test_two_processes_render_what_one_does(forked, alone):
    assert UUID.search(forked.read_text()) and not UUID.search(alone)  # the copy rendered a share
    assert _figures(forked.read_text()) == _figures(alone) and len(_figures(alone)) >= 7


@pytest.mark.parametrize("copy", ["dies", "differs"])
def test_a_copy_that_fails_leaves_its_share_to_the_parent(store, tmp_path, copy, alone):
    page = _write_in_fresh_process(store.path, tmp_path / "report.html", copy)
    assert not UUID.search(page) and "one more" not in page  # all rendered by the parent
    assert _figures(page) == _figures(alone)


def test_the_report_opens_offline_with_every_figure_drawn(chromium, forked):
    path = forked
    targets = [target for target, _ in _figures(path.read_text())]
    page = chromium.new_page(viewport={"width": 1300, "height": 1000})
    requests, errors = [], []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def offline(route):
        requests.append(route.request.url)
        route.abort()

    page.route(re.compile(r"^(?!file:).*"), offline)
    page.goto(path.as_uri())
    for target in targets:
        page.locator(f"#{target} canvas").first.wait_for(state="attached", timeout=30_000)
    assert "best total error" in page.inner_text("body")
    assert errors == [] and requests == []
    page.close()
