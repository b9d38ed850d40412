"""The Panel explorer over one or many run stores (``neuroptimus explore STORE…``).

Tabs: convergence (per algorithm and the run in focus), parameter space (pair plot with
linked box selection → table, error components and simulated traces of the picked
individuals), diversity, Pareto front, traces. A periodic callback re-reads the stores
(committed rows only) so a running optimization shows each new generation as it lands.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import holoviews as hv
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource

from neuroptimus.analysis import (
    comparison,
    figures,
    pareto_figures,
    population,
    posterior_figures,
    selection,
    traces,
    trust_figures,
)
from neuroptimus.analysis.feature_figures import is_features
from neuroptimus.analysis.feature_views import feature_views
from neuroptimus.analysis.linked_selection import (
    TRACE_POINTS,
    LinkedSelection,
    Simulate,
    show_figure,
)
from neuroptimus.analysis.linked_selection import shared_simulator as shared_simulator
from neuroptimus.analysis.posterior_tables import has_chain, posterior_of, true_values
from neuroptimus.analysis.snapshot import RunSnapshot, read_snapshot, refresh
from neuroptimus.analysis.trust_tables import identifiability_of
from neuroptimus.optimization.trust.identifiability import IdentifiabilityError
from neuroptimus.optimization.trust.posterior import ChainError
from neuroptimus.storage.runs.sensitivity import read_sensitivity

hv.extension("bokeh", logo=False)

# the views, in tab order
TABS = ("convergence", "space", "diversity", "pareto", "traces", "trust", "posterior")
MAX_PAIR_PARAMETERS = 5  # more panels than 5 × 5 get too small to read

INTRO = {
    "convergence": "Lowest error found so far against evaluations: the line is the median "
    "over seeds, the band the best and worst seed. Below: scores per algorithm, and the run "
    "in focus generation by generation.",
    "space": "Every evaluated individual; dashed boxes are the parameter bounds, red crosses "
    "the true values (surrogate problems). **Drag a box** in any panel to select individuals: "
    "they are circled in every panel, listed below, and the best three are simulated.",
    "diversity": "Spread of the population in normalised parameter units (each parameter "
    "mapped to 0–1 between its bounds). A uniform random population scores 0.29; a "
    "population that has converged tends to 0.",
    "pareto": "The non-dominated individuals (no other is better in every error component), "
    "projected onto two components, and the hypervolume they dominate.",
    "traces": "The target recording (black) and the best individual of each run (red; stored "
    "when a run finishes). Pick individuals in *Parameter space* to simulate others.",
    "trust": "How far to trust the fit of the run in focus: which parameters its evaluated "
    "individuals constrain (profiles of the lowest error across each range, the near-optimal "
    "individuals' ranges and correlations, flags), and the local sensitivity at the best when "
    "`neuroptimus analyze STORE --sensitivity` stored one.",
    "posterior": "The posterior of the run in focus when it sampled one (algorithm emcee): "
    "credible intervals, autocorrelation times and acceptance, the marginals and pairs of "
    "samples (burn-in: the first half of the chain), and the walkers' paths.",
}


class Explorer(LinkedSelection):
    """One browser session's state: the snapshots, the widgets and the views."""

    def __init__(
        self, paths: Sequence[str | Path], refresh_seconds: float = 2.0,
        simulate: Simulate | None = None,
    ) -> None:  # fmt: skip
        self.paths = [str(p) for p in paths]
        self.snapshots = {p: read_snapshot(p) for p in self.paths}
        self.simulate = simulate or shared_simulator()
        self.refresh_seconds = refresh_seconds
        self.picks: list[tuple[str, int]] = []  # (store, row), best first
        self.frame, self.frame_runs = pd.DataFrame(), []
        # the picked individuals' parameters, drawn as circles in every pair-plot panel
        self._circles = ColumnDataSource(data={})
        self._job = 0
        self._quiet = False
        self._stale: set[str] = set()
        self.doc = pn.state.curdoc  # the browser session this explorer serves (None: no server)
        self._widgets()
        self._views()
        self.redraw()

    # -- runs ------------------------------------------------------------------------------
    def labels(self) -> dict[str, str]:
        """A readable, unique name per store."""
        problems = {s.problem for s in self.snapshots.values()}
        names = {}
        for path, s in self.snapshots.items():
            names[path] = f"{s.problem} · {s.label}" if len(problems) > 1 else s.label
        counts = pd.Series(list(names.values())).value_counts()
        return {p: f"{n} ({Path(p).name})" if counts[n] > 1 else n for p, n in names.items()}

    def active(self) -> list[RunSnapshot]:
        chosen = set(self.runs.value) if self.runs.value else set()
        return [
            self.snapshots[p] for p in self.paths
            if p in chosen and self.snapshots[p].algorithm in self.algorithms.value
        ]  # fmt: skip

    def focus(self) -> RunSnapshot | None:
        active = self.active()
        path = self.focus_run.value
        return self.snapshots[path] if path in {s.path for s in active} else (active or [None])[0]

    # -- widgets and layout ----------------------------------------------------------------
    def _widgets(self) -> None:
        labels = self.labels()
        options = {labels[p]: p for p in self.paths}
        algorithms = sorted({s.algorithm for s in self.snapshots.values()})
        last = max(s.committed_generations for s in self.snapshots.values()) - 1
        first = self.snapshots[self.paths[0]]
        self.runs = pn.widgets.CheckBoxGroup(name="Runs", options=options, value=self.paths)
        self.algorithms = pn.widgets.CheckButtonGroup(
            name="Algorithms", options=algorithms, value=algorithms, orientation="vertical",
            button_type="primary", button_style="outline", sizing_mode="stretch_width",
        )  # fmt: skip
        self.focus_run = pn.widgets.Select(
            name="Run in focus (single-run views)", options=options, value=self.paths[0]
        )
        self.generations = pn.widgets.IntRangeSlider(
            name="Generations", start=0, end=max(last, 1), value=(0, max(last, 0)), step=1
        )
        self.colour = pn.widgets.RadioButtonGroup(
            name="Colour by", options={"total error": "error", "generation": "generation"},
            value="error", button_type="primary", button_style="outline",
        )  # fmt: skip
        names = first.parameter_names
        self.shown = pn.widgets.MultiChoice(
            name="Parameters in the pair plot", options=names, value=names[:MAX_PAIR_PARAMETERS]
        )
        self.follow = pn.widgets.Checkbox(
            name=f"Follow the stores (re-read every {self.refresh_seconds:g} s)", value=True
        )
        components = {name: i for i, name in enumerate(first.component_names)}
        self.pareto_x = pn.widgets.Select(name="x: error component", options=components, value=0)
        self.pareto_y = pn.widgets.Select(
            name="y: error component", options=components, value=min(1, len(components) - 1)
        )
        self.clear = pn.widgets.Button(name="Clear selection", button_type="default")
        self.pick_best = pn.widgets.Button(name="Select the best individual", button_type="primary")
        self.status = pn.pane.Markdown(sizing_mode="stretch_width")
        watch = [
            (self._on_runs, [self.runs, self.algorithms, self.focus_run]),
            (partial(self._on_view, ("space", "pareto")), [self.generations]),
            (partial(self._on_view, ("space",)), [self.colour, self.shown]),
            (partial(self._on_view, ("pareto",)), [self.pareto_x, self.pareto_y]),
        ]
        for callback, widgets in watch:
            for widget in widgets:
                widget.param.watch(callback, "value")
        self.clear.on_click(lambda _: self.select([]))
        self.pick_best.on_click(lambda _: self._select_best())

    def _views(self) -> None:
        names = ("convergence", "boxes", "run", "components", "space", "table", "bars",
                 "picked", "diversity", "spread", "front", "volume", "traces",
                 "trust", "posterior")  # fmt: skip
        self.holders = {name: pn.Column(sizing_mode="stretch_width") for name in names}
        h = self.holders
        intro = {k: pn.pane.Markdown(v, sizing_mode="stretch_width") for k, v in INTRO.items()}
        self.selection_note = pn.pane.Markdown(selection.EMPTY_SELECTION_TEXT)
        self.tabs = pn.Tabs(
            ("Convergence", pn.Column(intro["convergence"], h["convergence"], h["boxes"],
                                      h["run"], h["components"])),
            ("Parameter space", pn.Column(
                intro["space"], h["space"],
                pn.Row(self.pick_best, self.clear), self.selection_note, h["table"],
                pn.Row(h["bars"]), h["picked"])),
            ("Diversity", pn.Column(intro["diversity"], h["diversity"], h["spread"])),
            ("Pareto front", pn.Column(intro["pareto"], pn.Row(self.pareto_x, self.pareto_y),
                                       h["front"], h["volume"])),
            ("Traces", pn.Column(intro["traces"], h["traces"])),
            ("Identifiability", pn.Column(intro["trust"], h["trust"])),
            ("Posterior", pn.Column(intro["posterior"], h["posterior"])),
            dynamic=True, sizing_mode="stretch_width",
        )  # fmt: skip
        self.tabs.param.watch(self._on_tab, "active")
        sidebar = [
            pn.pane.Markdown("### Runs"), self.runs, pn.pane.Markdown("### Algorithms"),
            self.algorithms, self.focus_run, self.generations,
            pn.pane.Markdown("Colour the parameter space by"), self.colour, self.shown,
            self.follow, self.status,
        ]  # fmt: skip
        self.page = pn.template.BootstrapTemplate(
            title=self._page_title(), sidebar=sidebar, main=[self.tabs], sidebar_width=330,
            header_background="#24496b",
        )  # fmt: skip

    def _page_title(self) -> str:
        problems = sorted({s.problem for s in self.snapshots.values()})
        return f"Neuroptimus explorer · {', '.join(problems)}"

    # -- drawing -------------------------------------------------------------------------
    def redraw(self, parts: Sequence[str] = TABS) -> None:
        """Mark views out of date; draw those of the tab on show now, the others when their
        tab is opened (so following a run redraws one tab, not five)."""
        self._status()
        self._stale.update(parts)
        self._draw(TABS[self.tabs.active])

    def _on_tab(self, event) -> None:
        self._draw(TABS[event.new])

    def _draw(self, part: str) -> None:
        if part not in self._stale:
            return
        self._stale.discard(part)
        active, focus = self.active(), self.focus()
        if focus is None:
            for holder in self.holders.values():
                holder.objects = [pn.pane.Alert("No run selected.", alert_type="info")]
            return
        labels = self.labels()
        names = [labels[s.path] for s in active]
        h = self.holders
        if part == "convergence":
            scored = [s for s in active if s.committed_evaluations]
            show_figure(h["convergence"], lambda: comparison.convergence_figure(_scores(scored)))
            if len(scored) > 1:
                show_figure(h["boxes"], lambda: comparison.box_figures(_scores(scored)))
            else:
                h["boxes"].objects = []  # box plots need several runs
            show_figure(h["run"], lambda: figures.convergence_figure(focus).opts(
                title=f"Convergence of {labels[focus.path]}"))  # fmt: skip
            show_figure(h["components"], lambda: figures.components_figure(focus))
        if part == "space":
            show_figure(h["space"], self._pair_plot)
            self._show_selection()
        if part == "diversity":
            show_figure(h["diversity"], lambda: population.diversity_figure(active, names))
            show_figure(h["spread"], lambda: population.parameter_spread_figure(focus))
        if part == "pareto":
            generation = self.generations.value[1]
            x, y = self.pareto_x.value, self.pareto_y.value
            show_figure(h["front"], lambda: pareto_figures.front_figure(focus, x, y, generation))
            show_figure(h["volume"], lambda: pareto_figures.hypervolume_figure(active, names))
        if part == "traces":
            shown = list(zip(active, names, strict=True))[:6]
            h["traces"].objects = [view for s, n in shown for view in _trace_views(s, n)]
        if part == "trust":
            h["trust"].objects = trust_views(focus, labels[focus.path])
        if part == "posterior":
            h["posterior"].objects = posterior_views(focus, labels[focus.path])

    def _pair_plot(self) -> hv.Layout:
        focus = self.focus()
        runs = [s for s in self.active() if s.parameter_names == focus.parameter_names]
        self.frame = population.population_frame(runs, self.generations.value)
        self.frame_runs = runs
        specs = [p for p in focus.parameters if p["name"] in self.shown.value]
        specs = specs or focus.parameters[:MAX_PAIR_PARAMETERS]
        colour = self.colour.value
        self._circles = ColumnDataSource(data=self._picked_columns())  # new: no lock needed
        panels = population.pair_panels(self.frame, specs, colour, True, self._circle_picks)
        for panel in panels:
            if panel.y is not None:
                stream = hv.streams.BoundsXY(source=panel.source)
                stream.add_subscriber(partial(self._on_box, panel.x, panel.y))
        corner = population.colourbar(
            colour, population.colour_limits(self.frame, colour), selected=True
        )
        title = (f"{len(self.frame):,} individuals of {len(runs)} run(s), generations "
                 f"{self.generations.value[0]}–{self.generations.value[1]}")  # fmt: skip
        return population.pair_layout(panels, len(specs), corner, title)

    # -- following a running optimization -------------------------------------------------
    def poll(self) -> None:
        """Re-read the stores; redraw when a generation was committed."""
        if not self.follow.value:
            return
        self.snapshots, changed = refresh(self.snapshots)
        if not changed:
            return
        last = max(s.committed_generations for s in self.snapshots.values()) - 1
        low, high = self.generations.value
        at_end = high >= self.generations.end or high >= last - 1
        self._quiet = True
        try:
            self.generations.end = max(last, 1)
            if at_end:
                self.generations.value = (low, max(last, 0))
        finally:
            self._quiet = False
        self.redraw()

    def _status(self) -> None:
        lines = []
        for path in self.paths:
            s = self.snapshots[path]
            state = f"finished ({s.finished})" if s.finished else "running or interrupted"
            best = f"{s.rows['total'].min():.4g}" if s.committed_evaluations else "–"
            lines.append(
                f"- **{self.labels()[path]}**: {s.committed_generations} generations, "
                f"{s.committed_evaluations:,} evaluations, best {best}; {state}"
            )
        self.status.object = "### Stores\n" + "\n".join(lines)

    # -- widget callbacks ----------------------------------------------------------------
    def _on_runs(self, _event) -> None:
        if self._quiet:
            return
        focus = self.focus()
        if focus is not None:
            self._quiet = True
            try:
                names = focus.parameter_names
                if list(self.shown.options) != names:
                    self.shown.options, self.shown.value = names, names[:MAX_PAIR_PARAMETERS]
                components = {n: i for i, n in enumerate(focus.component_names)}
                self.pareto_x.options = self.pareto_y.options = components
            finally:
                self._quiet = False
        self.picks = []
        self.redraw()

    def _on_view(self, parts: tuple[str, ...], _event) -> None:
        if not self._quiet:
            self.redraw(parts)


def _trace_views(snapshot: RunSnapshot, name: str) -> list[pn.viewable.Viewable]:
    """A run's Traces-tab views: target and best traces, or for a feature-statistics run
    (no target trace) the best traces and feature values."""
    if is_features(snapshot.spec):
        return feature_views(snapshot, name)
    title = f"Target and best: {name}"
    return [pn.pane.HoloViews(traces.traces_figure(snapshot, title=title, downsample=TRACE_POINTS))]


def trust_views(snapshot: RunSnapshot, name: str) -> list[pn.viewable.Viewable]:
    """The Identifiability tab's views of one run (a note where they cannot be drawn)."""

    try:
        result = identifiability_of(snapshot)
    except IdentifiabilityError as error:
        return [pn.pane.Alert(f"{name}: {error}", alert_type="info")]
    views = [
        pn.pane.Markdown(f"### {name}\n{trust_figures.IDENTIFIABILITY_NOTE}"),
        pn.pane.HTML(trust_figures.identifiability_table(result), sizing_mode="stretch_width"),
        pn.pane.HoloViews(trust_figures.profile_figure(snapshot.parameters, result, snapshot)),
        pn.pane.HoloViews(trust_figures.correlation_figure(result)),
    ]
    found = read_sensitivity(snapshot.path)
    if found is None:
        return views + [pn.pane.Markdown("No local sensitivity stored for this run.")]
    return views + [
        pn.pane.Markdown(f"### Local sensitivity at the best\n{trust_figures.SENSITIVITY_NOTE}"),
        pn.pane.HTML(trust_figures.sensitivity_table(found), sizing_mode="stretch_width"),
        pn.pane.HoloViews(trust_figures.sensitivity_figures(found)),
    ]


def posterior_views(snapshot: RunSnapshot, name: str) -> list[pn.viewable.Viewable]:
    """The Posterior tab's views of one run (a note for a run that sampled none)."""

    if not has_chain(snapshot.attrs):
        return [pn.pane.Alert(f"{name} sampled no posterior (algorithm emcee does).",
                              alert_type="info")]  # fmt: skip
    try:
        summary = posterior_of(snapshot.path)
    except ChainError as error:
        return [pn.pane.Alert(f"{name}: {error}", alert_type="info")]
    truth, draw = true_values(snapshot.path), posterior_figures
    return [
        pn.pane.Markdown(f"### {name}\n{draw.POSTERIOR_NOTE}"),
        pn.pane.HTML(draw.posterior_table(summary, truth), sizing_mode="stretch_width"),
        pn.pane.HoloViews(draw.pair_figure(summary, snapshot.parameters, truth)),
        pn.pane.HoloViews(draw.walkers_figure(summary, snapshot.parameters)),
    ]


def _scores(snapshots: Sequence[RunSnapshot]) -> list[comparison.RunScores]:
    """Convergence scores on one grid: the smallest population, up to the longest run."""
    if not snapshots:
        raise ValueError("no run with evaluations selected")
    step = min(int(s.spec["algorithm"]["population"]) for s in snapshots)
    budget = max(max(s.committed_evaluations for s in snapshots), step)
    return [
        comparison.score_totals(s.rows["total"], s.attrs, s.path, step, budget) for s in snapshots
    ]
