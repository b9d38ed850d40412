"""Verify a catalogued run cheaply: simulate its claimed best parameters once on its problem,
with the project's own evaluation (as ``neuroptimus evaluate`` does), and compare the total
error with the one reported.

One simulation per sweep (plus the target's, for a regenerated target) instead of a whole
rerun: it protects a leaderboard from mistaken or made-up uploads without trusting the
uploader's numbers. The problem simulated is the caller's choice: a server passes the one it
holds itself (``held_problems``), never the uploaded one. The model runs in a fresh process,
so a server verifying uploads never loads models into its own process (NEURON's state is
global to a process).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np

from neuroptimus.optimization.evaluation.individual import STATUSES, evaluate_one
from neuroptimus.optimization.evaluation.problem import build_problem
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.storage.catalog.reproduce import RTOL, ReproduceError
from neuroptimus.storage.catalog.schema import CatalogRun

METHOD = "resimulate-best"


class VerificationError(ReproduceError):
    """The run cannot be verified (no problem, no reported optimum, files not found)."""


def verify_best(run: CatalogRun, spec: ProblemSpec, rtol: float = RTOL) -> dict[str, Any]:
    """``{reported, reproduced, rel_diff, ok, method, details}`` for ``run``'s claimed best
    simulated on ``spec`` (the run's problem as found here): ``ok`` when its simulation
    succeeds and its total error is within ``rtol`` (relative) of the reported final error."""
    if run.final_error is None:
        raise VerificationError(f"run {run.run_id} reports no final error to verify")
    missing = [p.name for p in run.parameters if p.optimum is None]
    if missing:
        raise VerificationError(f"run {run.run_id} reports no optimum for {', '.join(missing)}")
    optimum = {p.name: p.optimum for p in run.parameters}
    unknown = sorted({p.name for p in spec.parameters} ^ set(optimum))
    if unknown:
        raise VerificationError(
            f"run {run.run_id}: the reported parameters do not match its problem's "
            f"({', '.join(unknown)})"
        )
    values = [optimum[p.name] for p in spec.parameters]
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        outcome = pool.submit(simulate_best, spec.model_dump(mode="json"), values).result()
    reported, reproduced = run.final_error, outcome["total"]
    scale = max(abs(reported), abs(reproduced))
    rel_diff = 0.0 if reported == reproduced else abs(reported - reproduced) / scale
    reported_components = {c.name: c.value for c in run.components}
    return {
        "reported": reported,
        "reproduced": reproduced,
        "rel_diff": rel_diff,
        "ok": outcome["status"] == "ok" and rel_diff <= rtol,
        "method": METHOD,
        "details": {
            "rtol": rtol,
            "status": outcome["status"],
            "message": outcome["message"],
            "components": {
                name: [reported_components.get(name), value]
                for name, value in outcome["components"].items()
            },
            "parameters": optimum,
        },
    }


def simulate_best(spec_data: dict[str, Any], values: list[float]) -> dict[str, Any]:
    """One evaluation (in the calling process): the total error, the components, the status."""

    spec = ProblemSpec.model_validate(spec_data)
    problem = build_problem(spec)
    errors, status, message, _ = evaluate_one(problem, np.asarray(values, dtype=float))
    total = float(problem.objective.total(errors)) if status == 0 else spec.evaluation.penalty
    names = problem.component_names
    return {
        "total": total,
        "components": dict(zip(names, map(float, errors), strict=True)),
        "status": STATUSES[status],
        "message": message,
    }
