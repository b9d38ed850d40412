"""HoloViews figures of one run (bokeh backend), computed from stored arrays only; each takes
a ``RunStore`` or a ``RunSnapshot`` (the explorer's in-memory view of one)."""

from __future__ import annotations

import holoviews as hv
import numpy as np

from neuroptimus.analysis.snapshot import RunSnapshot
from neuroptimus.analysis.stages import stage_marks
from neuroptimus.storage.runs.run_store import RunStore

Run = RunStore | RunSnapshot

hv.extension("bokeh", logo=False)

WIDTH, HEIGHT = 900, 320


def positive(values: np.ndarray) -> np.ndarray:
    """Log axes cannot show zero errors: floor them at a small positive value."""
    values = np.asarray(values, dtype=float)
    floor = np.nanmin(values[values > 0]) / 10 if np.any(values > 0) else 1e-12
    return np.maximum(values, floor)


def log_limits(*curves: hv.Curve) -> dict:
    """``ylim`` for a log axis whose curves' values are all one number (a run of one
    generation): the range HoloViews pads around a single value reaches zero, which a log axis
    cannot show."""
    values = np.concatenate([curve.dimension_values(1) for curve in curves])
    values = values[np.isfinite(values)]
    if len(values) and values.min() == values.max() > 0:
        return {"ylim": (values.min() / 10, values.max() * 10)}
    return {}


def trace_figure(store: Run) -> hv.Overlay:
    """Best individual's simulated trace over the target, one colour pair per sweep."""
    target, best = store.arrays("target"), store.arrays("best")
    spec = store.attrs["spec"]
    recording = (spec.get("protocol") or {}).get("recording") or {}  # emodel: voltages
    unit = "nA" if recording.get("variable") == "clamp_current" else "mV"
    if "trace" not in target:  # feature-statistics targets have no trace
        return best_traces_figure(spec, best, unit)
    curves = []
    for k in range(target["trace"].shape[1]):
        sweep = f" (sweep {k + 1})" if target["trace"].shape[1] > 1 else ""
        axes = ("time (ms)", unit)
        curves.append(
            hv.Curve((target["time"], target["trace"][:, k]), *axes, label=f"target{sweep}").opts(
                color="black", line_width=2, alpha=0.6
            )
        )
        if "trace" in best:
            curves.append(
                hv.Curve((best["time"], best["trace"][:, k]), *axes, label=f"best{sweep}").opts(
                    color="#d62728", line_width=1
                )
            )
    return hv.Overlay(curves).opts(
        title="Best individual over the target", width=WIDTH, height=HEIGHT, legend_position="right"
    )


def best_traces_figure(spec: dict, best: dict[str, np.ndarray], unit: str) -> hv.Overlay:
    """Best individual's simulated sweeps alone, labelled by stimulus amplitude."""
    amplitudes = ((spec.get("protocol") or {}).get("stimulus") or {}).get("amplitudes") or []
    if spec.get("protocols"):  # an emodel problem: its recordings, protocol by protocol
        labels = [f"{p['name']}.{r['name']}" for p in spec["protocols"] for r in p["recordings"]]
    else:
        labels = [f"{a:g} nA" for a in amplitudes]
    curves = [hv.Curve([], "time (ms)", unit)]  # an empty figure until the run has finished
    if "trace" in best:
        sweeps = best["trace"].shape[1]
        colours = hv.plotting.util.process_cmap("viridis", max(sweeps, 2))
        curves = [
            hv.Curve((best["time"], best["trace"][:, k]), "time (ms)", unit,
                     label=labels[k] if k < len(labels) else f"sweep {k + 1}",
                     ).opts(color=colours[k], line_width=1)
            for k in range(sweeps)
        ]  # fmt: skip
    return hv.Overlay(curves).opts(
        title="Best individual's simulated traces", width=WIDTH, height=HEIGHT,
        legend_position="right",
    )  # fmt: skip


def convergence_figure(store: Run) -> hv.Overlay:
    """Cumulative minimum error per generation, with each generation's best and median."""
    stats = store.generations()
    generation = np.arange(len(stats["best"]))
    lines = [
        hv.Curve(
            (generation, positive(stats[name])), "generation", "total error", label=label
        ).opts(color=color, line_width=width)
        for name, label, color, width in [
            ("cumulative_best", "best so far", "#1f77b4", 3),
            ("best", "generation best", "#2ca02c", 1),
            ("median", "generation median", "#ff7f0e", 1),
        ]
    ]
    # a chain: a dashed line where each stage began
    top = float(np.nanmax(positive(stats["median"]))) if len(generation) else 1.0
    marks = stage_marks(store.attrs, stats.get("evaluations", []), top)
    return hv.Overlay(lines + marks).opts(
        title="Convergence", logy=True, width=WIDTH, height=HEIGHT, legend_position="right",
        **log_limits(*lines),
    )  # fmt: skip


def components_figure(store: Run) -> hv.Overlay:
    """Weighted error components of each generation's best individual."""
    rows = store.evaluations()
    weights = np.array(store.attrs["weights"])
    generations = rows["generation"]
    count = store.committed_generations
    best_rows = np.full(count, -1)
    for g in range(count):  # one pass per generation, not per individual
        members = np.flatnonzero(generations == g)
        if len(members):
            best_rows[g] = members[np.argmin(rows["total"][members])]
    kept = best_rows >= 0
    weighted = rows["errors"][best_rows[kept]] * weights
    x = np.arange(count)[kept]
    curves = [
        hv.Curve((x, positive(weighted[:, j])), "generation", "weighted error", label=name)
        for j, name in enumerate(store.component_names)
    ]
    return hv.Overlay(curves).opts(
        title="Error components of each generation's best individual",
        logy=True, width=WIDTH, height=HEIGHT, legend_position="right", **log_limits(*curves),
    )  # fmt: skip


def parameters_figure(store: Run) -> hv.Layout:
    """Every individual's parameter values per generation, coloured by log10 total error,
    with the bounds (dashed) and, for surrogate problems, the true value (black)."""
    rows = store.evaluations()
    log_error = np.log10(positive(rows["total"]))
    panels = []
    for j, parameter in enumerate(store.attrs["spec"]["parameters"]):
        name = parameter["name"]
        label = f"{name} ({parameter['unit']})" if parameter.get("unit") else name
        points = hv.Points(
            (rows["generation"], rows["parameters"][:, j], log_error),
            ["generation", label], ["log10 error"],
        ).opts(color="log10 error", cmap="viridis", size=4, alpha=0.6, colorbar=True,
               tools=["hover"])  # fmt: skip
        marks = [
            hv.HLine(parameter["lower"]).opts(color="grey", line_dash="dashed"),
            hv.HLine(parameter["upper"]).opts(color="grey", line_dash="dashed"),
        ]
        if parameter.get("true_value") is not None:
            marks.append(hv.HLine(parameter["true_value"]).opts(color="black", line_width=2))
        panels.append(
            hv.Overlay([points, *marks]).opts(
                title=name, width=WIDTH // 2, height=HEIGHT, logy=bool(parameter.get("log"))
            )
        )
    return hv.Layout(panels).cols(2)
