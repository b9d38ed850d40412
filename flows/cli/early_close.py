"""A context that can be left ahead of its block, in the background: a command stops its
cluster (a quarter of a second: workers told to leave, processes joined) while its report is
rendered, instead of after."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any


class EarlyClose:
    """Wraps a context manager: ``close_soon()`` starts its exit in a thread; leaving the
    block waits for that exit (and raises its error), or exits as usual if it never began."""

    def __init__(self, manager: AbstractContextManager) -> None:
        self._manager = manager
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> Any:
        return self._manager.__enter__()

    def close_soon(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._close, name="early-close", daemon=True)
            self._thread.start()

    def _close(self) -> None:
        try:
            self._manager.__exit__(None, None, None)
        except BaseException as error:  # raised in the caller's thread on leaving the block
            self._error = error

    def __exit__(self, *exc_info) -> bool | None:
        if self._thread is None:
            return self._manager.__exit__(*exc_info)
        self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error
        return None


__all__ = ["EarlyClose"]
