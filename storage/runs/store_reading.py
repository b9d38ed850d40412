"""What a run store gives its readers (the explorer, the report, the catalog's ingest, a
resume): its attributes, committed evaluations and generations, the best individual, the front
after a generation, and the checkpoint and journal a resume continues. The part of
:class:`~neuroptimus.storage.runs.run_store.RunStore` that reads (it provides ``path``,
``group`` and ``flush``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroptimus.optimization import pickles
from neuroptimus.optimization.loop.runner import Checkpoint
from neuroptimus.storage.runs import journal as journals
from neuroptimus.storage.runs.fronts import read_entries, rows_at


class RunStoreReading:
    """A run store's reading methods; only committed rows and generations are read."""

    @property
    def attrs(self) -> dict[str, Any]:
        self.flush()
        return dict(self.group.attrs)

    @property
    def parameter_names(self) -> list[str]:
        return list(self.group.attrs["parameter_names"])

    @property
    def component_names(self) -> list[str]:
        return list(self.group.attrs["component_names"])

    def front(self, generation: int | None = None) -> np.ndarray:
        """Evaluation rows on the non-dominated front after ``generation`` (default: last);
        empty for a run without fronts."""
        committed = self.committed_generations
        generation = committed - 1 if generation is None else generation
        return rows_at(*read_entries(self.group, committed), generation)

    def checkpoint(self) -> Checkpoint | None:
        self.flush()
        return self._read_checkpoint()

    def _read_checkpoint(self) -> Checkpoint | None:
        path = self.path / "checkpoint.pkl"
        if not path.exists():
            return None
        with open(path, "rb") as handle:
            return pickles.load(handle)

    def journal(self, checkpoint: Checkpoint | None) -> list[Any]:
        """The journal records the checkpoint's algorithm state continues."""
        length = checkpoint.journal_bytes if checkpoint else 0
        return journals.read(self.path / "journal.bin", length)

    @property
    def committed_evaluations(self) -> int:
        self.flush()
        return int(self.group.attrs["committed_evaluations"])

    @property
    def committed_generations(self) -> int:
        self.flush()
        return int(self.group.attrs["committed_generations"])

    def evaluations(self) -> dict[str, np.ndarray]:
        """Committed rows of every evaluation array."""
        n = self.committed_evaluations
        return {name: array[:n] for name, array in self.group["evaluations"].arrays()}

    def generations(self) -> dict[str, np.ndarray]:
        g = self.committed_generations
        return {name: array[:g] for name, array in self.group["generations"].arrays()}

    def arrays(self, group: str) -> dict[str, np.ndarray]:
        if group not in self.group:
            return {}
        return {name: array[...] for name, array in self.group[group].arrays()}

    def best(self) -> dict[str, Any] | None:
        """The committed individual with the lowest total error (reads one column, then one
        row: cheap enough to call every few generations)."""
        n = self.committed_evaluations
        if not n:
            return None
        evaluations = self.group["evaluations"]
        index = int(np.argmin(evaluations["total"][:n]))
        return {
            "index": index,
            "generation": int(evaluations["generation"][index]),
            "parameters": dict(
                zip(self.parameter_names, map(float, evaluations["parameters"][index]), strict=True)
            ),
            "errors": dict(
                zip(self.component_names, map(float, evaluations["errors"][index]), strict=True)
            ),
            "total": float(evaluations["total"][index]),
        }
