"""Phase times of a command, for ``neuroptimus benchmark startup``.

When ``NEUROPTIMUS_PHASE_LOG`` names a file, ``mark`` appends a line ``UNIX-TIME PHASE`` to it
(wall-clock time, comparable with the parent process that started the command); otherwise it
does nothing and costs a dictionary lookup.
"""

from __future__ import annotations

import os
import time

PHASE_LOG = "NEUROPTIMUS_PHASE_LOG"


def mark(phase: str) -> None:
    """Record that ``phase`` (one word) happened now, if a phase log is asked for."""
    path = os.environ.get(PHASE_LOG)
    if path:
        with open(path, "a") as log:
            log.write(f"{time.time():.6f} {phase}\n")


def read_marks(path: str | os.PathLike) -> dict[str, float]:
    """The phases of a log and their times (the first time of a phase that occurs twice)."""
    marks: dict[str, float] = {}
    with open(path) as log:
        for line in log:
            stamp, _, phase = line.strip().partition(" ")
            if phase:
                marks.setdefault(phase, float(stamp))
    return marks
