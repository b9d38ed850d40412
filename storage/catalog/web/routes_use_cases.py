"""The API's use cases: their list and counts, leaderboards, the problem file of a use case,
and comparisons of runs or of a use case's algorithms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from neuroptimus.storage.catalog.bounds import MAX_FILTER_TEXT
from neuroptimus.storage.catalog.db.repository import RunFilter
from neuroptimus.storage.catalog.schema import COUNT_MAX
from neuroptimus.storage.catalog.web.request_helpers import Viewer, catalog_of, yaml_download

router = APIRouter(tags=["use cases"])


@router.get("/use-cases")
def use_cases(request: Request, who: Viewer) -> list[dict[str, Any]]:
    """The use cases you may see (registered by an admin, or of a public run or one of
    yours) with the counts of their public runs, algorithms, uploaders and best error."""
    return catalog_of(request).use_cases(who)


@router.get("/use-cases/{slug}")
def use_case(slug: str, request: Request, who: Viewer) -> dict[str, Any]:
    return catalog_of(request).use_case(slug, who)


@router.get("/use-cases/{slug}/leaderboard")
def leaderboard(
    slug: str,
    request: Request,
    who: Viewer,
    budget: Annotated[int | None, Query(ge=1, le=COUNT_MAX)] = None,
    target: Annotated[float | None, Query(gt=0, allow_inf_nan=False)] = None,
    grid: Annotated[int, Query(ge=2, le=10_000)] = 100,
    group_by: Annotated[
        str,
        Query(max_length=50, description="algorithm, algorithm,package, package or uploader"),
    ] = "algorithm",
    verified_only: bool = False,
    package: Annotated[str | None, Query(max_length=MAX_FILTER_TEXT)] = None,
    uploader: Annotated[str | None, Query(max_length=MAX_FILTER_TEXT)] = None,
) -> dict[str, Any]:
    """Algorithms ranked at an equal evaluation budget (runs with less are left out and
    counted): final error and convergence score over seeds, success rate for a target;
    ``package`` and ``uploader`` narrow the runs."""
    return catalog_of(request).leaderboard(
        slug,
        budget=budget,
        target=target,
        grid=grid,
        group_by=group_by,
        verified_only=verified_only,
        package=package,
        uploader=uploader,
        viewer=who,
    )


@router.get("/use-cases/{slug}/problem.yaml")
def use_case_problem(slug: str, request: Request, who: Viewer) -> Response:
    """The use case's problem without an algorithm: add one to run it."""
    catalog = catalog_of(request)
    catalog.use_case(slug, who)  # 404 for an unknown slug, or one you may not see
    page = catalog.list_runs(RunFilter(use_case=slug), sort="-uploaded_at", limit=50)
    for item in page.items:
        problem = catalog.run_record(item["run_id"]).problem
        if problem is not None:
            rest = {
                k: v
                for k, v in problem.items()
                if k not in ("algorithm", "stopping", "seed", "base_dir")
            }
            return yaml_download(rest, f"{slug}-problem.yaml")
    raise HTTPException(
        404,
        f"use case {slug} has no public run with a problem file "
        "(runs of the original tool's format carry none).",
    )


@router.get("/compare")
def compare(
    request: Request,
    who: Viewer,
    runs: Annotated[
        str | None, Query(max_length=200 * 37, description="run ids, comma-separated")
    ] = None,
    use_case: Annotated[str | None, Query(max_length=MAX_FILTER_TEXT)] = None,
    algorithms: Annotated[
        str | None, Query(max_length=2000, description="algorithm keys, comma-separated")
    ] = None,
    budget: Annotated[int | None, Query(ge=1, le=COUNT_MAX)] = None,
) -> dict[str, Any]:
    """Curves on a common evaluation grid and box statistics of chosen runs, or of a use
    case's algorithms."""
    catalog = catalog_of(request)
    if runs:
        ids = [r.strip() for r in runs.split(",") if r.strip()]
        if len(ids) > 200:
            raise HTTPException(422, "compare at most 200 runs at a time.")
        return catalog.compare(run_ids=ids, budget=budget, viewer=who)
    if use_case:
        chosen = [a.strip() for a in algorithms.split(",") if a.strip()] if algorithms else None
        return catalog.compare(slug=use_case, algorithms=chosen, budget=budget, viewer=who)
    raise HTTPException(422, "name the runs (runs=a,b) or a use case (use_case=slug).")
