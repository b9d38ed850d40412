"""Who is asking: API tokens (``Authorization: Bearer npt_…``) for the JSON API, and a signed
session cookie with a CSRF token for the web forms.

Tokens are checked by the catalog (only their SHA-256 is stored there). The session cookie
holds the token the user pasted on the sign-in page, signed with the app's secret, and is
checked again on every request, so revoking the token ends the session too. The JSON API never
accepts the cookie for writes: a form elsewhere could post with it (CSRF); the pages' forms
check ``check_csrf`` instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from fastapi import HTTPException, Request, Response

from storage.catalog.repository import Catalog, Principal

SESSION_COOKIE = "npt_session"
PRESESSION_COOKIE = "npt_form"  # binds the sign-in form's CSRF token to this browser
SESSION_SECONDS = 14 * 24 * 3600
SCOPES = ("read", "upload", "verify", "admin")
SECRET_SETTING = "session_secret"

# The app's secret for the request being served (set by ``SecretMiddleware``): ``sign_in``
# gets only the response, so it finds the secret here.
_secret: ContextVar[bytes] = ContextVar("catalog_secret")


def app_secret(catalog: Catalog) -> bytes:
    """``NEUROPTIMUS_CATALOG_SECRET``, or one generated once and kept in the catalog's database
    (so sessions survive a restart and every server process of one catalog shares it)."""
    given = os.environ.get("NEUROPTIMUS_CATALOG_SECRET")
    if given:
        return given.encode()
    return catalog.setting(SECRET_SETTING, lambda: secrets.token_hex(32)).encode()


class SecretMiddleware:
    """Makes the app's secret known to ``sign_in`` during a request (plain ASGI)."""

    def __init__(self, app: Any, secret: bytes) -> None:
        self.app, self.secret = app, secret

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        token = _secret.set(self.secret)
        try:
            await self.app(scope, receive, send)
        finally:
            _secret.reset(token)


def _signature(secret: bytes, payload: str, purpose: str) -> str:
    return hmac.new(secret, f"{purpose}:{payload}".encode(), hashlib.sha256).hexdigest()


def _current_secret(request: Request | None = None) -> bytes:
    if request is not None and hasattr(request.app.state, "catalog_secret"):
        return request.app.state.catalog_secret
    try:
        return _secret.get()
    except LookupError:
        raise RuntimeError("the catalog's secret is unknown outside a catalog app") from None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    kind, _, token = header.partition(" ")
    if kind.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "the Authorization header must be 'Bearer <token>'.")
    return token.strip()


def token_principal(request: Request) -> Principal | None:
    """The principal of the request's bearer token; None without one; 401 if it is not valid."""
    token = bearer_token(request)
    if token is None:
        return None
    principal = request.app.state.catalog.authenticate(token)
    if principal is None:
        raise HTTPException(
            401,
            "the token is not valid (unknown, revoked or expired).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


def sign_in(response: Response, token: str, secure: bool = False) -> None:
    """Start a browser session for ``token`` (the caller has checked it authenticates)."""
    payload = base64.urlsafe_b64encode(
        json.dumps({"token": token, "at": int(time.time())}).encode()
    ).decode()
    value = f"{payload}.{_signature(_current_secret(), payload, 'session')}"
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


def sign_out(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def _session_token(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    if not value or "." not in value:
        return None
    payload, _, signature = value.rpartition(".")
    expected = _signature(_current_secret(request), payload, "session")
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict) or time.time() - data.get("at", 0) > SESSION_SECONDS:
        return None
    token = data.get("token")
    return token if isinstance(token, str) else None


def session_principal(request: Request) -> Principal | None:
    """The signed-in user of a browser request (the token is checked again), or None."""
    token = _session_token(request)
    if token is None:
        return None
    return request.app.state.catalog.authenticate(token)


def csrf_token(request: Request) -> str:
    """The token a form must send back: bound to the session cookie (the same for every form
    of one session; a page of another site cannot read it). Before sign-in it is bound to a
    random cookie of this browser (``keep_presession``), so another site cannot sign a
    visitor in to its own account either."""
    session = request.cookies.get(SESSION_COOKIE) or _presession(request)
    return _signature(_current_secret(request), session, "csrf")


def _presession(request: Request) -> str:
    value = request.cookies.get(PRESESSION_COOKIE)
    if not value:
        value = getattr(request.state, "presession", None) or secrets.token_urlsafe(24)
        request.state.presession = value
    return value


def keep_presession(request: Request, response: Response) -> None:
    """Give the browser the random cookie a form's CSRF token was bound to (forms shown
    before sign-in)."""
    value = getattr(request.state, "presession", None)
    if value:
        response.set_cookie(PRESESSION_COOKIE, value, httponly=True, samesite="lax", path="/")


def check_csrf(request: Request, value: str | None) -> None:
    """403 unless ``value`` is this session's CSRF token."""
    if not value or not hmac.compare_digest(value, csrf_token(request)):
        raise HTTPException(
            403, "the form's security token is missing or out of date: reload the page and retry."
        )


def has_scope(principal: Principal, scope: str) -> bool:
    """``admin`` (scope or user) may do everything."""
    return scope in principal.scopes or "admin" in principal.scopes or principal.is_admin


def viewer(request: Request) -> Principal | None:
    """Who reads: the bearer token's user (if it may read), else on GET a signed-in browser's
    user, else nobody (public runs only)."""
    principal = token_principal(request)
    if principal is not None:
        return principal if has_scope(principal, "read") else None
    if request.method in ("GET", "HEAD"):
        return session_principal(request)
    return None


def require(scope: str) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the bearer token's principal, which must have ``scope``."""

    def principal_with_scope(request: Request) -> Principal:
        principal = token_principal(request)
        if principal is None:
            raise HTTPException(
                401,
                "this needs an API token: send 'Authorization: Bearer npt_…'.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not has_scope(principal, scope):
            raise HTTPException(403, f"the token lacks the '{scope}' scope.")
        return principal

    principal_with_scope.__name__ = f"token_with_{scope}_scope"
    return principal_with_scope
