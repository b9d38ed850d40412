"""The catalog's pages for browsing: use cases with their best results, a use case's
leaderboard with the paper's figures, the run table, a run's text view and a comparison of
chosen runs (and the pages' stylesheet)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from neuroptimus.analysis.comparison import summary_table
from neuroptimus.storage.catalog.db.listing import MAX_CURSOR
from neuroptimus.storage.catalog.db.repository import Catalog, CatalogError, NotFound, RunFilter
from neuroptimus.storage.catalog.schema import COUNT_MAX
from neuroptimus.storage.catalog.web import figures
from neuroptimus.storage.catalog.web.pages import (
    FIGURE_RUNS,
    FILTERS,
    MAX_COMPARED,
    PAGE_SIZES,
    SORT_KEYS,
    TEMPLATES,
    BadQuery,
    bool_param,
    error_page,
    float_param,
    int_param,
    page_viewer,
    query_string,
    render,
    run_filter_param,
    text_param,
)
from neuroptimus.storage.catalog.web.request_helpers import CatalogDep

router = APIRouter(include_in_schema=False)


def all_runs(catalog: Catalog, filters: RunFilter, viewer, cap: int = FIGURE_RUNS):
    """Up to ``cap`` runs matching ``filters`` (best first), and how many match in all."""
    items: list[dict] = []
    cursor = None
    total = 0
    while len(items) < cap:
        page = catalog.list_runs(filters, sort="final_error", limit=min(200, cap - len(items)),
                                 cursor=cursor, viewer=viewer)  # fmt: skip
        items.extend(page.items)
        total = page.total
        cursor = page.next_cursor
        if cursor is None:
            break
    return items, total


def _figures(catalog: Catalog, runs: list[dict], budget: int | None, viewer,
             summary: bool = True) -> dict[str, Any]:  # fmt: skip
    """The paper's figures of ``runs`` on the catalog's common grid up to ``budget`` (None:
    the smallest of theirs), embedded; and ``neuroptimus.analysis.comparison``'s per-algorithm
    summary of the same scores."""
    if not runs:
        return {"figures": [], "summary": [], "grid": None}
    by_id = {r["run_id"]: r for r in runs}
    comparison = catalog.compare(run_ids=list(by_id), budget=budget, viewer=viewer)
    scores = figures.run_scores(comparison, by_id)
    marks = comparison.get("grid") or []
    return {
        "figures": [figures.embed(f) for f in figures.comparison_figures(scores)],
        "summary": summary_table(scores).to_dict("records") if scores and summary else [],
        "grid": (marks[0], marks[-1]) if marks else None,
    }


@router.get("/assets/catalog.css", include_in_schema=False)
def stylesheet() -> FileResponse:
    return FileResponse(TEMPLATES / "catalog.css", media_type="text/css")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def use_cases(request: Request, catalog: CatalogDep) -> Response:
    viewer = page_viewer(request)
    cases = catalog.use_cases(viewer)
    for case in cases:  # the best run of each, for a link and its algorithm
        best = catalog.list_runs(RunFilter(use_case=case["slug"]), sort="final_error",
                                 limit=1, viewer=viewer)  # fmt: skip
        case["best_run"] = best.items[0] if best.items else None
    return render(request, "index.html", use_cases=cases)


@router.get("/use-cases/{slug}", response_class=HTMLResponse, include_in_schema=False)
def use_case(request: Request, catalog: CatalogDep, slug: str) -> Response:
    viewer = page_viewer(request)
    try:  # a use case known only from others' private runs is unknown here too
        case = catalog.use_case(slug, viewer)
    except NotFound:
        return error_page(request, 404, f"There is no use case {slug!r} in this catalog.")
    budget = int_param(request, "budget", 1, COUNT_MAX)
    target = float_param(request, "target")
    verified = bool(bool_param(request, "verified"))
    package, uploader = text_param(request, "package"), text_param(request, "uploader")
    board = catalog.leaderboard(slug, budget=budget, target=target, verified_only=verified,
                                package=package, uploader=uploader,
                                viewer=viewer)  # fmt: skip
    # The figures draw the leaderboard's runs (public, complete, given at least its
    # budget, of the package and uploader asked for), on the leaderboard's grid.
    chosen = RunFilter(use_case=slug, package=package, uploader=uploader,
                       min_budget=board["budget"], verified=True if verified else None,
                       state="complete")  # fmt: skip
    runs, matching = all_runs(catalog, chosen, None)
    params = {"budget": budget, "target": target, "package": package,
              "uploader": uploader, "verified": "yes" if verified else None}  # fmt: skip
    return render(
        request, "use_case.html", case=case, board=board, params=params, runs=runs,
        matching=matching, runs_query=query_string({"use_case": slug, "package": package,
                                              "uploader": uploader}),
        csv_query=query_string({"use_case": slug, "package": package, "uploader": uploader,
                          "min_budget": budget, "format": "csv"}),
        **_figures(catalog, runs, board["budget"], None, summary=bool(package or uploader)),
    )  # fmt: skip


@router.get("/runs", response_class=HTMLResponse, include_in_schema=False)
def runs(request: Request, catalog: CatalogDep) -> Response:
    viewer = page_viewer(request)
    filters = run_filter_param(request)
    sort = text_param(request, "sort") or "-uploaded_at"
    if sort.lstrip("-") not in SORT_KEYS:
        raise BadQuery(f"sort must be one of {', '.join(SORT_KEYS)} (- for descending)")
    limit = int_param(request, "limit", 1) or 50
    limit = min(limit, max(PAGE_SIZES))
    cursor = text_param(request, "cursor")
    if cursor is not None and len(cursor) > MAX_CURSOR:
        raise BadQuery("the cursor is malformed: use the page's own links")
    try:
        page = catalog.list_runs(filters, sort=sort, limit=limit, cursor=cursor,
                                 viewer=viewer)  # fmt: skip
    except CatalogError as error:  # a stale or forged cursor
        raise BadQuery(str(error)) from None
    params = {name: request.query_params.get(name) for name in FILTERS}
    params.update(sort=sort, limit=limit if limit != 50 else None)
    return render(
        request, "runs.html", page=page, params=params, sort=sort,
        sort_keys=SORT_KEYS, page_sizes=PAGE_SIZES, query=lambda **c: query_string(params, **c),
        csv_query=query_string(params, limit=None, format="csv"), cursor=cursor,
    )  # fmt: skip


@router.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
def run(request: Request, catalog: CatalogDep, run_id: str) -> Response:
    viewer = page_viewer(request)
    try:
        record = catalog.get_run(run_id, viewer)
    except CatalogError:  # missing, or private to someone else: the same answer
        return error_page(request, 404, f"There is no run {run_id!r} you can see here.")
    site = str(request.base_url).rstrip("/")
    plot = figures.embed(
        figures.generation_figure(record["curve"], "Generation plot")
        if record.get("curve") else None
    )  # fmt: skip
    return render(
        request, "run.html", run=record, site=site,
        reproduce=f"neuroptimus catalog reproduce {site}/runs/{record['run_id']}",
        figures=[plot] if plot[0] else [],
    )  # fmt: skip


@router.get("/compare", response_class=HTMLResponse, include_in_schema=False)
def compare(request: Request, catalog: CatalogDep) -> Response:
    viewer = page_viewer(request)
    ids = [i for v in request.query_params.getlist("runs") for i in v.split(",") if i.strip()]
    slug = text_param(request, "use_case")
    algorithms = [a for v in request.query_params.getlist("algorithms")
                  for a in v.split(",") if a.strip()]  # fmt: skip
    budget = int_param(request, "budget", 1, COUNT_MAX)
    chosen: list[dict] = []
    missing: list[str] = []
    if len(ids) > MAX_COMPARED:
        raise BadQuery(f"compare at most {MAX_COMPARED} runs at a time")
    if ids:
        for run_id in dict.fromkeys(i.strip() for i in ids):
            try:
                chosen.append(catalog.get_run(run_id, viewer))
            except CatalogError:
                missing.append(run_id)
    elif slug:
        for algorithm in algorithms or [None]:
            found, _ = all_runs(catalog, RunFilter(use_case=slug, algorithm=algorithm,
                                                    state="complete"), viewer)  # fmt: skip
            chosen.extend(found)
    slugs = sorted({r.get("use_case_slug") for r in chosen if r.get("use_case_slug")})
    return render(
        request, "compare.html", runs=chosen, missing=missing, slugs=slugs,
        use_case=slug, algorithms=algorithms, budget=budget,
        **_figures(catalog, chosen, budget, viewer),
    )  # fmt: skip
