"""The catalog's sign-in and sign-out pages: a pasted token starts a session kept on the
server; both forms carry a CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from neuroptimus.storage.catalog.web import auth
from neuroptimus.storage.catalog.web.pages import (
    EXPIRED,
    csrf_ok,
    error_page,
    render,
    safe_next,
    urlencoded_form,
)

router = APIRouter(include_in_schema=False)


@router.get("/sign-in", response_class=HTMLResponse, include_in_schema=False)
def sign_in_form(request: Request) -> Response:
    return render(request, "sign_in.html", csrf=auth.csrf_token(request),
                  next=safe_next(request.query_params.get("next")))  # fmt: skip


@router.post("/sign-in", response_class=HTMLResponse, include_in_schema=False)
async def sign_in(request: Request) -> Response:
    form = await urlencoded_form(request)
    target = safe_next(form.get("next"))
    if not csrf_ok(request, form.get("csrf")):
        return error_page(request, 403, EXPIRED)
    token = form.get("token", "").strip()
    response = RedirectResponse(target, status_code=303)
    if not auth.sign_in(request, response, token):
        error = "That token is unknown, revoked or expired."
        return render(request, "sign_in.html", status=401, csrf=auth.csrf_token(request),
                      next=target, error=error)  # fmt: skip
    return response


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request) -> Response:
    form = await urlencoded_form(request)
    if not csrf_ok(request, form.get("csrf")):
        return error_page(request, 403, EXPIRED)
    response = RedirectResponse("/", status_code=303)
    auth.sign_out(request, response)
    return response
