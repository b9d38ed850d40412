"""The API's accounts: who the token belongs to, and that user's tokens (list, issue,
revoke)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from neuroptimus.storage.catalog.bounds import INT32_MAX
from neuroptimus.storage.catalog.web.auth import has_scope
from neuroptimus.storage.catalog.web.request_helpers import Reader, catalog_of


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(max_length=100)] = ""
    scopes: list[Literal["read", "upload", "verify", "admin"]] = ["read", "upload"]


router = APIRouter(tags=["accounts"])


@router.get("/me")
def me(principal: Reader) -> dict[str, Any]:
    return {
        "handle": principal.handle,
        "scopes": sorted(principal.scopes),
        "is_admin": principal.is_admin,
    }


@router.get("/tokens")
def tokens(request: Request, principal: Reader) -> list[dict[str, Any]]:
    """Your tokens (names, scopes, dates; never the tokens themselves)."""
    return catalog_of(request).list_tokens(principal.handle)


@router.post("/tokens", status_code=201)
def new_token(request: Request, body: NewToken, principal: Reader) -> dict[str, Any]:
    """A new token for yourself, with at most the scopes of the one you send; shown once."""
    scopes = set(body.scopes)
    if not all(has_scope(principal, scope) for scope in scopes):
        raise HTTPException(403, "a token cannot grant scopes its own token lacks.")
    token = catalog_of(request).issue_token(principal.handle, scopes=scopes, name=body.name)
    return {"token": token, "scopes": sorted(scopes), "name": body.name}


@router.delete("/tokens/{token_id}", status_code=204)
def revoke(
    token_id: Annotated[int, Path(ge=1, le=INT32_MAX)], request: Request, principal: Reader
) -> Response:
    catalog_of(request).revoke_token(principal.handle, token_id)
    return Response(status_code=204)
