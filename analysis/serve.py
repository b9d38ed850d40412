"""Serve the explorer on localhost: find the stores, pick a port, print the address."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import panel as pn

from neuroptimus.analysis import population
from neuroptimus.analysis.explorer import Explorer, Simulate
from neuroptimus.storage.runs.run_store import RunStore, StoreError


def find_stores(paths: Sequence[str | Path]) -> list[str]:
    """Run stores among ``paths``; a folder that is not a store stands for the stores in it
    (e.g. a benchmark folder), searched two levels deep."""
    found: list[str] = []
    for path in map(Path, paths):
        if _is_store(path):
            found.append(str(path))
            continue
        if not path.is_dir():
            raise StoreError(f"{path}: no such run store or folder")
        inside = sorted({p.parent for p in path.glob("*/zarr.json")} |
                        {p.parent for p in path.glob("*/*/zarr.json")})  # fmt: skip
        stores = [str(p) for p in inside if _is_store(p)]
        if not stores:
            raise StoreError(f"{path}: neither a run store nor a folder of run stores")
        found.extend(stores)
    return list(dict.fromkeys(found))


def _is_store(path: Path) -> bool:
    try:
        RunStore.open(path)
    except StoreError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def explorer_app(paths: Sequence[str], refresh_seconds: float = 2.0, simulate=None):
    """A Panel app factory: each browser session gets its own Explorer, kept current by a
    periodic re-read of the stores."""

    def app():
        explorer = Explorer(paths, refresh_seconds, simulate)
        if refresh_seconds > 0:
            pn.state.add_periodic_callback(explorer.poll, period=int(refresh_seconds * 1000))
        return explorer.page

    return app


def serve_explorer(
    paths: Sequence[str | Path],
    port: int = 0,
    show: bool = True,
    refresh_seconds: float = 2.0,
    threaded: bool = False,
    simulate: Simulate | None = None,
):
    """Serve the explorer at http://localhost:PORT/ (a free port if 0). Blocks until
    interrupted, unless ``threaded``: then returns the server thread (``.stop()`` ends it)."""
    stores = find_stores(paths)
    port = port or free_port()
    if any(RunStore.open(s).committed_evaluations > population.RASTERIZE_ABOVE for s in stores):
        threading.Thread(target=population.warm_up, daemon=True).start()
    url = f"http://localhost:{port}/"
    print(f"exploring {len(stores)} run store(s) at {url}  (Ctrl-C to stop)", flush=True)
    return pn.serve(
        explorer_app(stores, refresh_seconds, simulate), port=port, address="127.0.0.1",
        websocket_origin=[f"localhost:{port}", f"127.0.0.1:{port}"], show=show,
        threaded=threaded, verbose=False, title="Neuroptimus explorer",
    )  # fmt: skip


__all__ = ["explorer_app", "find_stores", "free_port", "serve_explorer"]
