"""A consistent, in-memory view of a run store's committed rows, re-read cheaply while it grows.

A writer appends a generation's rows and only then raises ``committed_evaluations`` /
``committed_generations``; a reader that slices every array at those counts never sees a
half-written generation. Committed rows never change afterwards (a retried generation only
overwrites uncommitted rows), so a refresh reads just the rows added since the last snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from neuroptimus.optimization.problem.model_spec import ParameterSpec
from neuroptimus.optimization.problem.parameters import ParameterSpace
from neuroptimus.storage.runs.fronts import read_entries, rows_at
from neuroptimus.storage.runs.run_store import RunStore

# The numeric columns figures need; ``worker`` and ``message`` (strings, slow to read for
# millions of rows) are read only for the individuals a user picks (see ``messages``).
ROW_COLUMNS = ("parameters", "errors", "total", "generation", "status")


@dataclass(frozen=True, eq=False)
class RunSnapshot:
    """Committed rows and statistics of one run; mirrors the read API of ``RunStore``."""

    path: str
    attrs: dict[str, Any]
    rows: dict[str, np.ndarray]  # ROW_COLUMNS, committed rows only
    stats: dict[str, np.ndarray]  # generations/*, committed generations only
    # the front's membership table (neuroptimus.storage.runs.fronts): evaluation row, generation it
    # joined the front and the one it left; empty for a run without fronts (single-objective)
    front_rows: np.ndarray
    front_entered: np.ndarray
    front_left: np.ndarray
    target: dict[str, np.ndarray] = field(default_factory=dict)  # time, trace (t × sweeps)
    best_trace: dict[str, np.ndarray] = field(default_factory=dict)  # written when finished

    # -- the RunStore read API, so neuroptimus.analysis.figures draws from either ---------------
    @property
    def committed_evaluations(self) -> int:
        return len(self.rows["total"])

    @property
    def committed_generations(self) -> int:
        return len(self.stats.get("best", ()))

    @property
    def parameter_names(self) -> list[str]:
        return list(self.attrs["parameter_names"])

    @property
    def component_names(self) -> list[str]:
        return list(self.attrs["component_names"])

    def evaluations(self) -> dict[str, np.ndarray]:
        return self.rows

    def generations(self) -> dict[str, np.ndarray]:
        return self.stats

    def arrays(self, group: str) -> dict[str, np.ndarray]:
        return {"target": self.target, "best": self.best_trace}.get(group, {})

    # -- facts about the run ------------------------------------------------------------
    @property
    def spec(self) -> dict[str, Any]:
        return self.attrs["spec"]

    @property
    def parameters(self) -> list[dict[str, Any]]:
        """Parameter specs (name, unit, lower, upper, log, true_value) in column order."""
        return list(self.spec["parameters"])

    @property
    def weights(self) -> np.ndarray:
        return np.asarray(self.attrs["weights"], dtype=float)

    @property
    def algorithm(self) -> str:
        return str(self.attrs["algorithm"]["label"])

    @property
    def seed(self) -> int:
        return int(self.attrs["seed"])

    @property
    def problem(self) -> str:
        return str(self.spec["name"])

    @property
    def label(self) -> str:
        return f"{self.algorithm} · seed {self.seed}"

    @property
    def finished(self) -> str | None:
        return self.attrs.get("finished")

    @property
    def trace_unit(self) -> str:
        recording = (self.spec.get("protocol") or {}).get("recording") or {}  # emodel: voltages
        variable = recording.get("variable", "v")
        return "nA" if variable == "clamp_current" else "mV"

    @cached_property
    def unit(self) -> np.ndarray:
        """Parameters in the algorithms' unit cube (log-scaled ones uniform in log10)."""
        return stored_space(self.parameters).to_unit(self.rows["parameters"])

    def front(self, generation: int | None = None) -> np.ndarray:
        """Rows on the non-dominated front after ``generation`` (default: the last one)."""
        if generation is None:
            generation = self.committed_generations - 1
        return rows_at(self.front_rows, self.front_entered, self.front_left, generation)

    def best_row(self) -> int | None:
        return int(np.argmin(self.rows["total"])) if self.committed_evaluations else None

    def messages(self, rows: np.ndarray) -> list[str]:
        """Status messages of a few rows (read from the store on demand)."""
        rows = np.asarray(rows, dtype=int)
        if not len(rows):
            return []
        array = RunStore.open(self.path).group["evaluations"]["message"]
        return [str(m) for m in array.get_coordinate_selection(rows)]


def stored_space(parameters: list[dict[str, Any]]) -> ParameterSpace:
    """The parameter space of parameter specs as a store keeps them (JSON)."""
    return ParameterSpace.from_specs([ParameterSpec.model_validate(p) for p in parameters])


def read_snapshot(path: str | Path, previous: RunSnapshot | None = None) -> RunSnapshot:
    """The committed state of the store at ``path``; reuses ``previous`` rows when it grew."""
    store = RunStore.open(path)
    attrs = store.attrs
    n = int(attrs["committed_evaluations"])
    g = int(attrs["committed_generations"])
    if previous is not None and previous.attrs == attrs:
        return previous  # nothing committed since (the counts live in the attributes)
    reuse = previous is not None and previous.committed_evaluations <= n
    start = previous.committed_evaluations if reuse else 0
    evaluations = store.group["evaluations"]
    rows = {name: evaluations[name][start:n] for name in ROW_COLUMNS}
    if reuse and start:
        rows = {name: np.concatenate([previous.rows[name], rows[name]]) for name in ROW_COLUMNS}
    stats = {name: array[:g] for name, array in store.group["generations"].arrays()}
    front_rows, front_entered, front_left = read_entries(store.group, g)
    target = previous.target if reuse and previous.target else store.arrays("target")
    return RunSnapshot(
        path=str(path),
        attrs=attrs,
        rows=rows,
        stats=stats,
        front_rows=front_rows,
        front_entered=front_entered,
        front_left=front_left,
        target=target,
        best_trace=store.arrays("best") if attrs.get("finished") else {},
    )


def refresh(snapshots: dict[str, RunSnapshot]) -> tuple[dict[str, RunSnapshot], list[str]]:
    """Re-read every store; returns the new snapshots and the paths whose data changed."""
    fresh, changed = {}, []
    for path, old in snapshots.items():
        try:
            new = read_snapshot(path, old)
        except Exception:  # a store being created or moved: keep what we had
            new = old
        fresh[path] = new
        if new is not old:
            changed.append(path)
    return fresh, changed


__all__ = ["ROW_COLUMNS", "RunSnapshot", "read_snapshot", "refresh"]
