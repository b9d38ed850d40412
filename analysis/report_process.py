"""A process that writes a run's report, started before the report is due.

The report's libraries (HoloViews, Panel, bokeh) take a second or two of CPU to import. A
command that knows it will write a report (``neuroptimus run``) starts this process early: its
imports overlap the command's start and the optimization, and the report is rendered there
when the run has finished. ``write_report_file`` uses the process if one was started
(``early_report_process``), else renders in the calling process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path


def _render(store: str, path: str) -> Path:
    from neuroptimus.analysis.report import write_report  # noqa: PLC0415 (lazy: HoloViews and Bokeh load only in the process that draws)

    return write_report(store, path)  # by path: opened after the fork that halves the work


def _serve(connection: Connection) -> None:
    """The process: import the report's libraries at once, then write the reports asked for
    (a store and a path per message; None ends it), replying (True, path) or (False, error)."""
    try:
        # the point of the process: import early
        import neuroptimus.analysis.report  # noqa: F401, PLC0415 (lazy: HoloViews and Bokeh load only in the process that draws)
    except Exception:  # reported when the report is asked for, by the same import
        pass
    # The libraries' objects live as long as the process: out of the collector's sight, a
    # report's figures are built faster (no collections scanning them again and again).
    gc.freeze()
    while (request := connection.recv()) is not None:
        try:
            reply = (True, str(_render(*request)))
        except Exception as error:
            reply = (False, error)
        try:
            connection.send(reply)
        except Exception:  # an error that does not pickle: its message does
            connection.send((False, RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))
    connection.close()
    # Its reports are written and closed: tearing down the interpreter's plotting libraries
    # (a second) would only keep the command waiting.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class ReportProcess:
    """The spawned process (no model state or threads are inherited) and its pipe."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child,), name="report", daemon=True)
        self._process.start()
        child.close()
        self._lock = threading.Lock()

    def write(self, store: str, path: str | Path) -> Path | None:
        """The written report's path; None if the process has gone (the caller renders)."""
        with self._lock:
            try:
                self._connection.send((str(store), str(path)))
                ok, value = self._connection.recv()
            except (EOFError, OSError):
                return None
        if not ok:
            raise value
        return Path(value)

    def close(self) -> None:
        try:
            self._connection.send(None)
        except OSError:
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():  # still importing (a run that failed early)
            self._process.terminate()
            self._process.join()
        self._connection.close()


_early: ReportProcess | None = None


@contextmanager
def early_report_process() -> Iterator[ReportProcess]:
    """Start the report process now; ``write_report_file`` uses it until the block ends."""
    global _early
    process = ReportProcess()
    _early = process
    try:
        yield process
    finally:
        _early = None
        process.close()


def write_report_file(store: str, path: str | Path) -> Path:
    """Write ``store``'s report to ``path``: in the early process if one runs, else here."""
    process = _early
    written = process.write(store, path) if process is not None else None
    return written if written is not None else _render(str(store), str(path))
