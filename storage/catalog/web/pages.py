"""The catalog's web pages, rendered on the server (Jinja2, plain HTML and a little CSS, no
JavaScript build): use cases with their best results, a use case's leaderboard with the
paper's figures, the run table, a run's text view, a comparison of chosen runs, and for
signed-in users (a pasted token starts a session kept on the server) an upload form with CSRF
protection.

Everything is read through :class:`neuroptimus.storage.catalog.db.repository.Catalog`; browsing
public runs needs no account. Figures come from the curves the catalog keeps
(``neuroptimus.storage.catalog.web.figures``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from bokeh.util.paths import bokehjs_path
from fastapi import BackgroundTasks, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from neuroptimus.analysis.comparison import summary_table
from neuroptimus.optimization.errors import UserError
from neuroptimus.storage.catalog import bounds
from neuroptimus.storage.catalog.db.listing import MAX_CURSOR
from neuroptimus.storage.catalog.db.repository import (
    Catalog,
    CatalogError,
    InvalidInput,
    NotFound,
    RunFilter,
)
from neuroptimus.storage.catalog.intake import uploads
from neuroptimus.storage.catalog.schema import COUNT_MAX
from neuroptimus.storage.catalog.web import app as api
from neuroptimus.storage.catalog.web import auth
from neuroptimus.storage.catalog.web import figures as figures
from neuroptimus.storage.catalog.web.security_headers import csp_nonce

TEMPLATES = Path(__file__).parent / "templates"
PAGE_SIZES = (25, 50, 100, 200)
MAX_COMPARED = 200  # runs chosen by id on the compare page
FIGURE_RUNS = 500  # a figure draws at most this many runs (the page says when it is cut)
SORT_KEYS = ("final_error", "evaluations", "budget", "seed", "uploaded_at", "created_at",
             "wall_seconds")  # fmt: skip
FILTERS = ("use_case", "algorithm", "package", "uploader", "seed", "min_budget", "max_budget",
           "verified", "state", "q")  # fmt: skip


class BadQuery(UserError, ValueError):
    """A query parameter that cannot be read (the page answers 400 and says which)."""


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{float(value):.{digits}g}"


def _seconds(value: Any) -> str:
    if value is None:
        return "–"
    value = float(value)
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


def _date(value: Any) -> str:
    """ISO 8601 shortened to the minute (the page's readers need no microseconds)."""
    text = str(value or "")
    return text[:16].replace("T", " ") if text else "–"


def _nonced(script: str, nonce: str) -> str:
    """A figure's Bokeh embedding script allowed by the page's content security policy."""
    return script.replace("<script>", f'<script nonce="{nonce}">', 1)


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters.update(num=_number, secs=_seconds, date=_date)
    templates.env.filters["json"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)
    templates.env.filters["nonced"] = _nonced
    return templates


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _int(request: Request, name: str, minimum: int, maximum: int = bounds.INT64_MAX) -> int | None:
    try:
        return bounds.whole_number(request.query_params.get(name), name, minimum, maximum)
    except InvalidInput as error:
        raise BadQuery(str(error)) from None


def _float(request: Request, name: str) -> float | None:
    value = _text(request, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadQuery(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise BadQuery(f"{name} must be a finite number")
    return number


def _bool(request: Request, name: str) -> bool | None:
    value = _text(request, name)
    if value is None:
        return None
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise BadQuery(f"{name} must be yes or no, not {value!r}")


def _run_filter(request: Request) -> RunFilter:
    """The API's own parser of run filters: one rule for the page and ``/api/v1/runs``."""
    try:
        return bounds.run_filter(request.query_params)
    except InvalidInput as error:
        raise BadQuery(str(error)) from None


def _query(params: dict[str, Any], **changes: Any) -> str:
    """A query string from ``params`` with ``changes`` (None drops a key)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def _all_runs(catalog: Catalog, filters: RunFilter, viewer, cap: int = FIGURE_RUNS):
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


def add_pages(app: FastAPI, catalog: Catalog) -> None:
    """Mount the catalog's HTML pages (and the BokehJS and CSS they load) on ``app``."""
    templates = _templates()
    app.state.catalog = catalog
    app.mount(figures.BOKEH_PREFIX, StaticFiles(directory=bokehjs_path()), name="bokehjs")

    def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        viewer = _viewer(request)
        context.setdefault("figures", [])
        if viewer is not None:  # the sign-out button is a form too
            context.setdefault("sign_out_csrf", auth.csrf_token(request))
        response = templates.TemplateResponse(
            request, name, {"viewer": viewer, "bokeh_js": figures.BOKEH_JS,
                            "csp_nonce": csp_nonce(request), **context},
            status_code=status,
        )  # fmt: skip
        auth.keep_presession(request, response)
        return response

    def problem(request: Request, status: int, message: str) -> Response:
        return render(request, "error.html", status=status, status_code=status, message=message)

    @app.exception_handler(BadQuery)
    async def bad_query(request: Request, error: BadQuery) -> Response:
        return problem(request, 400, str(error))

    @app.get("/assets/catalog.css", include_in_schema=False)
    def stylesheet() -> FileResponse:
        return FileResponse(TEMPLATES / "catalog.css", media_type="text/css")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def use_cases(request: Request) -> Response:
        viewer = _viewer(request)
        cases = catalog.use_cases(viewer)
        for case in cases:  # the best run of each, for a link and its algorithm
            best = catalog.list_runs(RunFilter(use_case=case["slug"]), sort="final_error",
                                     limit=1, viewer=viewer)  # fmt: skip
            case["best_run"] = best.items[0] if best.items else None
        return render(request, "index.html", use_cases=cases)

    @app.get("/use-cases/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def use_case(request: Request, slug: str) -> Response:
        viewer = _viewer(request)
        try:  # a use case known only from others' private runs is unknown here too
            case = catalog.use_case(slug, viewer)
        except NotFound:
            return problem(request, 404, f"There is no use case {slug!r} in this catalog.")
        budget = _int(request, "budget", 1, COUNT_MAX)
        target = _float(request, "target")
        verified = bool(_bool(request, "verified"))
        package, uploader = _text(request, "package"), _text(request, "uploader")
        board = catalog.leaderboard(slug, budget=budget, target=target, verified_only=verified,
                                    package=package, uploader=uploader,
                                    viewer=viewer)  # fmt: skip
        # The figures draw the leaderboard's runs (public, complete, given at least its
        # budget, of the package and uploader asked for), on the leaderboard's grid.
        chosen = RunFilter(use_case=slug, package=package, uploader=uploader,
                           min_budget=board["budget"], verified=True if verified else None,
                           state="complete")  # fmt: skip
        runs, matching = _all_runs(catalog, chosen, None)
        params = {"budget": budget, "target": target, "package": package,
                  "uploader": uploader, "verified": "yes" if verified else None}  # fmt: skip
        return render(
            request, "use_case.html", case=case, board=board, params=params, runs=runs,
            matching=matching, runs_query=_query({"use_case": slug, "package": package,
                                                  "uploader": uploader}),
            csv_query=_query({"use_case": slug, "package": package, "uploader": uploader,
                              "min_budget": budget, "format": "csv"}),
            **_figures(catalog, runs, board["budget"], None, summary=bool(package or uploader)),
        )  # fmt: skip

    @app.get("/runs", response_class=HTMLResponse, include_in_schema=False)
    def runs(request: Request) -> Response:
        viewer = _viewer(request)
        filters = _run_filter(request)
        sort = _text(request, "sort") or "-uploaded_at"
        if sort.lstrip("-") not in SORT_KEYS:
            raise BadQuery(f"sort must be one of {', '.join(SORT_KEYS)} (- for descending)")
        limit = _int(request, "limit", 1) or 50
        limit = min(limit, max(PAGE_SIZES))
        cursor = _text(request, "cursor")
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
            sort_keys=SORT_KEYS, page_sizes=PAGE_SIZES, query=lambda **c: _query(params, **c),
            csv_query=_query(params, limit=None, format="csv"), cursor=cursor,
        )  # fmt: skip

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run(request: Request, run_id: str) -> Response:
        viewer = _viewer(request)
        try:
            record = catalog.get_run(run_id, viewer)
        except CatalogError:  # missing, or private to someone else: the same answer
            return problem(request, 404, f"There is no run {run_id!r} you can see here.")
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

    @app.get("/compare", response_class=HTMLResponse, include_in_schema=False)
    def compare(request: Request) -> Response:
        viewer = _viewer(request)
        ids = [i for v in request.query_params.getlist("runs") for i in v.split(",") if i.strip()]
        slug = _text(request, "use_case")
        algorithms = [a for v in request.query_params.getlist("algorithms")
                      for a in v.split(",") if a.strip()]  # fmt: skip
        budget = _int(request, "budget", 1, COUNT_MAX)
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
                found, _ = _all_runs(catalog, RunFilter(use_case=slug, algorithm=algorithm,
                                                        state="complete"), viewer)  # fmt: skip
                chosen.extend(found)
        slugs = sorted({r.get("use_case_slug") for r in chosen if r.get("use_case_slug")})
        return render(
            request, "compare.html", runs=chosen, missing=missing, slugs=slugs,
            use_case=slug, algorithms=algorithms, budget=budget,
            **_figures(catalog, chosen, budget, viewer),
        )  # fmt: skip

    @app.get("/sign-in", response_class=HTMLResponse, include_in_schema=False)
    def sign_in_form(request: Request) -> Response:
        return render(request, "sign_in.html", csrf=auth.csrf_token(request),
                      next=_safe_next(request.query_params.get("next")))  # fmt: skip

    @app.post("/sign-in", response_class=HTMLResponse, include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        form = await _urlencoded(request)
        target = _safe_next(form.get("next"))
        if not _csrf_ok(request, form.get("csrf")):
            return problem(request, 403, EXPIRED)
        token = form.get("token", "").strip()
        response = RedirectResponse(target, status_code=303)
        if not auth.sign_in(request, response, token):
            error = "That token is unknown, revoked or expired."
            return render(request, "sign_in.html", status=401, csrf=auth.csrf_token(request),
                          next=target, error=error)  # fmt: skip
        return response

    @app.post("/sign-out", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        form = await _urlencoded(request)
        if not _csrf_ok(request, form.get("csrf")):
            return problem(request, 403, EXPIRED)
        response = RedirectResponse("/", status_code=303)
        auth.sign_out(request, response)
        return response

    @app.get("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload_form(request: Request) -> Response:
        if _viewer(request) is None:
            return RedirectResponse("/sign-in?next=/upload", status_code=303)
        return render(request, "upload.html", csrf=auth.csrf_token(request))

    @app.post("/upload", response_class=HTMLResponse, include_in_schema=False)
    def upload(
        request: Request,
        background: BackgroundTasks,
        metadata: Annotated[UploadFile, File()],
        store: Annotated[UploadFile | None, File()] = None,
        archive: Annotated[UploadFile | None, File()] = None,
        visibility: Annotated[str, Form()] = "public",
        csrf: Annotated[str, Form()] = "",
    ) -> Response:
        principal = _viewer(request)
        if principal is None:
            return problem(request, 401, "Sign in first: your session has ended.")
        if not _csrf_ok(request, csrf):
            return problem(request, 403, EXPIRED)
        if not auth.has_scope(principal, "upload"):
            return problem(request, 403, "Your token may read but not upload.")
        if visibility not in ("public", "unlisted", "private"):
            visibility = "public"
        try:  # the API's own upload: same checks, and a refused one leaves no row or file
            result = api.accept_upload(request, principal, metadata, store, archive, visibility,
                                       background=background)  # fmt: skip
        except (HTTPException, uploads.UploadError, CatalogError) as error:
            status = getattr(error, "status_code", None) or getattr(error, "status", None)
            status = status or getattr(error, "http_status", 400)
            detail = getattr(error, "detail", None) or str(error)
            return render(request, "upload.html", status=status, csrf=auth.csrf_token(request),
                          error=f"Not uploaded: {detail}")  # fmt: skip
        message = ("Uploaded." if result["created"]
                   else "This run was already in the catalog, unchanged.")  # fmt: skip
        notes = [w[:1].upper() + w[1:] for w in result.get("warnings", [])]
        result = {**result, "message": " ".join([message, *notes])}
        return render(request, "upload.html", status=201 if result["created"] else 200,
                      csrf=auth.csrf_token(request), result=result)  # fmt: skip


def _viewer(request: Request):
    """The signed-in user, looked up once per request (each look-up checks the token)."""
    if not hasattr(request.state, "viewer"):
        request.state.viewer = auth.session_principal(request)
    return request.state.viewer


EXPIRED = "The form has expired: reload the page and try again."


def _csrf_ok(request: Request, value: str | None) -> bool:
    try:
        auth.check_csrf(request, value)
    except HTTPException:
        return False
    return True


def _safe_next(value: str | None) -> str:
    """Only a path on this site (no open redirect to another host)."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


async def _urlencoded(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the sign-in forms carry no files)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


__all__ = ["add_pages"]
