"""An append-only file of records beside the checkpoint: the journal of an algorithm's state.

Bridged algorithms are resumed by replaying every batch they were told. Pickling that history
into each checkpoint would write O(run) bytes per generation (quadratic over a run); instead
the checkpoint holds the journal's committed length in bytes, and each commit appends only
the new records. Bytes past the committed length (a crash between append and checkpoint)
are cut off at the next append or rollback.

Format: per record, an 8-byte little-endian length, then the record's pickle.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from neuroptimus.optimization import pickles

_LENGTH = struct.Struct("<Q")


def append(path: Path, records: Iterable[Any], at: int) -> int:
    """Append ``records`` after the first ``at`` bytes (dropping anything beyond them), sync,
    and return the new committed length."""
    with open(path, "ab") as handle:  # creates the file
        pass
    with open(path, "r+b") as handle:
        handle.truncate(at)
        handle.seek(at)
        for record in records:
            data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
            handle.write(_LENGTH.pack(len(data)))
            handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        return handle.tell()


def read(path: Path, length: int) -> list[Any]:
    """The records in the first ``length`` bytes."""
    if length == 0:
        return []
    with open(path, "rb") as handle:
        data = handle.read(length)
    if len(data) != length:
        raise ValueError(f"{path}: journal shorter ({len(data)} bytes) than committed ({length})")
    records, offset = [], 0
    while offset < length:
        (size,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        records.append(pickles.loads(data[offset : offset + size]))
        offset += size
    return records


def truncate(path: Path, length: int) -> None:
    """Drop everything after the first ``length`` bytes (a rollback)."""
    if path.exists():
        with open(path, "r+b") as handle:
            handle.truncate(length)
