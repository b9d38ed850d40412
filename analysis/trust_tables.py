"""The identifiability and sensitivity of a run store as tables: text for the terminal, CSV
(``neuroptimus analyze STORE --identifiability / --sensitivity``). No plotting libraries, so
the command answers without importing them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from neuroptimus.analysis.snapshot import RunSnapshot, read_snapshot
from neuroptimus.optimization.trust import identifiability, sensitivity


def identifiability_of(
    run: RunSnapshot | str | Path,
    factor: float = identifiability.FACTOR,
    k_sd: float = identifiability.K_SD,
) -> identifiability.Identifiability:
    """The identifiability analysis of a store's committed individuals."""
    snapshot = run if isinstance(run, RunSnapshot) else read_snapshot(run)
    rows = snapshot.rows
    features = snapshot.spec.get("target", {}).get("features") is not None
    return identifiability.analyse(
        snapshot.parameters, rows["parameters"], snapshot.unit, rows["total"], rows["errors"],
        rows["status"], rows["generation"], features=features, factor=factor, k_sd=k_sd,
    )  # fmt: skip


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def identifiability_text(result: identifiability.Identifiability) -> str:
    """The table as the terminal shows it, under a line saying what it rests on."""
    lines = [
        f"{result.evaluated} individuals, best total {result.best_total:.6g}; near-optimal: "
        f"{result.rule}: {len(result.near_rows)} individuals",
        f"{'parameter':<20} {'best':>11} {'near-optimal range':>23} {'width':>6} {'rise':>5} "
        f"{'z':>6}  flags",
    ]
    for p in result.parameters:
        span = f"{p.near_low:.4g} – {p.near_high:.4g}"
        lines.append(
            f"{p.name:<20} {p.best:>11.4g} {span:>23} {p.near_width:>6.2f} "
            f"{p.envelope_rise:>5.2f} {p.constraint_z:>6.1f}  {'; '.join(p.flags)}"
        )
    lines.append(
        "width: the near-optimal range as a share of the bounds; rise: decades the lowest "
        "error found rises across the range; z: how far the error's dependence on it (given "
        "the other parameters, within generations) lies above what a parameter with no effect "
        f"shows, in SDs of shuffles (not constrained below {identifiability.Z:g})"
    )
    return "\n".join(lines)


NO_EFFECT = "no effect"  # the flag of a parameter whose two points gave the best's results


def no_effect(found: dict[str, Any]) -> list[str]:
    """The parameters of a stored sensitivity that changed nothing (``sensitivity.no_effect``)."""
    inert = sensitivity.no_effect(
        found["total"], found["status"], found["sensitivity"], found["best_total"]
    )
    return [name for name, flag in zip(found["parameter_names"], inert, strict=True) if flag]


def sensitivity_rows(found: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per parameter of a stored sensitivity (``storage.sensitivity``)."""
    names = list(found["parameter_names"])
    values = np.asarray(found["sensitivity"], dtype=float)
    top = np.nanmax(values) if np.any(np.isfinite(values)) else np.nan
    inert = set(no_effect(found))
    return [
        {
            "parameter": name,
            "sensitivity": float(values[j]),
            "relative": float(values[j] / top) if top > 0 else float("nan"),
            "slope_total": float(found["slope"][j]),
            "curvature_total": float(found["curvature"][j]),
            "flags": NO_EFFECT if name in inert else "",
        }
        for j, name in enumerate(names)
    ]


def sensitivity_text(found: dict[str, Any]) -> str:
    names = list(found["parameter_names"])
    lines = [
        f"Jacobian of the {len(found['component_names'])} weighted error component(s) at the "
        f"best (row {found['best_row']}, total {found['best_total']:.6g}); step "
        f"{found['step']:g} of each normalised range, {len(found['total'])} evaluations",
        f"{'parameter':<20} {'sensitivity':>12} {'relative':>9} {'d total/du':>12} "
        f"{'d² total/du²':>13}  flags",
    ]
    rows = sensitivity_rows(found)
    for row in rows:
        lines.append(
            f"{row['parameter']:<20} {row['sensitivity']:>12.4g} {row['relative']:>9.3f} "
            f"{row['slope_total']:>12.4g} {row['curvature_total']:>13.4g}  {row['flags']}"
        )
    status = np.asarray(found["status"])
    failed = [n for n, bad in zip(names, status[0::2] | status[1::2], strict=True) if bad]
    if failed:
        lines.append(f"an evaluation failed for: {', '.join(failed)} (no derivative)")
    inert = [row["parameter"] for row in rows if row["flags"] == NO_EFFECT]
    if inert:
        lines.append(
            f"{NO_EFFECT}: {', '.join(inert)} — both points gave exactly the best's errors; "
            "the model may not read it (check where it is set) and the data cannot fix it"
        )
    values = np.asarray(found["eigenvalues"], dtype=float)
    lines.append("directions of JᵀJ, stiffest first (eigenvalue: leading parameters):")
    for i, value in enumerate(values):
        parts = sensitivity.leading(np.asarray(found["eigenvectors"])[:, i], names)
        text = ", ".join(f"{weight:+.2f} {name}" for name, weight in parts)
        lines.append(f"  {value:>11.4g}: {text}")
    return "\n".join(lines)


__all__ = [
    "NO_EFFECT", "identifiability_of", "identifiability_text", "no_effect", "sensitivity_rows",
    "sensitivity_text", "write_csv",
]  # fmt: skip
