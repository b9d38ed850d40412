"""What models print (hoc's ``print`` and ``psection()``, a Python model's ``print``) goes to a
file of each worker instead of the terminal, where it would bury the progress bar (UC4's model
prints its cell, 27 lines, at every evaluation). The run collects the files into
``model-output.log`` of its store every 30 s and when the optimization ends.

The worker's file descriptor 1 is redirected, since NEURON writes there directly; the file is
in the worker's own folder, so workers on other nodes need no shared file system. On a cluster
that several runs share at once (a benchmark), each run collects what the workers printed
since the last collection, whichever run it came from."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from distributed import Client, WorkerPlugin

LOG_NAME = "model-output.log"


class ModelOutput(WorkerPlugin):
    """Sends the worker process's standard output to ``model-output.log`` in its folder."""

    name = "neuroptimus-model-output"
    idempotent = True

    def setup(self, worker) -> None:
        global _path, _terminal
        if _path is not None:
            return  # redirected already (the plugin registered by another client)
        sys.stdout.flush()
        _terminal = os.dup(1)
        _path = Path(worker.local_directory) / LOG_NAME
        _write_to(_path)

    def teardown(self, worker) -> None:
        global _path, _terminal
        if _terminal is None:
            return
        sys.stdout.flush()
        os.dup2(_terminal, 1)
        os.close(_terminal)
        _path, _terminal = None, None


_path: Path | None = None  # this worker's output file, once redirected
_terminal: int | None = None  # the standard output it replaced


def _write_to(path: Path) -> None:
    """Point file descriptor 1 at ``path`` (a new file)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(descriptor, 1)
    os.close(descriptor)


def take_output() -> str:
    """On a worker: what its model printed since the last call. The output moves to a new file
    first, so nothing printed meanwhile (by an evaluation running now) is lost."""
    if _path is None:
        return ""
    sys.stdout.flush()
    taken = _path.with_suffix(".taken")
    os.replace(_path, taken)
    _write_to(_path)
    text = taken.read_text(errors="replace")
    taken.unlink()
    return text


def collect(client: Client, path: str | Path) -> int:
    """Append what every worker's model printed to ``path`` (created if there is any), each
    worker's part headed by its address; returns the number of lines added."""
    # a worker that is dying or being replaced is skipped: its output is lost with it
    taken = client.run(take_output, on_error="ignore")
    parts = {address: text for address, text in taken.items() if text.strip()}
    if not parts:
        return 0
    lines = 0
    with open(path, "a", encoding="utf-8") as log:
        for address, text in sorted(parts.items()):
            log.write(f"--- worker {address}\n{text}")
            if not text.endswith("\n"):
                log.write("\n")
            lines += len(text.splitlines())
    return lines


class Collector:
    """Collects the workers' model output into ``path`` at most every ``every_s`` seconds
    (``due``) and at the end (``now``): a long run keeps what was printed even if it is killed,
    and a generation pays for a collection (one round trip to the workers) only rarely."""

    def __init__(self, client: Client, path: str | Path, every_s: float = 30.0) -> None:
        self.client, self.path, self.every_s = client, Path(path), every_s
        self.lines = 0
        self._last = time.monotonic()

    def due(self) -> None:
        if time.monotonic() - self._last >= self.every_s:
            self.now()

    def now(self) -> int:
        """Collect; the lines added to ``path`` by this collector so far."""
        self.lines += collect(self.client, self.path)
        self._last = time.monotonic()
        return self.lines
