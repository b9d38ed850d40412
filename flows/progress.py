"""A progress bar on the terminal (shown when the flow runs from the CLI): it advances with
each result as it arrives, with an estimate of the time left."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def generation_bar(
    enabled: bool, total: int, done: int, label: str
) -> Iterator[Callable[[int, float], None]]:
    """Yields ``update(done, best)``; a no-op when disabled (runs started from the UI)."""
    if not enabled:
        yield lambda done, best: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("evaluations · best error {task.fields[best]}"),
        TimeElapsedColumn(),
        TextColumn("· left"),
        TimeRemainingColumn(),  # from the recent pace of results (a resume's start excluded)
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task(label, total=total, completed=done, best="–")

        def update(done: int, best: float) -> None:
            shown = f"{best:.4g}" if math.isfinite(best) else "–"
            progress.update(task, completed=done, best=shown)

        yield update
