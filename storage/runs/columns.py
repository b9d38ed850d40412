"""Cheap appends to Zarr arrays: room made in large steps, and one round trip per batch.

Every Zarr call from synchronous code is a round trip to Zarr's event-loop thread, and a resize
rewrites the array's metadata; a generation touches some twenty arrays. So arrays grow by whole
chunks (the store's ``committed_*`` counters, not the shapes, say how much is valid), and all the
writes of one generation go out together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

Write = tuple[zarr.Array, Any, np.ndarray]  # array, selection, values


def room(array: zarr.Array, needed: int) -> None:
    """Make the first axis of ``array`` at least ``needed`` long, in whole chunks (at least
    doubling, so a long run resizes a handful of times)."""
    length = array.shape[0]
    if length >= needed:
        return
    chunk = array.chunks[0]
    target = max(needed, 2 * length)
    array.resize((-(-target // chunk) * chunk,) + array.shape[1:])


def write_all(writes: Sequence[Write]) -> None:
    """Perform the writes concurrently, in one call into Zarr."""
    if not writes:
        return

    async def together() -> None:
        await asyncio.gather(
            *(array.async_array.setitem(selection, values) for array, selection, values in writes)
        )

    sync(together())


def chunk_writes(array: zarr.Array, values: np.ndarray, indices: Sequence[int]) -> list[Write]:
    """Whole-chunk writes of the chunks holding ``indices`` from the in-memory copy ``values``
    (a whole chunk is written without reading it back first, unlike a single element)."""
    size = array.chunks[0]
    writes = []
    for chunk in sorted({int(i) // size for i in indices}):
        window = slice(chunk * size, min((chunk + 1) * size, array.shape[0]))
        writes.append((array, window, values[window].copy()))  # sent later: a snapshot
    return writes
