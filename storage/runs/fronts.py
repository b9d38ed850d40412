"""The non-dominated front of a run, kept incrementally as a table of membership intervals.

On disk (``fronts/`` of a run store) one entry per time a row joined the front::

    row      evaluation row
    entered  generation after which it is on the front
    left     generation after which it no longer is (``STILL_ON`` while it is)

so the front after generation g is every entry with ``entered <= g < left``. A generation
appends the rows that joined and sets ``left`` of the rows they dominate: its cost depends on
what changed, not on the size of the front or on the number of generations. Entries of a
generation not yet committed are invisible to readers (``entered`` is beyond what they read,
and a ``left`` set by it is too). The arrays are allocated in large steps; unused slots hold
fill values that no generation selects.

Stores written before this layout kept the whole front per generation (``fronts/generation``);
they read as entries lasting one generation each.
"""

from __future__ import annotations

import numpy as np
import zarr

from neuroptimus.optimization.scoring.pareto import merge_front

STILL_ON = np.iinfo(np.int32).max
CHUNK = 4096
_FILL = {"row": -1, "entered": STILL_ON, "left": STILL_ON}
_DTYPES = {"row": "i8", "entered": "i4", "left": "i4"}


def create_front_arrays(group: zarr.Group) -> None:
    fronts = group.create_group("fronts")
    for name, dtype in _DTYPES.items():
        fronts.create_array(name, shape=(0,), chunks=(CHUNK,), dtype=dtype, fill_value=_FILL[name])


def read_entries(group: zarr.Group, generations: int) -> tuple[np.ndarray, ...]:
    """(row, entered, left) of the entries of committed generations (below ``generations``);
    empty arrays for a run without fronts."""
    if "fronts" not in group:
        return np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32)
    fronts = group["fronts"]
    if "generation" in fronts:  # the older layout: the whole front after every generation
        row, entered = fronts["row"][:], fronts["generation"][:]
        m = min(len(row), len(entered))
        row, entered = row[:m], entered[:m]
        left = entered + 1
    else:
        row, entered, left = (fronts[name][:] for name in ("row", "entered", "left"))
    kept = entered < generations
    return row[kept], entered[kept], left[kept]


def rows_at(row: np.ndarray, entered: np.ndarray, left: np.ndarray, generation: int) -> np.ndarray:
    """Evaluation rows on the front after ``generation``."""
    return row[(entered <= generation) & (generation < left)]


class FrontTable:
    """The writer's copy of the table plus the weighted errors of its entries (to merge new
    rows without reading the store back)."""

    def __init__(self, k: int) -> None:
        self.row = np.zeros(0, np.int64)
        self.entered = np.zeros(0, np.int32)
        self.left = np.zeros(0, np.int32)
        self.errors = np.zeros((0, k))
        # successful rows of the generation being written (a generation written in several
        # calls merges all of them; a retried one replaces them)
        self._generation, self._pending_rows, self._pending_errors = -1, np.zeros(0, int), None

    @property
    def size(self) -> int:
        return len(self.row)

    def members(self) -> np.ndarray:
        """Entry indices on the current front."""
        return np.flatnonzero(self.left == STILL_ON)

    @classmethod
    def load(cls, group: zarr.Group, generations: int, weighted: np.ndarray) -> FrontTable:
        """The committed table of ``group``; ``weighted`` holds the weighted error vectors of
        every committed evaluation row."""
        row, entered, left = read_entries(group, generations)
        # a row that left in a generation not committed is still on the front
        left = np.where(left >= generations, STILL_ON, left).astype(np.int32)
        table = cls(weighted.shape[1])
        table.row, table.entered, table.left = row.astype(np.int64), entered.astype(np.int32), left
        table.errors = weighted[row] if len(row) else np.zeros((0, weighted.shape[1]))
        return table

    def undo(self, generation: int) -> None:
        """Forget what ``generation`` and later ones did (a retry or a rollback)."""
        kept = self.entered < generation
        self.row, self.entered = self.row[kept], self.entered[kept]
        self.left, self.errors = self.left[kept], self.errors[kept]
        self.left[self.left >= generation] = STILL_ON

    def add(self, generation: int, offset: int, rows: np.ndarray, errors: np.ndarray) -> np.ndarray:
        """Merge the successful ``rows`` (written at ``offset`` or later) of ``generation``;
        returns the entry indices whose values changed (what the caller must write)."""
        if generation != self._generation:
            self._generation = generation
            self._pending_rows, self._pending_errors = np.zeros(0, int), errors[:0]
        kept = self._pending_rows < offset  # rows from ``offset`` on were overwritten
        self._pending_rows = np.concatenate([self._pending_rows[kept], rows])
        self._pending_errors = np.concatenate([self._pending_errors[kept], errors])
        before, size = self.left.copy(), self.size
        self.undo(generation)
        first = self.size  # entries from here on are this generation's (or were, before)
        members = self.members()
        stays, joins = merge_front(self.errors[members], self._pending_errors)
        self.left[members[~stays]] = generation
        joined = int(np.count_nonzero(joins))
        self.row = np.concatenate([self.row, self._pending_rows[joins]])
        self.entered = np.concatenate([self.entered, np.full(joined, generation, np.int32)])
        self.left = np.concatenate([self.left, np.full(joined, STILL_ON, np.int32)])
        self.errors = np.concatenate([self.errors, self._pending_errors[joins]])
        left = np.flatnonzero(self.left[:first] != before[:first])
        return np.concatenate([left, np.arange(first, max(size, self.size))])

    def front_errors(self) -> np.ndarray:
        return self.errors[self.members()]

    def at(self, generation: int) -> np.ndarray:
        """Entry indices on the front after ``generation`` (for a hypervolume recomputed
        after a resume)."""
        return np.flatnonzero((self.entered <= generation) & (generation < self.left))

    def columns(self, capacity: int) -> dict[str, np.ndarray]:
        """The table padded with fill values to ``capacity`` entries, as written to disk."""
        columns = {}
        for name in _DTYPES:
            values = np.full(capacity, _FILL[name], dtype=_DTYPES[name])
            values[: self.size] = getattr(self, name)
            columns[name] = values
        return columns
