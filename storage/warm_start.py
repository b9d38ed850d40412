"""Warm starts: a new run begins at the best individuals of earlier runs of the same use case.

The source is a run store, a folder of run stores, or a catalog entry ``<server>/runs/<id>``
(its store is downloaded as the catalog client downloads it: data only). Only Zarr arrays and
JSON attributes are read from a source — never its checkpoint, journal or anything pickled —
so a store from someone else is as safe to start from as to explore. A source must have solved
the same use case: its recorded fingerprint must be the new problem's.

The new store keeps what it started from: ``start/{parameters, total}`` (the best points, real
units, best first) and the attribute ``warm_start`` (the source, the stores read and what they
gave). The runner gives the points to the algorithm (``Algorithm.start_from``) whenever it
builds it afresh, so a resumed run starts from the same points.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from neuroptimus.optimization.algorithms.chain import start_points_wanted
from neuroptimus.optimization.algorithms.start import best_points
from neuroptimus.optimization.evaluation.problem import Problem
from neuroptimus.optimization.problem.identity import FingerprintError, use_case_identity
from neuroptimus.optimization.problem.spec import ProblemSpec
from neuroptimus.optimization.simulators.mechanisms import mechanisms_record
from neuroptimus.storage.runs.create import create_run_store, run_identity
from neuroptimus.storage.runs.run_store import RunStore, StoreError

_URL = ("http://", "https://")


class WarmStartError(StoreError):
    """A warm start's source cannot be read, holds nothing to start from, or solved another
    problem (one sentence naming the source)."""


def check_warm_start(spec: ProblemSpec) -> None:
    """Fail before anything starts (one line) when the problem's warm start cannot be used:
    a source that is missing, empty or of another use case."""
    if not spec.warm_start:
        return
    try:
        mechanisms = mechanisms_record(spec)
        use_case = use_case_identity(spec.model_dump(mode="json"), mechanisms)
    except FingerprintError:
        use_case = None
    read_warm_start(spec.warm_start, spec, use_case and use_case.model_dump(mode="json"), 1)


def read_warm_start(
    source: str, spec: ProblemSpec, use_case: dict[str, Any] | None, count: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The ``count`` best distinct successful individuals of ``source`` (arrays for the new
    store's ``start`` group) and the ``warm_start`` attribute recording them."""
    if not use_case:
        raise WarmStartError(
            f"warm start from {source}: this problem's files cannot be hashed, so it cannot be "
            "checked that the source solved the same problem"
        )
    if source.startswith(_URL):
        with tempfile.TemporaryDirectory(prefix="neuroptimus-warm-start-") as folder:
            return _read(source, [_download(source, Path(folder))], spec, use_case, count)
    path = Path(spec.resolve(source))
    return _read(source, _stores_in(path), spec, use_case, count)


def _stores_in(path: Path) -> list[Path]:
    if (path / "zarr.json").is_file():
        return [path]
    if not path.is_dir():
        raise WarmStartError(f"warm start: {path} is neither a run store nor a folder of them")
    stores = sorted(p for p in path.iterdir() if (p / "zarr.json").is_file())
    if not stores:
        raise WarmStartError(f"warm start: {path} holds no run stores")
    return stores


def _download(source: str, folder: Path) -> Path:
    """A catalog entry's store unpacked into ``folder`` (without its saved state)."""
    from neuroptimus.storage.catalog.client import CatalogClientError, unzip_store  # noqa: PLC0415 (lazy: httpx loads only for a warm start from a catalog)

    try:
        data = _store_zip(source)
        if data is None:
            raise WarmStartError(
                f"warm start: {source} has no store (it was pushed without --with-store)"
            )
        return unzip_store(data, folder / "store", source)
    except CatalogClientError as error:
        raise WarmStartError(f"warm start from {source}: {error}") from None


@functools.lru_cache(maxsize=4)  # checked before the run starts, read again by its setup
def _store_zip(source: str) -> bytes | None:
    from neuroptimus.storage.catalog.client import CatalogClient, run_reference  # noqa: PLC0415 (lazy: httpx loads only for a warm start from a catalog)

    server, run_id = run_reference(source)
    with CatalogClient(server) as client:
        client.run(run_id)  # a run the catalog does not have is said as such
        return client.download(run_id, "store.zip", missing_ok=True)


def _fingerprint(store: RunStore) -> str | None:
    """The use case a store solved: recorded, else hashed from its spec (older stores)."""
    attrs = store.attrs
    recorded = attrs.get("use_case") or {}
    if recorded.get("fingerprint"):
        return str(recorded["fingerprint"])
    try:
        spec, mechanisms = attrs["spec"], attrs.get("mechanisms")
        return use_case_identity(spec, mechanisms, store.component_names).fingerprint
    except (FingerprintError, KeyError, TypeError):
        return None


def _read(
    source: str, paths: list[Path], spec: ProblemSpec, use_case: dict[str, Any], count: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    ours = use_case["fingerprint"]
    names = [parameter.name for parameter in spec.parameters]
    parameters, totals, read, other = [], [], [], None
    for path in paths:
        try:
            store = RunStore.open(path)
        except StoreError as error:
            raise WarmStartError(f"warm start: {error}") from None
        theirs = _fingerprint(store)
        if theirs != ours or store.parameter_names != names:
            other = other or (path, theirs)
            continue
        rows = store.evaluations()
        kept = (rows["status"] == 0) & np.isfinite(rows["total"])
        parameters.append(rows["parameters"][kept])
        totals.append(rows["total"][kept])
        where = source if source.startswith(_URL) else str(path)
        read.append(
            {"store": where, "run_id": store.attrs.get("run_id"), "evaluations": int(kept.sum())}
        )
    if not read:
        path, theirs = other
        where = source if source.startswith(_URL) else str(path)
        raise WarmStartError(
            f"warm start: {where} is a run of another use case (fingerprint "
            f"{(theirs or 'unknown')[:12]}…, this problem's {ours[:12]}…); a warm start takes "
            "runs of the same problem"
        )
    best, best_totals = best_points(np.concatenate(parameters), np.concatenate(totals), count)
    if not len(best_totals):
        raise WarmStartError(f"warm start: {source} holds no successful evaluation to start from")
    attribute = {
        "source": source,
        "stores": read,
        "skipped_stores": len(paths) - len(read),  # of other use cases, in a folder
        "points": len(best_totals),
        "best_total": float(best_totals[0]),
    }
    return {"parameters": best, "total": best_totals}, attribute


def new_run_store(problem: Problem, path: str | Path) -> RunStore:
    """``create_run_store`` for any problem: a warm start's source is read first (a wrong one
    fails before anything is built) and its points go into the new store."""
    spec = problem.spec
    start = None
    if spec.warm_start:
        use_case = run_identity(problem)
        start = read_warm_start(spec.warm_start, spec, use_case, start_points_wanted(spec))
    return create_run_store(problem, path, start)
