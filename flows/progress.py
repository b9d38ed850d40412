"""A per-generation progress bar on the terminal (shown when the flow runs from the CLI)."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def generation_bar(enabled: bool, total: int, done: int, label: str):
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
        console=Console(stderr=True),
    )
    with progress:
        task = progress.add_task(label, total=total, completed=done, best="–")
        yield lambda done, best: progress.update(task, completed=done, best=f"{best:.4g}")
