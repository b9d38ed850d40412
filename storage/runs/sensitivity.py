"""The ``sensitivity/`` group of a run store: the finite-difference evaluations at the best
individual and the Jacobian analysis (``neuroptimus analyze STORE --sensitivity``).

It sits beside the run's own groups and never touches them (``side_groups``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neuroptimus.storage.runs.run_store import FROM_CATALOG, StoreError
from neuroptimus.storage.runs.side_groups import read_group, replace_group

GROUP = "sensitivity"
ARRAYS = (
    "points", "unit_points", "errors", "total", "status", "jacobian", "sensitivity", "slope",
    "curvature", "eigenvalues", "eigenvectors", "best_unit",
)  # fmt: skip


def check_local_model(path: str | Path, what: str = "sensitivity") -> None:
    """A store downloaded from a results catalog is not simulated here: that would run its
    uploader's model files and commands."""
    if (Path(path) / FROM_CATALOG).is_file():
        raise StoreError(
            f"{path} was downloaded from a results catalog: its {what} is not computed "
            "here (that would run its uploader's code); reproduce the run first with "
            "`neuroptimus catalog reproduce URL`"
        )


def write_sensitivity(
    path: str | Path, arrays: dict[str, np.ndarray], attributes: dict[str, Any]
) -> None:
    """Replace the store's ``sensitivity/`` group with ``arrays`` and ``attributes``."""
    replace_group(path, GROUP, arrays, attributes)


def read_sensitivity(path: str | Path) -> dict[str, Any] | None:
    """The stored sensitivity (its arrays and attributes in one dict), or None."""
    return read_group(path, GROUP)


__all__ = ["ARRAYS", "GROUP", "check_local_model", "read_sensitivity", "write_sensitivity"]
