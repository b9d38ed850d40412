"""Phase times of a command, for ``neuroptimus benchmark startup``.

When ``NEUROPTIMUS_PHASE_LOG`` names a file, ``mark`` appends a line ``WALL CPU PHASE`` to it:
the wall-clock time (comparable with the parent process that started the command) and this
process's CPU time so far. Otherwise it does nothing and costs a dictionary lookup.
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
            log.write(f"{time.time():.6f} {time.process_time():.6f} {phase}\n")


def read_marks(path: str | os.PathLike) -> dict[str, tuple[float, float]]:
    """The phases of a log with their (wall, CPU) times; the first of a repeated phase."""
    marks: dict[str, tuple[float, float]] = {}
    with open(path) as log:
        for line in log:
            wall, cpu, phase = line.split()
            marks.setdefault(phase, (float(wall), float(cpu)))
    return marks
