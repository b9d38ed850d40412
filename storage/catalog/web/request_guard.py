"""Refusals every request gets before any route reads it (plain ASGI): an address with a NUL
byte, bytes that are not UTF-8 or an over-long query string; a JSON body or form over 1 MiB;
a JSON body nested too deeply or holding what no database stores (64-bit integers at most, no
NUL, no lone surrogates).
What a route then reads is bounded by its own declarations
(``neuroptimus.storage.catalog.bounds``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.exceptions import HTTPException

from neuroptimus.storage.catalog.bounds import json_problem
from neuroptimus.storage.catalog.errors import size_text

MAX_QUERY_STRING = 16 * 1024  # bytes; a filtered run list asks for well under 1 KiB
# a JSON body (an edit, a token, a verification) or a sign-in form is a few hundred bytes
MAX_SMALL_BODY = 2**20


class RequestGuardMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = address_problem(scope)
        if problem is not None:
            await json_response(send, *problem)
            return
        kind = _small_body(scope)
        if kind is not None:
            try:
                body, receive = await _whole_body(receive)
            except HTTPException as error:  # the body limit around this middleware
                await json_response(send, error.status_code, str(error.detail))
                return
            if body is None:
                limit = size_text(MAX_SMALL_BODY)
                await json_response(send, 413, f"the request's {kind} is larger than {limit}.")
                return
            problem = body_problem(body) if kind == "JSON" else None
            if problem is not None:
                await json_response(send, *problem)
                return
        await self.app(scope, receive, send)


def address_problem(scope: dict) -> tuple[int, str] | None:
    query = scope.get("query_string", b"")
    if len(query) > MAX_QUERY_STRING:
        return 414, f"the query string is longer than {MAX_QUERY_STRING} bytes."
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    for part, name in ((raw_path, "address"), (query.replace(b"+", b" "), "query string")):
        decoded = unquote_to_bytes(part)
        if b"\x00" in decoded:
            return 400, f"the {name} holds a NUL byte."
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            return 400, f"the {name} holds bytes that are not UTF-8 text."
    return None


def body_problem(body: bytes) -> tuple[int, str] | None:
    """Why a JSON body is refused, or None (malformed JSON is left to the route's parser,
    which names where it breaks)."""
    try:
        data = json.loads(body)
    except RecursionError:
        return 400, "the request's JSON is nested too deeply."
    except ValueError:
        return None
    problem = json_problem(data)
    if problem is not None:
        return 422, f"the request's JSON cannot be stored: {problem[:300]}."
    return None


def _small_body(scope: dict) -> str | None:
    """ "JSON" or "form" for a body that must be small (only uploads are large, and they are
    multipart), else None."""
    if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
        return None
    kind = dict(scope.get("headers") or ()).get(b"content-type", b"")
    media = kind.split(b";")[0].strip().lower()
    if media == b"application/json" or media.endswith(b"+json"):
        return "JSON"
    return "form" if media == b"application/x-www-form-urlencoded" else None


async def _whole_body(receive: Any) -> tuple[bytes | None, Any]:
    """The request's body (None when over ``MAX_SMALL_BODY``: parsed JSON or forms take many
    times their size in memory), and a ``receive`` that hands it on to the app."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > MAX_SMALL_BODY:
            return None, receive
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` under ``prefix`` with 413: at once when the
    Content-Length says so, else as soon as that many bytes have arrived (chunked uploads),
    before the multipart parser has spooled a huge body to disk (plain ASGI)."""

    def __init__(self, app: Any, max_bytes: int, prefix: str = "/") -> None:
        self.app, self.max_bytes, self.prefix = app, max_bytes, prefix

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        too_big = f"the upload is larger than {size_text(self.max_bytes)}."
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await json_response(send, 413, too_big)
            return
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                # FastAPI passes HTTPExceptions from body parsing on to the handlers

                raise HTTPException(413, too_big)
            return message

        await self.app(scope, limited, send)


async def json_response(send: Any, status: int, detail: str) -> None:
    """Answer a request with ``{"detail": detail}`` from plain ASGI middleware."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
