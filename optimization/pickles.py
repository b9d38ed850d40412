"""Reading back the pickles a run keeps on disk (checkpoint, journal, streamed results and the
algorithm states inside them), also those written before the modules moved into the
``neuroptimus`` package: their classes are looked up under the new module names."""

from __future__ import annotations

import io
import pickle
from typing import IO, Any

# Top-level names the project's modules had before ``neuroptimus.``; a pickle naming one of them
# is read from the module of the same path inside the package, never from whatever
# ``optimization`` (or ``analysis``, …) the environment happens to hold.
OLD_LAYERS = ("optimization", "storage", "tasks", "flows", "analysis", "usecases")
# Modules that moved further than the prefix: old -> new module path (a commit that moves a module
# whose classes are pickled adds its line here).
MOVED: dict[str, str] = {}


def new_name(module: str) -> str:
    """The module path a pickled class is found at today."""
    if module.partition(".")[0] in OLD_LAYERS:
        module = f"neuroptimus.{module}"
    while module in MOVED:  # a module may have moved more than once
        module = MOVED[module]
    return module


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(new_name(module), name)


def load(file: IO[bytes]) -> Any:
    """``pickle.load`` for the project's own files."""
    return _Unpickler(file).load()


def loads(data: bytes) -> Any:
    """``pickle.loads`` for the project's own files."""
    return _Unpickler(io.BytesIO(data)).load()


# rename-imports: keep old names (this file is about them)
