"""A self-contained HTML page of HoloViews figures, opened from disk without a network.

Each figure becomes a Bokeh JSON item embedded in the page with the Bokeh scripts it needs
(inlined), so the page carries no Panel bundle. Rendering is most of a report's time (about a
second for a run's dozen panels), so a process with a single thread renders half of the
figures in a forked copy of itself, on the other core: the copy shares the imported libraries
and starts in milliseconds.
"""

from __future__ import annotations

import html
import json
import os
import pickle
import threading
from collections.abc import Callable, Sequence

import holoviews as hv
from bokeh.embed import json_item
from bokeh.embed.bundle import bundle_for_objs_and_resources
from bokeh.resources import INLINE
from bokeh.settings import settings

Rendered = tuple[list[dict], list[str]]  # the figures' JSON items, the scripts they need
Build = Callable[[], tuple[str, list]]  # the page's title, its HTML strings and figures

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em 2em;
       color: #222; }
table { border-collapse: collapse; } td, th { padding: 0.15em 0.8em; text-align: left; }
th { border-bottom: 1px solid #999; } .figure { margin: 0.5em 0 1.5em; }
"""


def render(figures: Sequence) -> Rendered:
    """The Bokeh JSON item of each HoloViews figure, and the inlined scripts they need."""
    models = [hv.render(figure, backend="bokeh") for figure in figures]
    scripts = bundle_for_objs_and_resources(models, INLINE).js_raw
    return [json_item(model) for model in models], scripts


def _cost(figure) -> int:
    """Rendering time, roughly: a panel (axes, tools, frame) costs about six glyphs."""
    glyphs = len(figure.traverse(lambda element: element, [hv.Element]))
    if isinstance(figure, hv.Layout):
        panels = sum(not isinstance(cell, hv.Empty) for cell in figure)
    else:
        panels = 1
    return 6 * panels + glyphs


def _halves(costs: Sequence[int]) -> tuple[list[int], list[int]]:
    """Indices of two groups of about equal total cost (largest first)."""
    groups: tuple[list[int], list[int]] = ([], [])
    totals = [0, 0]
    for index in sorted(range(len(costs)), key=lambda i: -costs[i]):
        lighter = totals.index(min(totals))
        groups[lighter].append(index)
        totals[lighter] += costs[index]
    return groups


def _can_fork() -> bool:
    """A copy made by fork lacks the other threads, and any lock they held: only a process
    with a single thread forks (Linux, macOS). Reading a zarr store starts a thread, so the
    copy is made before the figures are built."""
    return hasattr(os, "fork") and threading.active_count() == 1


def _in_child(build: Build) -> tuple[int, int]:
    """Fork a copy that builds the blocks and renders the second half of their figures,
    pickled into a pipe: (pid, the pipe's reading end). The copy never returns."""
    reading, writing = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reading)
        # the copy would count Bokeh's model ids on from where the parent stands, as the
        # parent does: its figures get globally unique ids instead
        settings.simple_ids.set_value(False)
        try:
            figures, costs, fingerprint = _plan(*build())
            rendered = render([figures[i] for i in _halves(costs)[1]])
            payload = pickle.dumps((True, (fingerprint, rendered)))
        except BaseException as error:  # the parent renders them itself
            payload = pickle.dumps((False, f"{type(error).__name__}: {error}"))
        with os.fdopen(writing, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(writing)
    return pid, reading


def _collect(pid: int, reading: int, fingerprint: tuple) -> Rendered | None:
    """The copy's half; None if it failed, or built another page than the parent's
    ``fingerprint`` (its HTML and figure sizes: a run store that grew between the builds)."""
    with os.fdopen(reading, "rb") as pipe:
        payload = pipe.read()
    os.waitpid(pid, 0)
    try:
        ok, value = pickle.loads(payload)
    except Exception:  # the copy died before it wrote (killed, out of memory)
        return None
    return value[1] if ok and value[0] == fingerprint else None


def _figures(blocks: Sequence) -> list:
    return [block for block in blocks if not isinstance(block, str)]


def _plan(title: str, blocks: Sequence) -> tuple[list, list[int], tuple]:
    """The figures among ``blocks``, their costs, and the page's fingerprint (its HTML and
    figure sizes in order), which the parent and its copy compare."""
    figures = _figures(blocks)
    costs = [_cost(figure) for figure in figures]
    html = [block if isinstance(block, str) else None for block in blocks]  # None: a figure
    return figures, costs, (title, html, costs)


def _build_and_render(build: Build) -> tuple[str, list, Rendered]:
    """The title and blocks ``build`` returns, and their figures rendered: half of them in a forked
    copy of this process (which builds them too: a fraction of their rendering) when it may
    fork; the parent renders the copy's half too if the copy fails."""
    if not _can_fork():
        title, blocks = build()
        return title, blocks, render(_figures(blocks))
    pid, reading = _in_child(build)
    fingerprint: tuple = ()
    try:
        title, blocks = build()
        figures, costs, fingerprint = _plan(title, blocks)
        mine, theirs = _halves(costs)
        own_items, scripts = render([figures[i] for i in mine])
    finally:
        other = _collect(pid, reading, fingerprint)
    if other is None:
        other = render([figures[i] for i in theirs])
    items = dict(zip(mine, own_items, strict=True)) | dict(zip(theirs, other[0], strict=True))
    scripts = [*dict.fromkeys(scripts + other[1])]  # the scripts both halves need, once
    return title, blocks, ([items[i] for i in range(len(figures))], scripts)


def page(build: Build) -> str:
    """The HTML page of the title and blocks ``build`` returns: HTML strings as they are,
    HoloViews figures rendered (``build`` may run twice: here and in a forked copy)."""
    title, blocks, (items, scripts) = _build_and_render(build)
    body, embeds = [], []
    for block in blocks:
        if isinstance(block, str):
            body.append(block)
            continue
        target = f"figure-{len(embeds)}"
        body.append(f'<div class="figure" id="{target}"></div>')
        embeds.append([target, items[len(embeds)]])
    data = json.dumps(embeds).replace("</", "<\\/")  # cannot end its script element
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{STYLE}</style>",
            *(f"<script>{script}</script>" for script in scripts),
            "</head><body>",
            *body,
            f'<script type="application/json" id="figures">{data}</script>',
            "<script>for (const [target, item] of JSON.parse("
            'document.getElementById("figures").textContent)) '
            "Bokeh.embed.embed_item(item, target);</script>",
            "</body></html>",
        ]
    )


__all__ = ["page", "render"]
