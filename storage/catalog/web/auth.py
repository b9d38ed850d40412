"""Who is asking: API tokens (``Authorization: Bearer npt_…``) for the JSON API, and a
server-side browser session with a CSRF token for the web forms.

Tokens are checked by the catalog (only their SHA-256 is stored there). Signing in with a token
starts a session on the server (``sessions``: the SHA-256 of a random id, the user, the token);
the browser's cookie holds only that random id, never the token. Signing out, revoking the
token or its expiry end the session on the server, so a copied cookie stops working too. The
JSON API never accepts the cookie for writes: a form elsewhere could post with it (CSRF); the
pages' forms check ``check_csrf`` instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable
from datetime import UTC

from fastapi import HTTPException, Request, Response

from neuroptimus.storage.catalog.db.repository import Catalog, Principal

SESSION_COOKIE = "npt_session"
PRESESSION_COOKIE = "npt_form"  # binds the sign-in form's CSRF token to this browser
SESSION_SECONDS = 14 * 24 * 3600
SCOPES = ("read", "upload", "verify", "admin")
SECRET_SETTING = "session_secret"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


def app_secret(catalog: Catalog) -> bytes:
    """``NEUROPTIMUS_CATALOG_SECRET``, or one generated once and kept in the catalog's database
    (so CSRF tokens survive a restart and every server process of one catalog shares it)."""
    given = os.environ.get("NEUROPTIMUS_CATALOG_SECRET")
    if given:
        return given.encode()
    return catalog.setting(SECRET_SETTING, lambda: secrets.token_hex(32)).encode()


def _signature(secret: bytes, payload: str, purpose: str) -> str:
    return hmac.new(secret, f"{purpose}:{payload}".encode(), hashlib.sha256).hexdigest()


def _secret(request: Request) -> bytes:
    return request.app.state.catalog_secret


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


def sign_in(request: Request, response: Response, token: str) -> bool:
    """Start a browser session for ``token``: False (and no cookie) if the token does not
    authenticate. The cookie is HttpOnly, SameSite=Lax, Secure when the request came over
    https, and expires with the session."""
    started = request.app.state.catalog.start_session(token, SESSION_SECONDS)
    if started is None:
        return False
    session_id, expires = started
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_SECONDS,
        expires=expires.replace(tzinfo=UTC),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return True


def sign_out(request: Request, response: Response) -> None:
    """End the request's session on the server and drop the browser's cookie."""
    session_id = _session_id(request)
    if session_id is not None:
        request.app.state.catalog.end_session(session_id)
    response.delete_cookie(SESSION_COOKIE, path="/")


def _session_id(request: Request) -> str | None:
    value = request.cookies.get(SESSION_COOKIE)
    return value if value and _SESSION_ID.match(value) else None


def session_principal(request: Request) -> Principal | None:
    """The signed-in user of a browser request (the session and its token are checked on the
    server every time), or None."""
    session_id = _session_id(request)
    if session_id is None:
        return None
    return request.app.state.catalog.session_principal(session_id)


def csrf_token(request: Request) -> str:
    """The token a form must send back: bound to the session cookie (the same for every form
    of one session; a page of another site cannot read it). Before sign-in it is bound to a
    random cookie of this browser (``keep_presession``), so another site cannot sign a
    visitor in to its own account either."""
    session = request.cookies.get(SESSION_COOKIE) or _presession(request)
    return _signature(_secret(request), session, "csrf")


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
