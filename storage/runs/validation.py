"""The ``validation/`` group of a run store: its best distinct individuals evaluated on the
problem's held-out protocols and targets (``validation:``), after the optimization or by
``neuroptimus analyze STORE --validate``. Beside the run's own groups, never touching them
(``side_groups``).

Arrays: ``rows`` (the individuals' rows in ``evaluations``, best training total first),
``parameters``, ``training_total``, ``errors`` (unweighted validation components), ``total``,
``status``; the best individual's validation traces ``best_time``/``best_trace`` and, for
trace targets, ``target_time``/``target_trace``. Attributes: ``validation_error`` (the run's
best individual's validation total, None if its evaluation failed), ``component_names``,
``weights``, ``best`` (how many were asked for), ``spec`` (the validation as a problem) and
``messages``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from neuroptimus.storage.runs.side_groups import read_group, replace_group

GROUP = "validation"


def write_validation(
    path: str | Path, arrays: dict[str, np.ndarray], attributes: dict[str, Any]
) -> None:
    """Replace the store's ``validation/`` group with ``arrays`` and ``attributes``."""
    replace_group(path, GROUP, arrays, attributes)


def read_validation(path: str | Path) -> dict[str, Any] | None:
    """The stored validation (its arrays and attributes in one dict), or None."""
    return read_group(path, GROUP)


def validation_error(path: str | Path) -> float | None:
    """The run's best individual's validation error, or None (not validated, or failed)."""
    found = read_validation(path)
    return None if found is None else found.get("validation_error")


__all__ = ["GROUP", "read_validation", "validation_error", "write_validation"]
