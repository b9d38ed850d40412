"""The wave problem (``tests/analysis/trust_runs``: a Python model, cheap) with a held-out
validation: a longer recording of the same wave (150 ms instead of 100 ms, noise of another
seed) that the fit never sees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from tests.analysis import trust_runs

HELD_OUT_MS = 150.0


def write_held_out(path: Path) -> None:
    time = np.arange(int(HELD_OUT_MS / trust_runs.DT_MS) + 1) * trust_runs.DT_MS
    noise = np.random.default_rng(23).normal(0.0, 0.5, len(time))
    trace = -65.0 + 8.0 * np.sin(2 * np.pi * time / 40.0) + noise
    np.savetxt(path, np.column_stack([time, trace]), fmt="%.10g")


def validation_section(best: int = 4) -> dict:
    return {
        "best": best,
        "protocol": {"tstop_ms": HELD_OUT_MS, "dt_ms": trust_runs.DT_MS},
        "target": {"file": "held_out.txt", "sampling_rate_hz": 1000 / trust_runs.DT_MS},
    }


def write_problem(folder: Path, validation: dict | None = None, **settings) -> Path:
    """The wave problem in ``folder`` with ``validation`` (default: the held-out recording)."""
    path = trust_runs.write_problem(folder, **settings)
    write_held_out(folder / "held_out.txt")
    data = yaml.safe_load(path.read_text())
    data["validation"] = validation_section() if validation is None else validation
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_store(folder: Path, **settings) -> Path:
    """A finished run store of the wave problem with its validation: section in ``folder``
    (CMA-ES, real evaluations in this process; nothing validated yet)."""
    return trust_runs.finished_run(
        write_problem(folder / "problem", **settings), folder / "wave.zarr"
    )
