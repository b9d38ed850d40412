"""Create a run store for a problem, and rebuild the problem from a store (for resume)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.chain import algorithm_info
from neuroptimus.optimization.evaluation.problem import Problem, build_problem
from neuroptimus.optimization.locks import process_alive
from neuroptimus.optimization.problem.identity import FingerprintError, use_case_identity
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.mechanisms import mechanisms_record
from neuroptimus.storage.runs.provenance import git_revision, package_versions
from neuroptimus.storage.runs.run_store import FROM_CATALOG, RunStore, StoreError, check_writable


def default_store(spec: ProblemSpec, folder: str | Path = "runs") -> str:
    """A new store path per run: ``runs/<name>-<algorithm>-seed<seed>-<time>.zarr``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return str(Path(folder) / f"{spec.name}-{spec.algorithm.name}-seed{spec.seed}-{stamp}.zarr")


def check_new_store(path: str | Path) -> None:
    """Fail before anything runs if ``path`` cannot become a new store: it holds something
    already, or its folder cannot be written (permissions, full disk). Creates nothing but
    the parent folders."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise StoreError(f"{path} already exists; choose a new --store or resume it")
    check_writable(path.parent)


def check_resumable(path: str | Path) -> None:
    """Fail with what to do when ``path`` holds no run to continue (a run killed during its
    setup leaves none: its store is only moved into place once complete)."""
    path = Path(path)
    if (path / "zarr.json").is_file():
        RunStore.open(path)  # a Zarr group that is not a run store is named as such
        _check_not_downloaded(path)
        return
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        raise StoreError(
            f"{path} holds no run to resume (a run stopped during its setup stores nothing); "
            f"start the run again with `neuroptimus run PROBLEM --store {path}`"
        )
    raise StoreError(f"{path}: no run store here (expected a Zarr group)")


def check_not_being_written(path: str | Path) -> None:
    """Fail at once when another run is writing ``path`` (a resume takes the store's lock for
    good only once Prefect and its cluster have started, seconds later)."""
    with RunStore.open(path).writer_lock():
        pass


def _check_not_downloaded(path: Path) -> None:
    """A store from a results catalog is never resumed: that would run its uploader's problem
    (model files, commands) here and load their saved algorithm state."""
    if (path / FROM_CATALOG).is_file():
        raise StoreError(
            f"{path} was downloaded from a results catalog and is not resumed here (that would "
            "run its uploader's code); rerun it with `neuroptimus catalog reproduce URL`"
        )


def create_run_store(
    problem: Problem,
    path: str | Path,
    start: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None,
) -> RunStore:
    """A new store holding the spec, provenance and target of ``problem``. It is built in a
    hidden sibling folder and renamed into place, so ``path`` either holds a complete store
    or nothing (a run killed meanwhile leaves the sibling, removed by the next attempt).
    ``start``: the points a warm start read (``neuroptimus.storage.warm_start``), kept in the
    store's ``start`` group and its ``warm_start`` attribute."""
    spec = problem.spec
    info = algorithm_info(spec.algorithm)
    path = Path(path)
    check_new_store(path)
    spec_json = spec.model_dump(mode="json")
    mechanisms = mechanisms_record(spec)
    use_case = run_identity(problem)
    if spec.warm_start and start is None:
        raise StoreError(
            f"the problem starts warm from {spec.warm_start}: create its store with "
            "neuroptimus.storage.warm_start.new_run_store, which reads the source first"
        )
    _remove_abandoned(path)
    building = path.with_name(f".{path.name}.building-{socket.gethostname()}-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    store = RunStore.create(
        building,
        list(problem.space.names),
        problem.component_names,
        {
            # the catalog's key of this run: survives moves and renames of the store
            "run_id": str(uuid.uuid4()),
            # which problem this is by content, hashed while its files are at hand
            "use_case": use_case,
            "spec": spec_json,
            "versions": package_versions(),
            "git_revision": git_revision(),
            "seed": spec.seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "algorithm": {"name": info.name, "label": info.label, "package": info.package},
            "weights": problem.objective.weights.tolist(),
            "penalty": spec.evaluation.penalty,
            "budget": spec.budget,
            "pareto_fronts": keeps_fronts(spec),
            # the compiled mechanisms: files, patches applied (None without mechanisms)
            "mechanisms": mechanisms,
        },
    )
    _write_target(store, problem)
    if start is not None:
        store.write_arrays("start", start[0])
        store.set_attributes(warm_start=start[1])
    if path.exists():
        path.rmdir()  # an empty folder the user made for the store
    os.rename(building, path)
    return RunStore.open(path, mode="r+")


def run_identity(problem: Problem) -> dict | None:
    """The use case's identity of a problem, or None if a file cannot be hashed (the run goes
    on; the catalog hashes the files again when the run is pushed)."""
    spec = problem.spec
    try:
        identity = use_case_identity(
            spec.model_dump(mode="json"), mechanisms_record(spec), problem.component_names
        )
    except FingerprintError:
        return None
    return identity.model_dump(mode="json")


def _remove_abandoned(path: Path) -> None:
    """Remove half-built stores for ``path`` left by killed processes of this host."""
    prefix = f".{path.name}.building-{socket.gethostname()}-"
    for folder in path.parent.glob(f"{glob.escape(prefix)}*"):
        pid = folder.name.removeprefix(prefix)
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def keeps_fronts(spec: ProblemSpec) -> bool:
    """Fronts and hypervolumes mean something for multi-objective algorithms; the problem's
    ``pareto_fronts`` option asks for them (or not) whatever the algorithm."""
    if spec.pareto_fronts is not None:
        return spec.pareto_fronts
    return algorithm_info(spec.algorithm).multi_objective


def problem_from_store(store: RunStore) -> Problem:
    """The problem a store was created for, with its stored target (no re-simulation)."""
    attrs = store.attrs
    spec = ProblemSpec.model_validate(attrs["spec"])
    if spec.target is None or spec.target.features is not None:  # no target traces
        return build_problem(spec)
    targets = store.arrays("target")["trace"]
    return build_problem(spec, [targets[:, k] for k in range(targets.shape[1])])


def _write_target(store: RunStore, problem: Problem) -> None:
    spec = problem.spec
    if not problem.objective.targets:  # a features target has no traces
        return
    targets = np.column_stack(problem.objective.targets)
    step = 1000 / spec.comparison_rate_hz
    t0 = step / 2 if spec.protocol.recording.variable == "clamp_current" else 0.0
    store.write_arrays("target", {"trace": targets, "time": t0 + step * np.arange(len(targets))})
