"""The original Neuroptimus tool's numbers the fidelity tests compare with, carried in
``tests/data/reference`` (see its PROVENANCE file)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).resolve().parent / "data" / "reference"


@functools.cache
def _totals() -> dict:
    return json.loads((REFERENCE / "usecase_totals.json").read_text())["usecases"]


def usecase(name: str) -> dict:
    """One use case's reference vector (``values``), its ``total`` and components."""
    return _totals()[name]


def usecase_traces() -> dict[str, np.ndarray]:
    """UC6's model traces as the original simulated them (one row per sweep)."""
    with np.load(REFERENCE / "usecase_traces.npz") as data:
        return {key: data[key] for key in data.files}


def cost_cases() -> dict:
    """The cost cases: settings, the original's costs per function, what it raised."""
    return json.loads((REFERENCE / "cost_cases.json").read_text())


def cost_case_arrays() -> dict[str, np.ndarray]:
    """Model and target trace of each cost case (``CASE__model``, ``CASE__target``); an
    array repeated between cases is stored once and listed in ``__aliases__``."""
    with np.load(REFERENCE / "cost_cases.npz") as data:
        arrays = {key: data[key] for key in data.files if key != "__aliases__"}
        aliases = data["__aliases__"].tolist()
    for name, same_as in aliases:
        arrays[name] = arrays[same_as]
    return arrays
