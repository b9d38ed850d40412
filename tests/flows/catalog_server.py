"""A real catalog server for the command-line tests: ``neuroptimus catalog serve``'s app on a
SQLite file, served by uvicorn on a free port in a thread of the test process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(folder: Path, db: str | None = None) -> Iterator[tuple[str, str]]:
    """``(server URL, database URL)`` of a catalog served until the block ends (``db``:
    default an SQLite file in ``folder``)."""
    from neuroptimus.storage.catalog.web.site import create_site

    db = db or f"sqlite:///{folder / 'catalog.sqlite'}"
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_site(db, folder / "files"), host="127.0.0.1", port=port, log_level="warning"
        )  # fmt: skip
    )
    thread = threading.Thread(target=server.run, name="catalog-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the catalog server did not start")
        time.sleep(0.05)
    assert httpx.get(f"{url}/health").status_code == 200
    try:
        yield url, db
    finally:
        server.should_exit = True
        thread.join(10)
