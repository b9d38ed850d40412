"""Groups written beside a run's own (``sensitivity/``, ``validation/``) after the run: built
under a temporary name inside the store and renamed into place, replacing an earlier one, so
a reader finds a complete group or none, and a run going on meanwhile (which writes only its
own groups and the root's attributes) is unaffected."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from neuroptimus.storage.runs.run_store import RunStore, StoreError


def replace_group(
    path: str | Path, name: str, arrays: dict[str, np.ndarray], attributes: dict[str, Any]
) -> None:
    """Replace the store's group ``name`` with ``arrays`` and ``attributes``."""
    store = Path(path)
    RunStore.open(store)  # a run store, or StoreError
    building = store / f"{name}.building-{os.getpid()}"
    old = store / f"{name}.replaced-{os.getpid()}"
    try:
        shutil.rmtree(building, ignore_errors=True)
        group = zarr.open_group(building, mode="w")
        for key, values in arrays.items():
            values = np.asarray(values)
            group.create_array(key, shape=values.shape, dtype=values.dtype)
            group[key][...] = values
        group.attrs.update({**attributes, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        target = store / name
        if target.exists():
            os.rename(target, old)
        os.rename(building, target)
    except OSError as error:
        raise StoreError(f"cannot write the {name} into {store}: {error.strerror or error}") from (
            error
        )
    finally:
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def read_group(path: str | Path, name: str) -> dict[str, Any] | None:
    """The store's group ``name`` (its arrays and attributes in one dict), or None."""
    folder = Path(path) / name
    if not (folder / "zarr.json").is_file():
        return None
    group = zarr.open_group(folder, mode="r")
    found: dict[str, Any] = dict(group.attrs)
    for key, array in group.arrays():
        found[key] = array[...]
    return found
