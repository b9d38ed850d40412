"""The ``sensitivity/`` group of a run store: the finite-difference evaluations at the best
individual and the Jacobian analysis (``neuroptimus analyze STORE --sensitivity``).

It sits beside the run's own groups and never touches them: it is built under a temporary
name inside the store and renamed into place, replacing an earlier one, so a reader finds a
complete group or none, and a run going on meanwhile (which writes only its own groups and
the root's attributes) is unaffected.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from neuroptimus.storage.runs.run_store import FROM_CATALOG, RunStore, StoreError

GROUP = "sensitivity"
ARRAYS = (
    "points", "unit_points", "errors", "total", "status", "jacobian", "sensitivity", "slope",
    "curvature", "eigenvalues", "eigenvectors", "best_unit",
)  # fmt: skip


def check_local_model(path: str | Path) -> None:
    """A store downloaded from a results catalog is not simulated here: that would run its
    uploader's model files and commands."""
    if (Path(path) / FROM_CATALOG).is_file():
        raise StoreError(
            f"{path} was downloaded from a results catalog: its sensitivity is not computed "
            "here (that would run its uploader's code); reproduce the run first with "
            "`neuroptimus catalog reproduce URL`"
        )


def write_sensitivity(
    path: str | Path, arrays: dict[str, np.ndarray], attributes: dict[str, Any]
) -> None:
    """Replace the store's ``sensitivity/`` group with ``arrays`` and ``attributes``."""
    store = Path(path)
    RunStore.open(store)  # a run store, or StoreError
    building = store / f"{GROUP}.building-{os.getpid()}"
    old = store / f"{GROUP}.replaced-{os.getpid()}"
    try:
        shutil.rmtree(building, ignore_errors=True)
        group = zarr.open_group(building, mode="w")
        for name, values in arrays.items():
            values = np.asarray(values)
            group.create_array(name, shape=values.shape, dtype=values.dtype)
            group[name][...] = values
        group.attrs.update({**attributes, "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        target = store / GROUP
        if target.exists():
            os.rename(target, old)
        os.rename(building, target)
    except OSError as error:
        raise StoreError(
            f"cannot write the sensitivity into {store}: {error.strerror or error}"
        ) from error
    finally:
        shutil.rmtree(building, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def read_sensitivity(path: str | Path) -> dict[str, Any] | None:
    """The stored sensitivity (its arrays and attributes in one dict), or None."""
    folder = Path(path) / GROUP
    if not (folder / "zarr.json").is_file():
        return None
    group = zarr.open_group(folder, mode="r")
    found: dict[str, Any] = dict(group.attrs)
    for name, array in group.arrays():
        found[name] = array[...]
    return found


__all__ = ["ARRAYS", "GROUP", "check_local_model", "read_sensitivity", "write_sensitivity"]
