"""Linked selection in the explorer: individuals picked in the parameter space are circled in
every pair-plot panel, listed, compared by error component, and simulated (in a worker
thread that waits on the simulation process, so the page stays responsive)."""

from __future__ import annotations

import atexit
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from functools import partial

import numpy as np
import panel as pn
from panel.io.state import set_curdoc

from neuroptimus.analysis import population, selection, traces
from neuroptimus.analysis.feature_figures import feature_values, is_features, picks_feature_figure
from neuroptimus.analysis.snapshot import RunSnapshot

log = logging.getLogger(__name__)

SIMULATED_PICKS = 3  # traces simulated for the best few picked individuals
TRACE_POINTS = 8000  # per curve sent to the browser (a recording has 40,000 samples)
Simulate = Callable[[RunSnapshot, int], list[traces.Trace]]
# Threads that wait on simulations, shared by every browser session of the server.
_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="explorer-simulate")


def show_figure(holder: pn.Column, build: Callable[[], object], **pane) -> None:
    """Show ``build()`` in ``holder``, or say what went wrong instead of breaking the page."""
    try:
        holder.objects = [pn.pane.HoloViews(build(), **pane)]
    except Exception as error:  # a half-written or unusual store must not kill the app
        log.warning("cannot draw a view: %s", error, exc_info=log.isEnabledFor(logging.DEBUG))
        holder.objects = [pn.pane.Alert(f"Cannot draw this view: {error}", alert_type="warning")]


class LinkedSelection:
    """The selection part of ``neuroptimus.analysis.explorer.Explorer`` (which provides the
    snapshots, the holders, the document and ``labels``/``focus``)."""

    def _on_box(self, x: str, y: str, bounds: tuple | None) -> None:
        picked = selection.in_box(self.frame, x, y, bounds)
        runs = self.frame_runs
        self.select(
            [(runs[r].path, int(row)) for r, row in zip(picked["run"], picked["row"], strict=True)]
        )

    def _select_best(self) -> None:
        focus = self.focus()
        if focus is not None and focus.best_row() is not None:
            self.select([(focus.path, focus.best_row())])

    def select(self, picks: list[tuple[str, int]]) -> None:
        """Pick individuals (store, row), best first; every linked view follows."""
        self.picks = picks
        self._set_circles()
        self._show_selection()

    def _set_circles(self) -> None:
        """Update the circles' data source: a Bokeh model, changed under the document's lock
        (on the session's next tick) when served."""
        data = self._picked_columns()
        if self.doc is None or self.doc.session_context is None:
            self._circles.data = data
        else:
            self.doc.add_next_tick_callback(partial(setattr, self._circles, "data", data))

    def _picked_columns(self) -> dict[str, np.ndarray]:
        focus = self.focus()
        names = focus.parameter_names if focus else []
        rows = [self.snapshots[p].rows["parameters"][r] for p, r in self.picks[:5000]
                if p in self.snapshots and self.snapshots[p].parameter_names == names]  # fmt: skip
        values = np.array(rows).reshape(len(rows), len(names))
        return {name: values[:, j] for j, name in enumerate(names)}

    def _circle_picks(self, x: str, y: str, plot, element) -> None:
        """Bokeh hook of a pair-plot panel: circle the picked individuals, from one data
        source shared by every panel (a selection updates it, not the plots)."""
        figure = plot.state
        if any("picked" in r.tags for r in figure.renderers):
            return  # hooks run again when a rasterized panel re-renders on zoom
        renderer = figure.scatter(
            x=x, y=y, source=self._circles, size=9, fill_alpha=0, line_width=1.5,
            line_color=population.SELECTED_COLOUR, line_alpha=0.9,
        )  # fmt: skip
        renderer.tags = ["picked"]

    def _show_selection(self) -> None:
        labels = self.labels()
        h = self.holders
        if not self.picks:
            self.selection_note.object = selection.EMPTY_SELECTION_TEXT
            h["table"].objects, h["bars"].objects, h["picked"].objects = [], [], []
            return
        self.selection_note.object = (
            f"**{len(self.picks):,} individuals selected**: the table lists the best 50, the "
            f"error components show the best 5 and the best {SIMULATED_PICKS} are simulated."
        )
        entries = [(labels[p], self.snapshots[p], r) for p, r in self.picks if p in labels]
        table = selection.selection_table(entries)
        h["table"].objects = [
            pn.pane.DataFrame(table, index=False, max_rows=12, sizing_mode="stretch_width")
        ]
        shown = [(self.snapshots[p], r) for p, r in self.picks[:5] if p in self.snapshots]
        show_figure(h["bars"], lambda: selection.components_figure(
            [("", s, r) for s, r in shown], self.focus()))  # fmt: skip
        self._simulate_picks(shown[:SIMULATED_PICKS])

    def _simulate_picks(self, shown: list[tuple[RunSnapshot, int]]) -> None:
        """Simulate in a worker thread (which waits on the simulation process), then draw on
        the session's event loop; a newer selection supersedes an unfinished one."""
        self._job += 1
        job, holder = self._job, self.holders["picked"]
        jobs = [(selection.pick_label(k, s, r), s, r) for k, (s, r) in enumerate(shown, 1)]
        holder.objects = [pn.pane.Markdown(f"Simulating {len(jobs)} individual(s)…")]
        future = _THREADS.submit(_simulate_all, self.simulate, jobs)
        doc = self.doc
        if doc is None or doc.session_context is None:  # no server (tests, notebooks)
            self._show_traces(job, future.result(), shown)
            return

        def done(f: Future) -> None:
            doc.add_next_tick_callback(partial(self._show_traces, job, f.result(), shown, doc))

        future.add_done_callback(done)

    def _show_traces(self, job, results, shown, doc=None) -> None:
        if job != self._job:
            return
        picks, failures, features = results
        holder = self.holders["picked"]
        reference = shown[0][0]
        with set_curdoc(doc) if doc else nullcontext():
            title = "Simulated traces of the selected individuals"
            figure = traces.traces_figure(reference, picks, title=title, downsample=TRACE_POINTS)
            objects = [pn.pane.HoloViews(figure)]
            if features:
                values = picks_feature_figure(reference.spec, features)
                title = "Feature values of the selected individuals"
                objects.append(pn.pane.HoloViews(values.opts(title=title)))
            if failures:
                objects.insert(0, pn.pane.Alert("\n".join(failures), alert_type="warning"))
            holder.objects = objects


def _simulate_all(simulate: Simulate, jobs) -> tuple[list, list[str], list]:
    """Traces of each job and, for feature-statistics problems, their feature values
    (label, spec, values, the colour of the pick's traces): measured here, off the page's
    event loop."""
    picks, failures, features = [], [], []
    for label, snapshot, row in jobs:
        try:
            picks.append((label, simulate(snapshot, row)))
        except Exception as error:  # one failing model must not hide the others
            failures.append(f"{label}: simulation failed ({error})")
            continue
        if not is_features(snapshot.spec):
            continue
        try:
            values = feature_values(snapshot.spec, picks[-1][1])
        except Exception as error:
            failures.append(f"{label}: feature values failed ({error})")
            continue
        colour = traces.PICK_COLOURS[(len(picks) - 1) % len(traces.PICK_COLOURS)]
        features.append((label, snapshot.spec, values, colour))
    return picks, failures, features


_SIMULATOR: traces.TraceSimulator | None = None


def shared_simulator() -> traces.TraceSimulator:
    """One simulator (and one NEURON process per problem) for every browser session."""
    global _SIMULATOR
    if _SIMULATOR is None:
        _SIMULATOR = traces.TraceSimulator()
        atexit.register(_SIMULATOR.close)
    return _SIMULATOR
