"""The self-contained HTML report of one run (opens from disk, no server, no network)."""

from __future__ import annotations

import html
from pathlib import Path

import panel as pn
from bokeh.resources import INLINE

from analysis.figures import components_figure, convergence_figure, parameters_figure, trace_figure
from storage.run_store import RunStore


def _summary(store: RunStore) -> str:
    attrs, best = store.attrs, store.best()
    spec = attrs["spec"]
    lines = [
        f"<h1>{html.escape(spec['name'])}: {html.escape(attrs['algorithm']['label'])}</h1>",
        f"<p>{html.escape(spec.get('description') or '')}</p>",
        f"<p>{store.committed_evaluations} evaluations in {store.committed_generations} "
        f"generations · seed {attrs['seed']} · stopped: {html.escape(str(attrs.get('finished')))}"
        "</p>",
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


def report_layout(store: RunStore) -> pn.Column:
    """The report's content: a summary, then the four figures of the run."""
    figures = [
        trace_figure(store),
        convergence_figure(store),
        components_figure(store),
        parameters_figure(store).opts(title="Parameter values of all individuals"),
    ]
    return pn.Column(pn.pane.HTML(_summary(store)), *(pn.pane.HoloViews(f) for f in figures))


def write_report(store: RunStore, path: str | Path) -> Path:
    """Write ``report.html`` with every script inlined, so it opens from disk."""
    path = Path(path)
    spec_name = store.attrs["spec"]["name"]
    report_layout(store).save(
        str(path), resources=INLINE, embed=False, title=f"Neuroptimus report: {spec_name}"
    )
    return path


__all__ = ["report_layout", "write_report"]
