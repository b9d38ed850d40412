"""metadata.json: the machine-readable summary of a run, as the original tool wrote it.

It names the optimization and the model, lists the parameters (bounds and optimum), the error
functions (value, weight, weighted value), the target settings, the algorithm with its package
and settings, and the statistics of every generation.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms import get_algorithm
from neuroptimus.optimization.algorithms.chain import CHAIN
from neuroptimus.optimization.evaluation.individual import OK
from neuroptimus.optimization.problem.identity import FingerprintError, use_case_identity
from neuroptimus.storage.runs.run_store import RunStore, store_run_id
from neuroptimus.storage.runs.validation import read_validation


def effective_settings(algorithm: str, given: dict[str, Any]) -> dict[str, Any]:
    """The settings the algorithm ran with: its defaults (``islands`` included), overridden by
    those the problem file gave (a chain has none: its stages have theirs)."""
    if algorithm == CHAIN:
        return dict(given)
    return {**get_algorithm(algorithm).info.defaults, **given}


def run_metadata(store: RunStore, use_case: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata.json content of ``store``; ``use_case``: its identity when the caller has
    hashed it already (a store older than the catalog records none)."""
    attrs = store.attrs
    spec = attrs["spec"]
    best = store.best()
    weights = dict(zip(store.component_names, attrs["weights"], strict=True))
    generations = store.generations()
    algorithm = attrs["algorithm"]
    return {
        # the catalog's key, the problem's identity by content and the problem itself: this
        # file alone is enough to catalog the run and to run it again
        "run_id": store_run_id(store),
        "use_case": use_case or attrs.get("use_case") or _use_case_if_hashable(store),
        "problem": spec,
        "optimization_name": f"{spec['name']}_{algorithm['name']}_seed{attrs['seed']}"
        f"_{attrs['created'][:19].replace(':', '').replace('-', '')}",
        "model_name": spec["name"],
        "description": spec.get("description", ""),
        "created": attrs["created"],
        "model": {**spec["model"], "protocol": spec.get("protocol", spec.get("protocols"))},
        # the mechanism files (SHA-256) and the patches applied to them before compiling
        "mechanisms": attrs.get("mechanisms"),
        "parameters": [
            {
                "name": p["name"],
                "unit": p.get("unit", ""),
                "lower_bound": p["lower"],
                "upper_bound": p["upper"],
                "log_scale": p.get("log", False),
                "optimum": best["parameters"][p["name"]] if best else None,
                "true_value": p.get("true_value"),
            }
            for p in spec["parameters"]
        ],
        "error_functions": [
            {
                "name": name,
                "value": value,
                "weight": weights[name],
                "weighted_value": value * weights[name],
            }
            for name, value in (best["errors"].items() if best else [])
        ],
        "final_error": best["total"] if best else None,
        # the best individual's error on the held-out validation (None: not validated)
        **_validation(store),
        "target": _target(spec),
        "algorithm": {
            "name": algorithm["label"],
            "key": algorithm["name"],
            "package": algorithm["package"],
            "population": spec["algorithm"]["population"],
            "generations": spec["algorithm"]["generations"],
            "settings": effective_settings(algorithm["name"], spec["algorithm"]["settings"]),
            "settings_given": spec["algorithm"]["settings"],
            "seed": attrs["seed"],
            "max_evaluations": attrs["budget"],
            "stopping": spec["stopping"],
            # a chain: each stage begun, with the evaluations before it (else absent)
            **({"stages": attrs["stages"]} if attrs.get("stages") else {}),
        },
        # the run began at the best individuals of these runs (else absent)
        **({"warm_start": attrs["warm_start"]} if attrs.get("warm_start") else {}),
        "stop_reason": attrs.get("finished"),
        "evaluations": store.committed_evaluations,
        "evaluations_to_best": best["index"] + 1 if best else None,
        "generations_run": store.committed_generations,
        "cluster": attrs.get("cluster"),
        "generation_statistics": [
            {
                "generation": g,
                **{
                    name: (values[g].item() if np.isfinite(values[g]) else None)
                    for name, values in generations.items()
                },
            }
            for g in range(store.committed_generations)
        ],
        "software": {"versions": attrs["versions"], "git_revision": attrs["git_revision"]},
    }


def _validation(store: RunStore) -> dict[str, Any]:
    """``validation_error`` and, once validated, ``validation``: each individual validated
    with its training and validation error (and the best's validation components)."""
    found = read_validation(store.path)
    if found is None:
        return {"validation_error": None}
    best_errors = dict(zip(found["component_names"], map(float, found["errors"][0]), strict=True))
    return {
        "validation_error": found["validation_error"],
        "validation": {
            "best": found["best"],
            "error_functions": best_errors,
            "individuals": [
                {
                    "row": int(row),
                    "training_error": _finite(training),
                    "validation_error": _finite(total) if status == OK else None,
                }
                for row, training, total, status in zip(
                    found["rows"],
                    found["training_total"],
                    found["total"],
                    found["status"],
                    strict=True,
                )
            ],  # fmt: skip
        },
    }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def store_use_case(store: RunStore) -> dict[str, Any]:
    """The use case of a store made before stores recorded it: hashed from its spec now
    (FingerprintError when its model or target files are gone)."""
    attrs = store.attrs
    identity = use_case_identity(attrs["spec"], attrs.get("mechanisms"), store.component_names)
    return identity.model_dump(mode="json")


def _use_case_if_hashable(store: RunStore) -> dict[str, Any] | None:
    """``store_use_case``, or None with a warning: metadata.json is still written (the catalog
    refuses it, naming the file)."""
    try:
        return store_use_case(store)
    except FingerprintError as error:
        warnings.warn(f"{store.path}: no use case identity: {error}", stacklevel=3)
        return None


def write_metadata(store: RunStore, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(run_metadata(store), indent=2, allow_nan=False))
    return path


def _target(spec: dict) -> dict:
    """The target as the original's metadata describes it; an emodel problem's is the
    features of its protocols (each with its own duration)."""
    if "target" not in spec:
        return {"features": "protocols"}
    return {
        **spec["target"],
        "length_ms": spec["protocol"]["tstop_ms"],
        "spike_threshold_mV": spec["costs"]["spike_threshold_mV"],
        "spike_window_samples": spec["costs"]["spike_window_samples"],
    }
