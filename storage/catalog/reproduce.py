"""Reproduce a catalogued run: its problem file (same problem, algorithm, population, budget,
stopping rules and seed), the problem made local, and the verdict on a rerun.

The rerun itself is the caller's (``neuroptimus catalog reproduce`` runs it like ``neuroptimus
run``); here is what it needs before and after. With the same package versions on the same
platform a rerun is bit-identical (the algorithms are seeded and the evaluations
deterministic); otherwise floating-point differences may grow over the generations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from neuroptimus.optimization.errors import UserError
from neuroptimus.optimization.problem.problem_file import parse_problem
from neuroptimus.optimization.problem.problem_yaml import dump_problem
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.problem.spec_base import SpecError
from neuroptimus.storage.catalog.schema import CatalogRun

Verdict = Literal["identical", "within tolerance", "differs"]
RTOL = 1e-6


class ReproduceError(UserError, ValueError):
    """The run cannot be rerun here (no problem recorded, model files not found)."""


def problem_data(run: CatalogRun) -> dict[str, Any]:
    """The run's problem as a problem file's mapping, without the uploader's folder."""
    if run.problem is None:
        raise ReproduceError(
            f"run {run.run_id} has no problem to rerun (an upload of the original tool's "
            "metadata.json records results, not the problem)"
        )
    data = {key: value for key, value in run.problem.items() if key != "base_dir"}
    if run.seed is not None:
        data["seed"] = run.seed  # the seed the run used is the one to reuse
    return data


def problem_yaml(run: CatalogRun) -> str:
    """The text of ``problem.yaml`` that reruns ``run`` (files relative to the problem file)."""
    header = [
        f"Reproduces run {run.run_id} of the results catalog ({run.algorithm_label}, seed "
        f"{run.seed}). Model and target files are looked up relative to this file.",
        "Rerun it: neuroptimus run problem.yaml",
    ]
    return dump_problem(problem_data(run), header)


def local_problem(run: CatalogRun, folders: Sequence[str | Path] = ()) -> ProblemSpec:
    """The run's problem with its files found on this machine: in the uploader's own folder
    (same machine or shared file system), else in the first of ``folders`` holding every file
    the problem names (a bundled use case, an unpacked archive, a pulled folder)."""
    data = problem_data(run)
    recorded = (run.problem or {}).get("base_dir")
    candidates = [Path(recorded)] if recorded else []
    candidates += [Path(folder) for folder in folders]
    reasons = []
    for folder in dict.fromkeys(candidates):
        if not folder.is_dir():
            continue
        try:
            return parse_problem(dict(data), f"run {run.run_id}", str(folder.resolve()))
        except SpecError as error:
            reasons.append(f"{folder}: {error}")
    looked = ", ".join(str(c) for c in candidates) or "no folder"
    raise ReproduceError(
        f"the files of problem {data.get('name')!r} were not found (looked in {looked})"
        + (f"; {reasons[0]}" if reasons else "")
    )


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a is None and b is None)


def _relative(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return math.inf
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b))


def compare_runs(original: CatalogRun, rerun: CatalogRun, rtol: float = RTOL) -> dict[str, Any]:
    """The verdict on a rerun: ``identical`` (same evaluations, every generation's best, final
    error and optimum, bit for bit), ``within tolerance`` (final error within ``rtol``,
    relative), else ``differs``; with the figures behind it."""
    curve = [row.best for row in original.curve]
    rerun_curve = [row.best for row in rerun.curve]
    optimum = {p.name: p.optimum for p in original.parameters}
    rerun_optimum = {p.name: p.optimum for p in rerun.parameters}
    identical = (
        original.evaluations == rerun.evaluations
        and _same(original.final_error, rerun.final_error)
        and curve == rerun_curve
        and optimum == rerun_optimum
    )
    rel_diff = _relative(original.final_error, rerun.final_error)
    verdict: Verdict = (
        "identical" if identical else "within tolerance" if rel_diff <= rtol else "differs"
    )
    first_divergence = next(
        (g for g, (a, b) in enumerate(zip(curve, rerun_curve, strict=False)) if not _same(a, b)),
        None if len(curve) == len(rerun_curve) else min(len(curve), len(rerun_curve)),
    )
    return {
        "verdict": verdict,
        "reported": original.final_error,
        "reproduced": rerun.final_error,
        "rel_diff": rel_diff,
        "rtol": rtol,
        "evaluations": [original.evaluations, rerun.evaluations],
        "first_different_generation": first_divergence,
        "versions_differ": version_differences(original.provenance, rerun.provenance),
    }


def version_differences(recorded: dict[str, Any], here: dict[str, Any]) -> dict[str, list]:
    """Packages whose versions differ between two runs' provenance (name → [theirs, ours])."""
    theirs = recorded.get("versions") or {}
    ours = here.get("versions") or {}
    return {
        name: [theirs.get(name), ours.get(name)]
        for name in sorted(set(theirs) | set(ours))
        if theirs.get(name) != ours.get(name)
    }
