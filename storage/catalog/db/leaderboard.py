"""Use cases, leaderboards at an equal evaluation budget, curves and comparisons.

A leaderboard compares runs at one budget B: runs given less than B are left out (and
counted); each run's final error is its best after B evaluations and its convergence score is
recomputed on the grid of B (neuroptimus.storage.catalog.db.curves). For runs whose own budget is
B, both numbers were computed at upload (``final_at_budget``, ``convergence_at_budget``), so a
leaderboard reads one row per run and no curves. Spreads are quartiles (linear interpolation,
numpy's default) over the runs of a group.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from neuroptimus.storage.catalog.db.curves import convergence_at, grid_marks, on_grid, value_at
from neuroptimus.storage.catalog.db.models import Run, RunGeneration, UseCase, User
from neuroptimus.storage.catalog.db.records import DEFAULT_GRID, iso
from neuroptimus.storage.catalog.errors import InvalidInput

GROUPINGS = {
    "algorithm": ("algorithm_key",),
    "algorithm,package": ("algorithm_key", "package"),
    "package": ("package",),
    "uploader": ("uploader",),
}
MAX_COMPARED = 5000  # runs in one comparison


def stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "q1": None, "q3": None, "min": None, "max": None}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3),
            "min": float(min(values)), "max": float(max(values))}  # fmt: skip


# -- use cases --------------------------------------------------------------------------------
def use_case_list(
    session: Session, seen: Any, use_case_id: int | None = None
) -> list[dict[str, Any]]:
    """The use cases ``seen`` selects (``listing.use_case_seen``), most runs first, with the
    counts and best result of their public runs."""
    public = (Run.use_case_id == UseCase.id) & (Run.visibility == "public")
    query = (
        select(
            UseCase,
            func.count(Run.id),
            func.count(distinct(Run.algorithm_key)),
            func.count(distinct(Run.uploader_id)),
            func.min(Run.final_error),
        )  # fmt: skip
        .outerjoin(Run, public)
        .group_by(UseCase.id)
        .order_by(func.count(Run.id).desc(), UseCase.slug)
    )
    query = query.where(seen)
    if use_case_id is not None:
        query = query.where(UseCase.id == use_case_id)
    rows = session.execute(query).all()
    return [
        {"slug": u.slug, "name": u.name, "description": u.description, "kind": u.kind,
         "fingerprint": u.fingerprint, "runs": runs, "algorithms": algorithms,
         "uploaders": uploaders, "best_final_error": best}
        for u, runs, algorithms, uploaders, best in rows
    ]  # fmt: skip


def use_case_detail(session: Session, slug: str, seen: Any) -> dict[str, Any] | None:
    """The use case, if ``seen`` selects it (else None, as for an unknown slug)."""
    use_case = session.scalar(select(UseCase).where(UseCase.slug == slug))
    if use_case is None:
        return None
    found = use_case_list(session, seen, use_case.id)
    if not found:
        return None
    (summary,) = found
    identity = use_case.identity
    example = session.scalar(
        select(Run.id)
        .where(Run.use_case_id == use_case.id, Run.visibility == "public",
               Run.source_format == "neuroptimus")
        .order_by(Run.uploaded_at.desc(), Run.id)
        .limit(1)
    )  # fmt: skip
    return {
        **summary,
        "simulator": use_case.simulator,
        "created_at": iso(use_case.created_at),
        "core": identity["core"],
        "parameters": identity["core"].get("parameters", []),
        "components": identity["components"],
        "example_run_id": example,  # a public run of ours: its problem reproduces the use case
    }


# -- leaderboards ----------------------------------------------------------------------------
def _group_columns(group_by: str) -> tuple[str, ...]:
    if group_by not in GROUPINGS:
        raise InvalidInput(f"group_by {group_by!r}: choose {', '.join(GROUPINGS)}")
    return GROUPINGS[group_by]


def leaderboard(
    session: Session,
    use_case: UseCase,
    budget: int | None = None,
    target: float | None = None,
    grid: int = DEFAULT_GRID,
    group_by: str = "algorithm",
    verified_only: bool = False,
    package: str | None = None,
    uploader: str | None = None,
) -> dict[str, Any]:
    """Groups of public runs ranked at an equal budget; ``package`` and ``uploader`` narrow
    the runs (one package's implementations, one lab's runs)."""
    columns = _group_columns(group_by)
    if budget is not None and budget < 1:
        raise InvalidInput(f"budget {budget}: give a positive number of evaluations")
    if not 1 <= grid <= 10_000:
        raise InvalidInput(f"grid {grid}: give 1 to 10000 points")
    conditions = [Run.use_case_id == use_case.id, Run.visibility == "public"]
    if verified_only:
        conditions.append(Run.verified.is_(True))
    if package:
        conditions.append(Run.package == package)
    if uploader:
        conditions.append(User.handle == uploader)
    rows = session.execute(
        select(
            Run.id,
            Run.state,
            Run.budget,
            Run.algorithm_key,
            Run.algorithm_label,
            Run.package,
            Run.seed,
            User.handle.label("uploader"),
            Run.final_at_budget,
            Run.convergence_at_budget,
        )  # fmt: skip
        .join(User, User.id == Run.uploader_id)
        .where(*conditions)
    ).all()
    complete = [r for r in rows if r.state == "complete"]
    if budget is None and complete:  # the budget most runs were given (the larger on a tie)
        counts = Counter(r.budget for r in complete if r.budget)
        budget = max(counts, key=lambda b: (counts[b], b)) if counts else None
    included = [r for r in complete if budget and r.budget and r.budget >= budget]
    numbers = _numbers_at(session, included, budget, grid)
    groups: dict[tuple, list] = defaultdict(list)
    for row in included:
        groups[tuple(getattr(row, c) for c in columns)].append(row)
    table = [_group(key, members, columns, numbers, target) for key, members in groups.items()]
    table.sort(key=lambda g: (_sortable(g["final"]["median"]),
                              _sortable(g["convergence"]["median"]), g["key"]))  # fmt: skip
    for rank, group in enumerate(table, 1):
        group["rank"] = rank
    return {
        "use_case": use_case.slug, "budget": budget, "grid": grid, "target": target,
        "group_by": group_by, "verified_only": verified_only, "package": package,
        "uploader": uploader, "runs": len(included),
        "excluded": {"below_budget": len(complete) - len(included),
                     "partial": len(rows) - len(complete)},
        "groups": table,
    }  # fmt: skip


def _sortable(value: float | None) -> float:
    return np.inf if value is None else value


def _numbers_at(
    session: Session, rows: list, budget: int | None, grid: int
) -> dict[str, tuple[float | None, float | None]]:
    """Each run's (final error, convergence score) at ``budget``: precomputed where it was
    the run's own budget on the default grid, from its compact curve otherwise."""
    numbers = {}
    others = []
    for row in rows:
        if row.budget == budget and grid == DEFAULT_GRID:
            numbers[row.id] = (row.final_at_budget, row.convergence_at_budget)
        else:
            others.append(row.id)
    for start in range(0, len(others), 500):
        chunk = others[start : start + 500]
        for run_id, evaluations, best in session.execute(
            select(Run.id, Run.curve_evaluations, Run.curve_best).where(Run.id.in_(chunk))
        ):
            numbers[run_id] = (
                value_at(evaluations, best, budget),
                convergence_at(evaluations, best, budget, grid),
            )
    return numbers


def _group(key: tuple, members: list, columns: tuple[str, ...], numbers: dict,
           target: float | None) -> dict[str, Any]:  # fmt: skip
    finals = [numbers[m.id][0] for m in members if numbers[m.id][0] is not None]
    convergences = [numbers[m.id][1] for m in members if numbers[m.id][1] is not None]
    labels = Counter(m.algorithm_label for m in members)
    return {
        "key": "/".join(str(k) for k in key),
        **dict(zip(columns, key, strict=True)),
        "algorithm_label": labels.most_common(1)[0][0] if "algorithm_key" in columns else None,
        "runs": len(members),
        "seeds": len({m.seed for m in members if m.seed is not None}),
        "uploaders": len({m.uploader for m in members}),
        "final": stats(finals),
        "convergence": stats(convergences),
        "success_rate": (
            None if target is None
            else sum(1 for f in finals if f <= target) / len(members)
        ),
    }  # fmt: skip


# -- curves and comparisons -------------------------------------------------------------------
def curves(session: Session, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in run_ids}
    for row in session.scalars(
        select(RunGeneration)
        .where(RunGeneration.run_id.in_(run_ids))
        .order_by(RunGeneration.run_id, RunGeneration.generation)
    ):
        found[row.run_id].append(
            {c.key: getattr(row, c.key) for c in RunGeneration.__table__.columns
             if c.key != "run_id"}
        )  # fmt: skip
    return found


def compare(
    session: Session,
    run_ids: list[str] | None,
    slug: str | None,
    algorithms: list[str] | None,
    budget: int | None,
    grid: int = DEFAULT_GRID,
) -> dict[str, Any]:
    """Chosen runs (or a use case's public complete runs of some algorithms) on one grid up to
    a common budget (default: the smallest of theirs), with box statistics per algorithm."""
    query = select(
        Run.id, Run.algorithm_key, Run.algorithm_label, Run.package, Run.seed, Run.budget,
        Run.curve_evaluations, Run.curve_best, User.handle.label("uploader"),
    ).join(User, User.id == Run.uploader_id)  # fmt: skip
    if run_ids:
        query = query.where(Run.id.in_(run_ids))
    else:
        query = query.join(UseCase, UseCase.id == Run.use_case_id).where(
            UseCase.slug == slug, Run.visibility == "public", Run.state == "complete"
        )
        if algorithms:
            query = query.where(Run.algorithm_key.in_(algorithms))
    rows = session.execute(query.order_by(Run.algorithm_key, Run.id).limit(MAX_COMPARED)).all()
    if budget is None:
        budgets = [r.budget or (r.curve_evaluations or [0])[-1] for r in rows]
        budget = min((b for b in budgets if b), default=None)
    if not rows or not budget:
        return {"budget": budget, "grid": [], "runs": [], "groups": {}}
    marks = grid_marks(budget, grid)
    runs, by_algorithm = [], defaultdict(list)
    for row in rows:
        values = on_grid(row.curve_evaluations, row.curve_best, marks)
        entry = {
            "run_id": row.id, "algorithm_key": row.algorithm_key,
            "algorithm_label": row.algorithm_label, "package": row.package, "seed": row.seed,
            "uploader": row.uploader, "budget": row.budget,
            "curve": None if values is None else values.tolist(),
            "final": value_at(row.curve_evaluations, row.curve_best, budget),
            "convergence": convergence_at(row.curve_evaluations, row.curve_best, budget, grid),
        }  # fmt: skip
        runs.append(entry)
        by_algorithm[row.algorithm_key].append(entry)
    return {"budget": budget, "grid": marks.tolist(), "runs": runs,
            "groups": {key: _box(entries) for key, entries in by_algorithm.items()}}  # fmt: skip


def _box(entries: list[dict[str, Any]]) -> dict[str, Any]:
    curves_ = np.array([e["curve"] for e in entries if e["curve"] is not None])
    band = (
        {"median_curve": np.median(curves_, axis=0).tolist(),
         "min_curve": curves_.min(axis=0).tolist(), "max_curve": curves_.max(axis=0).tolist()}
        if len(curves_) else {"median_curve": [], "min_curve": [], "max_curve": []}
    )  # fmt: skip
    return {
        "algorithm_label": entries[0]["algorithm_label"],
        "runs": len(entries),
        "final": stats([e["final"] for e in entries if e["final"] is not None]),
        "convergence": stats([e["convergence"] for e in entries if e["convergence"] is not None]),
        **band,
    }
