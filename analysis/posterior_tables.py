"""The posterior of a sampled run store as a table: text for the terminal, CSV
(``neuroptimus analyze STORE --posterior``). Reads the stored chain only: nothing is
simulated, and no plotting library is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neuroptimus.analysis.snapshot import stored_space
from neuroptimus.optimization.trust.posterior import (
    TRUSTED_LENGTH_TAUS,
    ChainError,
    PosteriorSummary,
    summarise,
)
from neuroptimus.storage.runs.algorithm_rows import read_rows
from neuroptimus.storage.runs.run_store import RunStore

CHAIN_GROUP = "chain"  # where the emcee algorithm's rows are kept


def has_chain(attrs: dict[str, Any]) -> bool:
    """True for a store whose run sampled a posterior (and has committed steps)."""
    return int(attrs.get("chain_steps") or 0) > 0


def posterior_of(path: str | Path, burn: int | None = None, thin: int = 1) -> PosteriorSummary:
    """The posterior summary of the chain stored at ``path`` (real units)."""
    store = RunStore.open(path)
    attrs = store.attrs
    if not has_chain(attrs):
        raise ChainError(
            f"{path} holds no posterior chain: sample one with algorithm emcee (a run whose "
            "costs are feature z-scores or MSE with the setting noise_sd_mV)"
        )
    chain = read_rows(store.group, CHAIN_GROUP, int(attrs["chain_steps"]))
    parameters = list(attrs["spec"]["parameters"])
    unit = chain["positions"]
    real = stored_space(parameters).to_real(unit.reshape(-1, unit.shape[-1])).reshape(unit.shape)
    names = [p["name"] for p in parameters]
    return summarise(names, real, chain["accepted"], chain["log_probability"], burn=burn, thin=thin)


def true_values(path: str | Path) -> dict[str, float]:
    """The parameters' stated true values (a synthetic problem's), by name."""
    parameters = RunStore.open(path).attrs["spec"]["parameters"]
    return {p["name"]: p["true_value"] for p in parameters if p.get("true_value") is not None}


def posterior_rows(summary: PosteriorSummary) -> list[dict[str, Any]]:
    """One CSV row per parameter."""
    percent = f"{summary.level * 100:g}"
    return [
        {
            "parameter": p.name,
            "median": p.median,
            "mean": p.mean,
            "sd": p.sd,
            f"ci{percent}_low": p.low,
            f"ci{percent}_high": p.high,
            "tau_steps": p.tau_steps,
            "steps": summary.steps,
            "burn": summary.burn,
            "thin": summary.thin,
            "walkers": summary.walkers,
            "stuck_walkers": len(summary.stuck),
            "acceptance": summary.acceptance,
        }
        for p in summary.parameters
    ]


def posterior_text(summary: PosteriorSummary) -> str:
    """The table as the terminal shows it, with its diagnostics and warnings."""
    percent = f"{summary.level * 100:g} %"
    lines = [
        f"{summary.walkers} walkers × {summary.steps} steps; burn-in {summary.burn}, thin "
        f"{summary.thin}, {len(summary.stuck)} walker(s) far below the others left out: "
        f"{len(summary.samples)} samples; mean acceptance fraction "
        f"{summary.acceptance:.2f}",
        f"{'parameter':<20} {'median':>11} {'sd':>10} {percent + ' interval':>25} {'τ':>7}",
    ]
    for p in summary.parameters:
        span = f"{p.low:.4g} – {p.high:.4g}"
        lines.append(f"{p.name:<20} {p.median:>11.4g} {p.sd:>10.3g} {span:>25} {p.tau_steps:>7.1f}")
    lines.append(
        f"interval: central {percent} credible interval; τ: integrated autocorrelation time in "
        f"steps (emcee; trusted from a chain of about {TRUSTED_LENGTH_TAUS} τ)"
    )
    lines += [f"warning: {note}" for note in summary.warnings]
    return "\n".join(lines)


def contains(summary: PosteriorSummary, values: dict[str, float]) -> dict[str, bool]:
    """Which of ``values`` lie inside their parameter's credible interval."""
    return {p.name: bool(p.low <= values[p.name] <= p.high) for p in summary.parameters
            if p.name in values and np.isfinite(values[p.name])}  # fmt: skip
