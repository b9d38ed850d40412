"""Create a run store for a problem, and rebuild the problem from a store (for resume)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from optimization.algorithms import get_algorithm
from optimization.problem import Problem, build_problem
from optimization.spec import ProblemSpec
from storage.provenance import git_revision, package_versions
from storage.run_store import RunStore, StoreError


def create_run_store(problem: Problem, path: str | Path) -> RunStore:
    """A new store holding the spec, provenance and target of ``problem``."""
    spec = problem.spec
    info = get_algorithm(spec.algorithm.name).info
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise StoreError(f"{path} already exists; choose a new --store or resume it")
    # Built aside and renamed into place, so a store either exists complete or not at all.
    building = path.with_name(f".{path.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    store = RunStore.create(
        building,
        list(problem.space.names),
        problem.component_names,
        {
            "spec": spec.model_dump(mode="json"),
            "versions": package_versions(),
            "git_revision": git_revision(),
            "seed": spec.seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "algorithm": {"name": info.name, "label": info.label, "package": info.package},
            "weights": problem.objective.weights.tolist(),
            "penalty": spec.evaluation.penalty,
            "budget": spec.budget,
            "pareto_fronts": keeps_fronts(spec),
        },
    )
    _write_target(store, problem)
    if path.exists():
        path.rmdir()  # the empty folder left by the writability check
    os.rename(building, path)
    return RunStore.open(path, mode="r+")


def keeps_fronts(spec: ProblemSpec) -> bool:
    """Fronts and hypervolumes mean something for multi-objective algorithms; the problem's
    ``pareto_fronts`` option asks for them (or not) whatever the algorithm."""
    if spec.pareto_fronts is not None:
        return spec.pareto_fronts
    return get_algorithm(spec.algorithm.name).info.multi_objective


def problem_from_store(store: RunStore) -> Problem:
    """The problem a store was created for, with its stored target (no re-simulation)."""
    attrs = store.attrs
    spec = ProblemSpec.model_validate(attrs["spec"])
    targets = store.arrays("target")["trace"]
    return build_problem(spec, [targets[:, k] for k in range(targets.shape[1])])


def _write_target(store: RunStore, problem: Problem) -> None:
    spec = problem.spec
    targets = np.column_stack(problem.objective.targets)
    step = 1000 / spec.target.sampling_rate_hz
    t0 = step / 2 if spec.protocol.recording.variable == "clamp_current" else 0.0
    store.write_arrays("target", {"trace": targets, "time": t0 + step * np.arange(len(targets))})
