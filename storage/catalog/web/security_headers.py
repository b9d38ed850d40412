"""Security headers on every response of the catalog (pages, API, files, docs), and the OpenAPI
docs pages served under the same policy.

The pages load only what the catalog serves itself (its CSS, BokehJS under
``/assets/bokeh``); the one inline script of a page, a figure's Bokeh embedding, carries the
request's nonce (``request.state.csp_nonce``). Styles may be inline: BokehJS sets them on the
elements it draws. Nothing may frame a page (clickjacking), content types are not guessed, and
a link to another site does not tell it which page (an unlisted run's address) it came from.
The docs pages load Swagger UI / ReDoc from their CDN, allowed on those pages only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

DOCS_PATHS = ("/docs", "/redoc")
_DOCS_CDN = "https://cdn.jsdelivr.net"

FIXED_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def content_security_policy(nonce: str, docs: bool = False) -> str:
    """The policy of a response: the catalog's own files and the nonce's inline script; on the
    docs pages also the CDN they load from."""

    def extra(sources: str) -> str:
        return f" {sources}" if docs else ""

    rules = {
        "default-src": "'self'",
        "script-src": f"'self' 'nonce-{nonce}'" + extra(_DOCS_CDN),
        "style-src": "'self' 'unsafe-inline'" + extra(f"{_DOCS_CDN} https://fonts.googleapis.com"),
        "img-src": "'self' data:" + extra("https://fastapi.tiangolo.com https://cdn.redoc.ly"),
        "font-src": "'self'" + extra("https://fonts.gstatic.com"),
        "connect-src": "'self'",
        "worker-src": "'self'" + extra("blob:"),
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in rules.items())


class SecurityHeadersMiddleware:
    """Gives each HTTP request a fresh nonce (``request.state.csp_nonce``) and adds the
    security headers to its response (plain ASGI: streamed responses too)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        policy = content_security_policy(nonce, docs=scope.get("path") in DOCS_PATHS)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in {h for h, _ in FIXED_HEADERS}
                ]
                headers += [*FIXED_HEADERS, (b"content-security-policy", policy.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csp_nonce(request: Request) -> str:
    """The request's nonce, for an inline script of its page."""
    return getattr(request.state, "csp_nonce", "")


def add_docs(app: FastAPI, title: str) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` with their inline script under the request's
    nonce (make the app with ``docs_url=None, redoc_url=None``)."""

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{title} – API")
        return _with_nonce(page, csp_nonce(request))

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        page = get_redoc_html(openapi_url=app.openapi_url, title=f"{title} – API")
        return _with_nonce(page, csp_nonce(request))


def _with_nonce(page: HTMLResponse, nonce: str) -> HTMLResponse:
    body = page.body.decode().replace("<script>", f'<script nonce="{nonce}">')
    return HTMLResponse(body, status_code=page.status_code)
