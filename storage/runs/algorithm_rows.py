"""Rows an algorithm asks the run store to keep in a group of its own (a sampler's chain:
one row per step), written at their row index so a generation run again after a resume
overwrites its rows instead of adding them twice. Readers trust the rows the algorithm's
attributes count (e.g. ``chain_steps``), which are set after each checkpoint."""

from __future__ import annotations

import numpy as np
import zarr

GROWTH = 256  # rows added at a time: an array is not resized at every step


def write_rows(root: zarr.Group, name: str, first: int, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` (each of shape (n, ...)) as rows ``first`` to ``first + n`` of the
    arrays of group ``name`` (created and grown as needed)."""
    group = root.require_group(name)
    for key, values in arrays.items():
        values = np.asarray(values)
        end = first + len(values)
        if key not in group:
            shape = (max(end, GROWTH),) + values.shape[1:]
            chunks = (GROWTH,) + values.shape[1:]
            group.create_array(key, shape=shape, chunks=chunks, dtype=values.dtype)
        array = group[key]
        if array.shape[0] < end:
            array.resize((max(end, array.shape[0] + GROWTH),) + array.shape[1:])
        array[first:end] = values


def read_rows(root: zarr.Group, name: str, count: int) -> dict[str, np.ndarray]:
    """The first ``count`` rows of every array of group ``name`` (empty: no such group)."""
    if name not in root:
        return {}
    return {key: array[:count] for key, array in root[name].arrays()}
