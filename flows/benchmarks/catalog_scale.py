"""The catalog at scale: fill it with realistic synthetic runs (bulk inserts, no uploads) and
time the queries the pages and the API make most.

Synthetic runs look like benchmark campaigns: eight use cases, each with a budget most of its
runs were given, the registered algorithms, a few dozen uploaders, seeds, curves that fall in
log scale and level off, one row per generation, three parameters and four error components.
"""

from __future__ import annotations

import statistics
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from neuroptimus.optimization.algorithms import ALGORITHMS
from neuroptimus.optimization.problem.identity import digest
from neuroptimus.storage.catalog.db.curves import convergence_at
from neuroptimus.storage.catalog.db.listing import RunFilter
from neuroptimus.storage.catalog.db.models import (
    Run,
    RunComponent,
    RunGeneration,
    RunParameter,
    UseCase,
)
from neuroptimus.storage.catalog.db.records import DEFAULT_GRID, utcnow
from neuroptimus.storage.catalog.db.repository import Catalog

USE_CASES = ("hh", "vclamp", "ca1-passive", "ca1-simplified", "ca1-detailed", "adexp",
             "pathway", "adexp-external")  # fmt: skip
BUDGETS = (1000, 2000, 5000, 10000)
POPULATIONS = (50, 100, 200)
COMPONENTS = ("MSE", "Spike count", "AP amplitude", "AP width")
CHUNK = 2000  # runs per bulk insert


def _users(catalog: Catalog, count: int) -> list[int]:
    return [catalog.create_user(f"scale-user-{k:03d}") for k in range(count)]


def _use_cases(catalog: Catalog, seed: int) -> list[tuple[int, str, int]]:
    """(id, slug, the campaign budget) of the synthetic use cases."""
    made = []
    with catalog.session() as session:
        for k, name in enumerate(USE_CASES):
            core = {"synthetic": name, "seed": seed}
            fingerprint = digest(core)
            found = session.scalar(select(UseCase).where(UseCase.fingerprint == fingerprint))
            if found is None:
                found = UseCase(
                    slug=f"{name}-scale-{seed}", fingerprint=fingerprint, kind="content",
                    name=name, description=f"synthetic {name}", simulator="neuron",
                    identity=_identity(name, fingerprint, core), created_at=utcnow(),
                )  # fmt: skip
                session.add(found)
                session.flush()
            made.append((found.id, found.slug, BUDGETS[k % len(BUDGETS)]))
    return made


def _identity(name: str, fingerprint: str, core: dict) -> dict[str, Any]:
    parameters = [{"name": f"p{k}", "lower": 0.0, "upper": 1.0, "log": False} for k in range(3)]
    return {"fingerprint": fingerprint, "kind": "content", "name": name, "description": "",
            "simulator": "neuron", "parameters": [p["name"] for p in parameters],
            "components": list(COMPONENTS), "core": {**core, "parameters": parameters}}  # fmt: skip


def _curve(rng: np.random.Generator, generations: int) -> np.ndarray:
    """Best-so-far errors: from ~10–100 down towards a final error of 1e-6 … 1e-1."""
    start, final = rng.uniform(1, 2), rng.uniform(-6, -1)
    shape = 1 - np.exp(-rng.uniform(2, 8) * np.linspace(0, 1, generations))
    logs = start + (final - start) * shape / shape[-1] + rng.normal(0, 0.05, generations)
    return np.minimum.accumulate(10.0**logs)


def _run(rng, use_case, users, algorithms, now, seed_offset) -> tuple[dict, list, list, list]:
    use_case_id, slug, campaign = use_case
    key, info = algorithms[rng.integers(len(algorithms))]
    budget = campaign if rng.random() < 0.85 else int(rng.choice(BUDGETS))
    population = int(rng.choice(POPULATIONS))
    generations = max(1, budget // population)
    state = "complete" if rng.random() < 0.97 else "partial"
    done = generations if state == "complete" else int(rng.integers(1, generations + 1))
    best = _curve(rng, generations)[:done]
    evaluations = (np.arange(1, done + 1) * population).tolist()
    best_list = best.tolist()
    run_id = str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | seed_offset, version=4))
    created = now - timedelta(seconds=float(rng.uniform(0, 3e7)))
    visibility = rng.choice(["public", "unlisted", "private"], p=[0.9, 0.05, 0.05])
    verified = rng.choice([None, True, False], p=[0.88, 0.1, 0.02])
    final = best_list[-1]
    seed = int(rng.integers(0, 30))
    record = {
        "run_id": run_id, "source_format": "neuroptimus",
        "use_case": _identity(slug, "0" * 64, {}),
        "optimization_name": f"{slug}_{key}_seed{seed}", "algorithm_key": key,
        "algorithm_label": info.label, "package": info.package, "settings": {},
        "population": population, "generations": done, "budget": budget, "seed": seed,
        "evaluations": evaluations[-1], "stop_reason": "budget" if state == "complete" else None,
        "state": state, "final_error": final, "created_at": created.isoformat() + "Z",
        "provenance": {}, "problem": None, "metadata": {},
    }  # fmt: skip
    row = {
        "id": run_id, "use_case_id": use_case_id,
        "uploader_id": users[int(rng.integers(len(users)))], "source_format": "neuroptimus",
        "optimization_name": record["optimization_name"], "algorithm_key": key,
        "algorithm_label": info.label, "package": info.package, "population": population,
        "generations": done, "budget": budget, "seed": seed, "evaluations": evaluations[-1],
        "stop_reason": record["stop_reason"], "state": state, "final_error": final,
        "evaluations_to_best": evaluations[-1] - int(rng.integers(0, population)),
        "convergence_native": None, "wall_seconds": float(rng.uniform(10, 5e4)),
        "workers": int(rng.choice([1, 4, 16, 64])), "created_at": created,
        "uploaded_at": created + timedelta(seconds=float(rng.uniform(60, 86400))),
        "visibility": str(visibility), "verified": None if verified is None else bool(verified),
        "final_at_budget": final,
        "convergence_at_budget": convergence_at(evaluations, best_list, budget, DEFAULT_GRID),
        "curve_evaluations": evaluations, "curve_best": best_list, "content_sha256": "0" * 64,
        "record": record, "store_file": None, "archive_file": None, "tags": [], "notes": "",
    }  # fmt: skip
    optimum = rng.random(3)
    parameters = [
        {"run_id": run_id, "position": k, "name": f"p{k}", "unit": "", "lower": 0.0,
         "upper": 1.0, "log": False, "optimum": float(optimum[k]), "true_value": None}
        for k in range(3)
    ]  # fmt: skip
    parts = rng.dirichlet(np.ones(len(COMPONENTS))) * final
    components = [
        {"run_id": run_id, "position": k, "name": name, "value": float(parts[k] * 4),
         "weight": 0.25, "weighted_value": float(parts[k])}
        for k, name in enumerate(COMPONENTS)
    ]  # fmt: skip
    spread = rng.uniform(1.5, 20, done)
    generations_rows = [
        {"run_id": run_id, "generation": g, "evaluations": evaluations[g], "best": best_list[g],
         "cumulative_best": best_list[g], "median": best_list[g] * spread[g],
         "mean": best_list[g] * spread[g] * 1.3, "worst": best_list[g] * spread[g] * 5,
         "failed": 0, "seconds": float(spread[g])}
        for g in range(done)
    ]  # fmt: skip
    return row, parameters, components, generations_rows


def fill(catalog: Catalog, runs: int, seed: int = 0, progress: Callable | None = None) -> int:
    """Add ``runs`` synthetic runs (bulk inserts of CHUNK runs); the number added."""
    rng = np.random.default_rng(seed)
    users = _users(catalog, 40)
    use_cases = _use_cases(catalog, seed)
    algorithms = sorted((key, a.info) for key, a in ALGORITHMS.items())
    now = utcnow()
    with catalog.session() as session:
        offset = session.scalar(select(func.count(Run.id))) or 0
    done = 0
    while done < runs:
        batch = [
            _run(rng, use_cases[int(rng.integers(len(use_cases)))], users, algorithms, now,
                 offset + done + k)
            for k in range(min(CHUNK, runs - done))
        ]  # fmt: skip
        with catalog.session() as session:
            session.execute(insert(Run), [b[0] for b in batch])
            for model, part in ((RunParameter, 1), (RunComponent, 2), (RunGeneration, 3)):
                session.execute(insert(model), [row for b in batch for row in b[part]])
        done += len(batch)
        if progress:
            progress(done)
    with catalog.engine.begin() as connection:  # fresh statistics for the query planner
        connection.exec_driver_sql("ANALYZE")
    return done


def _timed(action: Callable[[], Any], repeats: int = 5) -> float:
    """Median milliseconds of ``repeats`` calls (after one to warm caches)."""
    action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def time_queries(catalog: Catalog) -> dict[str, float]:
    """Milliseconds (median of 5) of the common queries on the catalog as it is."""
    largest = max(catalog.use_cases(), key=lambda u: u["runs"])["slug"]
    first = catalog.list_runs(sort="final_error")
    algorithm = first.items[0]["algorithm_key"] if first.items else "cmaes"
    by_use_case = RunFilter(use_case=largest, algorithm=algorithm)
    return {
        "list": _timed(lambda: catalog.list_runs()),
        "filter": _timed(lambda: catalog.list_runs(by_use_case, sort="final_error")),
        "filter_budget": _timed(
            lambda: catalog.list_runs(
                RunFilter(min_budget=5000, verified=True), sort="-evaluations"
            )
        ),
        "sort": _timed(lambda: catalog.list_runs(sort="final_error")),
        "page_2": _timed(lambda: catalog.list_runs(sort="final_error", cursor=first.next_cursor)),
        "leaderboard": _timed(lambda: catalog.leaderboard(largest)),
        "leaderboard_other_budget": _timed(lambda: catalog.leaderboard(largest, budget=1000)),
    }


def time_requests(app: Any, catalog: Catalog) -> dict[str, float]:
    """Milliseconds (median of 5) of the same questions asked over HTTP (``app``: the catalog's
    web application), JSON encoding and the run-table page included."""
    with warnings.catch_warnings():  # starlette's note about its httpx client
        warnings.simplefilter("ignore")

    largest = max(catalog.use_cases(), key=lambda u: u["runs"])["slug"]
    client = TestClient(app)

    def get(url: str) -> Callable[[], None]:
        return lambda: client.get(url).raise_for_status()

    return {
        "http_list": _timed(get("/api/v1/runs")),
        "http_filter": _timed(get(f"/api/v1/runs?use_case={largest}&sort=final_error")),
        "http_leaderboard": _timed(get(f"/api/v1/use-cases/{largest}/leaderboard")),
        "http_runs_page": _timed(get(f"/runs?use_case={largest}")),
    }
