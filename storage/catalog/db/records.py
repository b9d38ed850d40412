"""A ``CatalogRun`` as table rows and back, and the flat row of run lists."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from neuroptimus.optimization.problem.identity import canonical_json
from neuroptimus.storage.catalog.db.curves import convergence_at, value_at
from neuroptimus.storage.catalog.db.models import Run, RunComponent, RunGeneration, RunParameter
from neuroptimus.storage.catalog.schema import CatalogRun

DEFAULT_GRID = 100  # the grid of the precomputed convergence score
_TABLES = {"parameters", "components", "curve"}


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="microseconds") + "Z"


def parse_time(text: str | None) -> datetime | None:
    """An ISO 8601 time as naive UTC (None when it cannot be read)."""
    try:
        moment = datetime.fromisoformat(text or "")
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def content_sha256(run: CatalogRun) -> str:
    return hashlib.sha256(canonical_json(run.model_dump(mode="json")).encode()).hexdigest()


def run_row(run: CatalogRun, use_case_id: int, uploader_id: int, **extra: Any) -> Run:
    evaluations = [g.evaluations for g in run.curve]
    best = [g.cumulative_best for g in run.curve]
    budget = run.budget or run.evaluations or 1
    return Run(
        id=run.run_id,
        use_case_id=use_case_id,
        uploader_id=uploader_id,
        source_format=run.source_format,
        optimization_name=run.optimization_name[:300],
        algorithm_key=run.algorithm_key,
        algorithm_label=run.algorithm_label,
        package=run.package,
        population=run.population,
        generations=run.generations,
        budget=run.budget,
        seed=run.seed,
        evaluations=run.evaluations,
        stop_reason=run.stop_reason,
        state=run.state,
        final_error=run.final_error,
        validation_error=run.validation_error,
        evaluations_to_best=run.evaluations_to_best,
        convergence_native=run.convergence_native,
        wall_seconds=run.wall_seconds,
        workers=run.workers,
        created_at=parse_time(run.created_at),
        uploaded_at=utcnow(),
        verified=None,
        final_at_budget=value_at(evaluations, best, budget),
        convergence_at_budget=convergence_at(evaluations, best, budget, DEFAULT_GRID),
        curve_evaluations=evaluations,
        curve_best=best,
        content_sha256=content_sha256(run),
        record=run.model_dump(mode="json", exclude=_TABLES),
        tags=[],
        notes="",
        **extra,
    )


def child_rows(run: CatalogRun) -> list[Any]:
    rows: list[Any] = [
        RunParameter(run_id=run.run_id, position=k, **p.model_dump())
        for k, p in enumerate(run.parameters)
    ]
    rows += [
        RunComponent(run_id=run.run_id, position=k, **c.model_dump())
        for k, c in enumerate(run.components)
    ]
    rows += [RunGeneration(run_id=run.run_id, **g.model_dump()) for g in run.curve]
    return rows


def catalog_run(
    row: Run,
    parameters: list[RunParameter],
    components: list[RunComponent],
    generations: list[RunGeneration],
) -> CatalogRun:
    """The record as uploaded, from its rows."""

    def plain(item: Any, *skip: str) -> dict[str, Any]:
        return {
            c.key: getattr(item, c.key)
            for c in item.__table__.columns
            if c.key not in ("run_id", "position", *skip)
        }

    return CatalogRun.model_validate(
        {
            **row.record,
            "parameters": [plain(p) for p in parameters],
            "components": [plain(c) for c in components],
            "curve": [plain(g) for g in generations],
        }
    )


LIST_COLUMNS = (
    "run_id", "use_case_slug", "algorithm_key", "algorithm_label", "package", "seed", "budget",
    "population", "evaluations", "final_error", "evaluations_to_best", "wall_seconds",
    "stop_reason", "state", "verified", "uploader", "created_at", "uploaded_at",
)  # fmt: skip


def list_item(row: Any) -> dict[str, Any]:
    """A flat run row (``row``: a result row with the LIST_COLUMNS)."""
    item = dict(row._mapping)
    item["created_at"] = iso(item["created_at"])
    item["uploaded_at"] = iso(item["uploaded_at"])
    return {key: item[key] for key in LIST_COLUMNS}
