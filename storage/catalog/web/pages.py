"""What the catalog's web pages share: rendering on the server (Jinja2, plain HTML and a little
CSS, no JavaScript build) with the signed-in viewer, the error page, reading query parameters,
and the forms' CSRF check. The pages themselves are module-level routers by group:
``pages_browse`` (use cases with their best results, a use case's leaderboard with the paper's
figures, the run table, a run's text view, a comparison of chosen runs), ``pages_sign_in`` (a
pasted token starts a session kept on the server) and ``pages_upload`` (an upload form with
CSRF protection); ``site.add_pages`` mounts them.

Everything is read through :class:`neuroptimus.storage.catalog.db.repository.Catalog`; browsing
public runs needs no account. Figures come from the curves the catalog keeps
(``neuroptimus.storage.catalog.web.figures``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import HTTPException, Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from neuroptimus.optimization.errors import UserError
from neuroptimus.storage.catalog import bounds
from neuroptimus.storage.catalog.db.repository import InvalidInput, RunFilter
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


def text_param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def int_param(
    request: Request, name: str, minimum: int, maximum: int = bounds.INT64_MAX
) -> int | None:
    try:
        return bounds.whole_number(request.query_params.get(name), name, minimum, maximum)
    except InvalidInput as error:
        raise BadQuery(str(error)) from None


def float_param(request: Request, name: str) -> float | None:
    value = text_param(request, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadQuery(f"{name} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise BadQuery(f"{name} must be a finite number")
    return number


def bool_param(request: Request, name: str) -> bool | None:
    value = text_param(request, name)
    if value is None:
        return None
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise BadQuery(f"{name} must be yes or no, not {value!r}")


def run_filter_param(request: Request) -> RunFilter:
    """The API's own parser of run filters: one rule for the page and ``/api/v1/runs``."""
    try:
        return bounds.run_filter(request.query_params)
    except InvalidInput as error:
        raise BadQuery(str(error)) from None


def query_string(params: dict[str, Any], **changes: Any) -> str:
    """A query string from ``params`` with ``changes`` (None drops a key)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


_TEMPLATES = _templates()


def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
    viewer = page_viewer(request)
    context.setdefault("figures", [])
    if viewer is not None:  # the sign-out button is a form too
        context.setdefault("sign_out_csrf", auth.csrf_token(request))
    response = _TEMPLATES.TemplateResponse(
        request, name, {"viewer": viewer, "bokeh_js": figures.BOKEH_JS,
                        "csp_nonce": csp_nonce(request), **context},
        status_code=status,
    )  # fmt: skip
    auth.keep_presession(request, response)
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", status=status, status_code=status, message=message)


# registered for BadQuery by site.add_pages
async def bad_query(request: Request, error: BadQuery) -> Response:
    return error_page(request, 400, str(error))


def page_viewer(request: Request):
    """The signed-in user, looked up once per request (each look-up checks the token)."""
    if not hasattr(request.state, "viewer"):
        request.state.viewer = auth.session_principal(request)
    return request.state.viewer


EXPIRED = "The form has expired: reload the page and try again."


def csrf_ok(request: Request, value: str | None) -> bool:
    try:
        auth.check_csrf(request, value)
    except HTTPException:
        return False
    return True


def safe_next(value: str | None) -> str:
    """Only a path on this site (no open redirect to another host)."""
    if value and value.startswith("/") and not value.startswith("//"):
        return value
    return "/"


async def urlencoded_form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the sign-in forms carry no files)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}
