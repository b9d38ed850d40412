"""The self-contained HTML report of one run (opens from disk, no server, no network)."""

from __future__ import annotations

import html
from pathlib import Path

from neuroptimus.analysis import emodel_figures, posterior_figures
from neuroptimus.analysis import trust_figures as figures
from neuroptimus.analysis.bokeh_page import page
from neuroptimus.analysis.feature_figures import best_feature_figure, is_features
from neuroptimus.analysis.figures import (
    components_figure,
    convergence_figure,
    parameters_figure,
    trace_figure,
)
from neuroptimus.analysis.pareto_figures import front_figure, hypervolume_figure
from neuroptimus.analysis.population import (
    diversity_figure,
    parameter_space_figure,
    parameter_spread_figure,
)
from neuroptimus.analysis.posterior_tables import has_chain, posterior_of, true_values
from neuroptimus.analysis.snapshot import read_snapshot
from neuroptimus.analysis.stages import start_summary
from neuroptimus.analysis.trust_tables import identifiability_of
from neuroptimus.analysis.validation_figures import validation_parts
from neuroptimus.storage.runs.run_store import RunStore
from neuroptimus.storage.runs.sensitivity import read_sensitivity
from neuroptimus.storage.runs.validation import read_validation


def _summary(store: RunStore) -> str:
    attrs, best = store.attrs, store.best()
    spec = attrs["spec"]
    lines = [
        f"<h1>{html.escape(spec['name'])}: {html.escape(attrs['algorithm']['label'])}</h1>",
        f"<p>{html.escape(spec.get('description') or '')}</p>",
        f"<p>{store.committed_evaluations} evaluations in {store.committed_generations} "
        f"generations · seed {attrs['seed']} · stopped: {html.escape(str(attrs.get('finished')))}"
        "</p>",
        start_summary(attrs),  # a warm start's source, a chain's stages
    ]
    if best:
        true = {p["name"]: p.get("true_value") for p in spec["parameters"]}
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{value:.6g}</td>"
            f"<td>{'' if true[name] is None else f'{true[name]:.6g}'}</td></tr>"
            for name, value in best["parameters"].items()
        )
        lines.append(
            f"<p>best total error <b>{best['total']:.6g}</b> (generation {best['generation']})</p>"
            f"<table><tr><th>parameter</th><th>best</th><th>true</th></tr>{rows}</table>"
        )
    return "\n".join(lines)


def _section(title: str, note: str = "") -> str:
    return f"<h2>{html.escape(title)}</h2>" + (f"<p>{html.escape(note)}</p>" if note else "")


FEATURES_NOTE = (
    "The best individual's eFEL feature values (diamonds) against the target mean ± std "
    "(black) at each stimulus amplitude that has a statistic; a cross at the bottom of a panel "
    "marks a value eFEL could not compute (scored 250)."
)


def _features(store: RunStore) -> list:
    """The feature section; a note instead of the figure when it cannot be drawn (the run
    has not finished, or its features file is gone)."""
    try:
        figure = best_feature_figure(store)
    except Exception as error:  # the rest of the report is still worth writing
        return [_section("Features", f"Cannot draw the feature figure: {error}")]
    return [_section("Features", FEATURES_NOTE), figure]


def _traces(store: RunStore) -> list:
    """The traces section: an e-model's protocol by protocol over its feature means, then its
    features against their means; otherwise the best over the target."""
    if not emodel_figures.is_emodel(store.attrs["spec"]):
        return [_section("Traces"), trace_figure(store)]
    try:
        return [
            _section("Traces", emodel_figures.TRACES_NOTE),
            emodel_figures.protocol_traces_figure(store),
            _section("Features", emodel_figures.FEATURES_NOTE),
            emodel_figures.emodel_feature_figure(store),
        ]
    except Exception as error:  # the rest of the report is still worth writing
        return [_section("Traces", f"Cannot draw the protocols' traces: {error}")]


def _trust(snapshot) -> list:
    """How far to trust the fit: identifiability from the individuals, and the local
    sensitivity when ``neuroptimus analyze --sensitivity`` stored one; a note where a part
    cannot be drawn (the rest of the report is still worth writing)."""

    title = "How far to trust the fit: identifiability"
    try:
        result = identifiability_of(snapshot)
        parts = [
            _section(title, figures.IDENTIFIABILITY_NOTE),
            figures.identifiability_table(result),
            figures.profile_figure(snapshot.parameters, result, snapshot),
            figures.correlation_figure(result),
        ]
    except Exception as error:
        parts = [_section(title, f"Cannot analyse the individuals: {error}")]
    found = read_sensitivity(snapshot.path)
    title = "Local sensitivity at the best"
    if found is None:
        return parts + [
            _section(title, "Not computed: `neuroptimus analyze STORE --sensitivity` evaluates "
                     "the best's neighbours and adds it here.")
        ]  # fmt: skip
    return parts + [
        _section(title, figures.SENSITIVITY_NOTE),
        figures.sensitivity_table(found),
        figures.sensitivity_figures(found),
    ]


def _validation(store: RunStore) -> list:
    """The held-out validation section, for a problem that has one; a note where it cannot
    be drawn (the rest of the report is still worth writing)."""

    if store.attrs["spec"].get("validation") is None:
        return []
    try:
        return validation_parts(read_validation(store.path), _section)
    except Exception as error:
        return [_section("Held-out validation", f"Cannot draw the validation: {error}")]


def _posterior(path: str) -> list:
    """The sampled posterior of an emcee run (default burn-in: half the chain); a note
    instead where it cannot be summarised."""

    title = "Posterior"
    try:
        summary = posterior_of(path)
    except Exception as error:  # the rest of the report is still worth writing
        return [_section(title, f"Cannot summarise the chain: {error}")]
    truth = true_values(path)
    parameters = RunStore.open(path).attrs["spec"]["parameters"]
    return [
        _section(title, posterior_figures.POSTERIOR_NOTE),
        posterior_figures.posterior_table(summary, truth),
        posterior_figures.pair_figure(summary, parameters, truth),
        posterior_figures.walkers_figure(summary, parameters),
    ]


def report_parts(store: RunStore) -> list:
    """The report's content in order: HTML (a summary, section titles and notes) and the
    HoloViews figures of the run, section by section."""
    snapshot = read_snapshot(store.path)
    parts = [
        _summary(store),
        *_traces(store),
        *(_features(store) if is_features(store.attrs["spec"]) else []),
        _section("Convergence"),
        convergence_figure(store),
        components_figure(store),
        _section(
            "Parameter space",
            "Every evaluated individual; dashed boxes are the bounds, red marks the true values.",
        ),
        parameter_space_figure([snapshot]),
        parameters_figure(store).opts(title="Parameter values of all individuals"),
        _section("Population diversity", "Spread of the population in normalised units."),
        diversity_figure([snapshot]),
        parameter_spread_figure(snapshot),
        *(_posterior(snapshot.path) if has_chain(store.attrs) else []),
        *_trust(snapshot),
        *_validation(store),
    ]
    if len(snapshot.component_names) > 1 and len(snapshot.front_rows):
        parts += [
            _section("Pareto front", "Individuals no other beats in every error component."),
            front_figure(snapshot, 0, 1),
            hypervolume_figure([snapshot]),
        ]
    return parts


def write_report(store: RunStore | str | Path, path: str | Path) -> Path:
    """Write ``report.html`` with every script inlined, so it opens from disk without a
    network. Given the store's path, a process with one thread renders it on two cores."""

    def build() -> tuple[str, list]:
        run = store if isinstance(store, RunStore) else RunStore.open(store)
        return f"Neuroptimus report: {run.attrs['spec']['name']}", report_parts(run)

    path = Path(path)
    path.write_text(page(build), encoding="utf-8")
    return path


__all__ = ["report_parts", "write_report"]
